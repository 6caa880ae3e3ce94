// Package validationcases holds, for tests only, the objects that break
// one rule of Ferry's CRDs each, with the field and the words of the
// refusal: api/v1alpha1's tests send them to a real API server, and
// agent/appfile's parse the AppGroups among them as a standalone file,
// so that the cluster and the standalone agent refuse the same things in
// the same words from one list, not two kept in step by hand.
package validationcases

// The valid objects the cases break one rule of each.
const (
	ValidAppGroup = `
apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: valid}
spec:
  app: {type: WSGI, root: /srv/app}
  listen: {port: 8080}
`

	ValidCommandAppGroup = `
apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: valid}
spec:
  app: {type: Command, command: ["./server"], concurrency: 8, readinessPath: /healthz}
  listen: {port: 8080}
  pool: {maxRequestTime: 30s}
`

	ValidProcessPool = `
apiVersion: ferry.dev/v1alpha1
kind: ProcessPool
metadata: {name: valid}
spec:
  nodeName: node-a
  appGroup: blog
  revision: "1-abc"
  template:
    app: {type: WSGI, root: /srv/app}
    listen: {port: 8080}
`
)

// What the refusal of a malformed user, env name, path, env valueFrom or
// quantity says.
const (
	UserForm = "user must be a user name or a numeric uid: a name is lower-case letters, digits, '_', '.' or '-', " +
		"begins with a letter or '_', and may end in '$', as www-data"
	FerryEnvForm = "env may not set FERRY_REVISION, nor, when type is WSGI, FERRY_SOCKET, FERRY_APP_ROOT, FERRY_STARTUP_FILE or FERRY_READY_FD: " +
		"the agent sets these for its workers (the revision a worker was spawned for, and the WSGI loader's socket, root, startup file and " +
		"readiness descriptor) and keeps its values over the app's; name the variable otherwise"
	EnvNameForm       = "an env name must be letters, digits and '_', and not begin with a digit, as DJANGO_SETTINGS_MODULE"
	ReadinessPathForm = "readinessPath must be a URL path beginning with '/' and an optional query, as /healthz: no control characters " +
		"(a tab, a newline) or '#', and each '%' in the path followed by two hex digits"
	RootForm        = "root must be an absolute path, as /srv/app"
	StartupFileForm = "startupFile must be a path relative to root, as passenger_wsgi.py or app/wsgi.py: it may not begin with '/'"
	// QuantityForm follows the field's name.
	QuantityForm = " must be a quantity: a number and an optional suffix, with no space: " +
		"Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), as 512Mi or 1G"
	EnvOneOf     = "an env variable takes one of value and valueFrom, not both"
	EnvOneSource = "valueFrom takes exactly one of secretKeyRef and configMapKeyRef"
)

// KeyRef is a secretKeyRef's or configMapKeyRef's fields.
func KeyRef(name, key string) map[string]any { return map[string]any{"name": name, "key": key} }

// SecretRef is a valueFrom reading key of Secret name.
func SecretRef(name, key string) map[string]any {
	return map[string]any{"secretKeyRef": KeyRef(name, key)}
}

// EnvFrom sets spec.app.env to one variable K with fields.
func EnvFrom(fields map[string]any) map[string]any {
	v := map[string]any{"name": "K"}
	for k, f := range fields {
		v[k] = f
	}
	return map[string]any{"spec.app.env": []any{v}}
}

// JSONValue is v, a case's Set value, with its Go ints made int64, as
// unstructured.SetNestedField requires.
func JSONValue(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = JSONValue(v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k := range v {
			out[k] = JSONValue(v[k])
		}
		return out
	}
	return v
}

// Case is an object that breaks one rule.
type Case struct {
	Name   string
	Base   string         // the valid object it starts from
	Set    map[string]any // dotted path -> value; nil value deletes
	Field  string         // the field the refusal must name
	Reason string         // a fragment of the rule's message
}

// Invalid are the cases, AppGroups and ProcessPools.
var Invalid = []Case{
	{"min above max", ValidAppGroup, map[string]any{"spec.pool.minProcesses": 5, "spec.pool.maxProcesses": 2},
		"spec.pool.minProcesses", "minProcesses (5) must be less than or equal to maxProcesses (2): lower minProcesses or raise maxProcesses"},
	{"min above default max", ValidAppGroup, map[string]any{"spec.pool.minProcesses": 10},
		"spec.pool.minProcesses", "minProcesses (10) must be less than or equal to maxProcesses (6, its default when not set): lower minProcesses or raise maxProcesses"},
	{"min zero", ValidAppGroup, map[string]any{"spec.pool.minProcesses": 0},
		"spec.pool.minProcesses", "greater than or equal to 1"},
	{"max too large", ValidAppGroup, map[string]any{"spec.pool.maxProcesses": 1000},
		"spec.pool.maxProcesses", "less than or equal to 256"},
	{"WSGI without root", ValidAppGroup, map[string]any{"spec.app.root": nil},
		"spec.app.root", "root is required when type is WSGI"},
	{"relative root", ValidAppGroup, map[string]any{"spec.app.root": "srv/app"},
		"spec.app.root", RootForm},
	{"Command without command", ValidCommandAppGroup, map[string]any{"spec.app.command": nil},
		"spec.app.command", "command is required when type is Command"},
	{"WSGI with command", ValidAppGroup, map[string]any{"spec.app.command": []any{"./server"}},
		"spec.app.command", "command may only be set when type is Command"},
	{"Command with python", ValidCommandAppGroup, map[string]any{"spec.app.python": "python3"},
		"spec.app.python", "python may only be set when type is WSGI"},
	{"Command setting PORT", ValidCommandAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "PORT", "value": "80"}}},
		"spec.app.env", "env may not set PORT when type is Command"},
	// The agent's variables: an app's FERRY_SOCKET would have its
	// loader listen where the agent never looks. (An app's own
	// FERRY_ names are accepted: TestAppsOwnFerryEnvNamesAccepted.)
	{"WSGI setting FERRY_SOCKET", ValidAppGroup, map[string]any{"spec.app.env": []any{
		map[string]any{"name": "GREETING", "value": "hi"}, map[string]any{"name": "FERRY_SOCKET", "value": "/tmp/x"}}},
		"spec.app.env", FerryEnvForm},
	{"Command setting FERRY_REVISION", ValidCommandAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "FERRY_REVISION", "value": "bogus"}}},
		"spec.app.env", FerryEnvForm},
	{"WSGI setting FERRY_REVISION", ValidAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "FERRY_REVISION", "value": "bogus"}}},
		"spec.app.env", FerryEnvForm},
	{"WSGI setting FERRY_APP_ROOT", ValidAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "FERRY_APP_ROOT", "value": "/srv/other"}}},
		"spec.app.env", FerryEnvForm},
	{"WSGI setting FERRY_STARTUP_FILE", ValidAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "FERRY_STARTUP_FILE", "value": "app.py"}}},
		"spec.app.env", FerryEnvForm},
	{"WSGI setting FERRY_READY_FD", ValidAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "FERRY_READY_FD", "value": "1"}}},
		"spec.app.env", FerryEnvForm},
	// The agent GETs http://127.0.0.1:$PORT + readinessPath: a path
	// Go's URL parser refuses is never probed, so every spawn ran out
	// startTimeout and the rollout halted, with no word of the path.
	{"readiness path with a newline", ValidCommandAppGroup, map[string]any{"spec.app.readinessPath": "/healthz\n"},
		"spec.app.readinessPath", ReadinessPathForm},
	{"readiness path with a tab", ValidCommandAppGroup, map[string]any{"spec.app.readinessPath": "/health\tz"},
		"spec.app.readinessPath", ReadinessPathForm},
	{"readiness path with a bad escape", ValidCommandAppGroup, map[string]any{"spec.app.readinessPath": "/health%zz"},
		"spec.app.readinessPath", ReadinessPathForm},
	{"readiness path ending in %", ValidCommandAppGroup, map[string]any{"spec.app.readinessPath": "/health%"},
		"spec.app.readinessPath", ReadinessPathForm},
	{"readiness path with a fragment", ValidCommandAppGroup, map[string]any{"spec.app.readinessPath": "/healthz#deep"},
		"spec.app.readinessPath", ReadinessPathForm},
	{"pool readiness path with a newline", ValidProcessPool, map[string]any{"spec.template.app.type": "Command",
		"spec.template.app.root": nil, "spec.template.app.command": []any{"./server"}, "spec.template.app.readinessPath": "/healthz\n"},
		"spec.template.app.readinessPath", ReadinessPathForm},
	{"empty program", ValidCommandAppGroup, map[string]any{"spec.app.command": []any{"", "x"}},
		"spec.app.command", "command[0], the program to run, may not be empty"},
	{"user uid too large", ValidAppGroup, map[string]any{"spec.app.user": "99999999999999999999"},
		"spec.app.user", "a numeric user must be a uid below 4294967295"},
	{"user uid just too large", ValidAppGroup, map[string]any{"spec.app.user": "4294967295"},
		"spec.app.user", "a numeric user must be a uid below 4294967295"},
	{"WSGI with concurrency", ValidAppGroup, map[string]any{"spec.app.concurrency": 4},
		"spec.app.concurrency", "concurrency must be 1 when type is WSGI"},
	{"unknown app type", ValidAppGroup, map[string]any{"spec.app.type": "Rack"},
		"spec.app.type", `Unsupported value: "Rack"`},
	{"unknown strategy", ValidAppGroup, map[string]any{"spec.restart.strategy": "Parallel"},
		"spec.restart.strategy", `Unsupported value: "Parallel"`},
	{"port zero", ValidAppGroup, map[string]any{"spec.listen.port": 0},
		"spec.listen.port", "greater than or equal to 1"},
	{"port too large", ValidAppGroup, map[string]any{"spec.listen.port": 70000},
		"spec.listen.port", "less than or equal to 65535"},
	{"missing listen", ValidAppGroup, map[string]any{"spec.listen": nil},
		"spec.listen", "Required value"},
	{"user root", ValidAppGroup, map[string]any{"spec.app.user": "root"},
		"spec.app.user", "user may not be root or uid 0"},
	{"user uid 0", ValidAppGroup, map[string]any{"spec.app.user": "000"},
		"spec.app.user", "user may not be root or uid 0"},
	{"user with a space", ValidAppGroup, map[string]any{"spec.app.user": "www data"},
		"spec.app.user", `Invalid value: "www data": ` + UserForm},
	{"zero start timeout", ValidAppGroup, map[string]any{"spec.pool.startTimeout": "0s"},
		"spec.pool.startTimeout", "startTimeout must be a positive duration"},
	{"negative shutdown timeout", ValidAppGroup, map[string]any{"spec.pool.shutdownTimeout": "-5s"},
		"spec.pool.shutdownTimeout", "shutdownTimeout must be a positive duration of at most 1h"},
	{"idle timeout not a duration", ValidAppGroup, map[string]any{"spec.pool.idleTimeout": "forever"},
		"spec.pool.idleTimeout", `Invalid value: "forever": idleTimeout must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m`},
	{"queue timeout too long", ValidAppGroup, map[string]any{"spec.pool.queueTimeout": "2h"},
		"spec.pool.queueTimeout", "queueTimeout must be a positive duration of at most 1h"},
	{"max request time too short", ValidAppGroup, map[string]any{"spec.pool.maxRequestTime": "500ms"},
		"spec.pool.maxRequestTime", "maxRequestTime must be a duration from 1s to 24h"},
	{"max request time too long", ValidAppGroup, map[string]any{"spec.pool.maxRequestTime": "25h"},
		"spec.pool.maxRequestTime", "maxRequestTime must be a duration from 1s to 24h"},
	{"max request time not a duration", ValidAppGroup, map[string]any{"spec.pool.maxRequestTime": "30"},
		"spec.pool.maxRequestTime", "maxRequestTime must be a duration: numbers, each with a unit"},
	{"startup file escapes root", ValidAppGroup, map[string]any{"spec.app.startupFile": "../other/app.py"},
		"spec.app.startupFile", "startupFile must stay inside root"},
	{"absolute startup file", ValidAppGroup, map[string]any{"spec.app.startupFile": "/etc/app.py"},
		"spec.app.startupFile", StartupFileForm},
	{"bad env name", ValidAppGroup, map[string]any{"spec.app.env": []any{map[string]any{"name": "1BAD", "value": "x"}}},
		"spec.app.env[0].name", `Invalid value: "1BAD": ` + EnvNameForm},
	// env valueFrom, as a Pod's: one of value and valueFrom, one source.
	{"env value and valueFrom", ValidAppGroup, EnvFrom(map[string]any{"value": "v", "valueFrom": SecretRef("s", "k")}),
		"spec.app.env[0]", EnvOneOf},
	{"env empty value and valueFrom", ValidAppGroup, EnvFrom(map[string]any{"value": "", "valueFrom": SecretRef("s", "k")}),
		"spec.app.env[0]", EnvOneOf},
	{"env valueFrom of nothing", ValidAppGroup, EnvFrom(map[string]any{"valueFrom": map[string]any{}}),
		"spec.app.env[0].valueFrom", EnvOneSource},
	{"env valueFrom of both", ValidAppGroup, EnvFrom(map[string]any{"valueFrom": map[string]any{
		"secretKeyRef": KeyRef("s", "k"), "configMapKeyRef": KeyRef("c", "k")}}),
		"spec.app.env[0].valueFrom", EnvOneSource},
	{"env Secret name with capitals", ValidAppGroup, EnvFrom(map[string]any{"valueFrom": SecretRef("Django", "k")}),
		"spec.app.env[0].valueFrom.secretKeyRef.name", "name must be a Secret's or ConfigMap's name"},
	{"env key with a slash", ValidAppGroup, EnvFrom(map[string]any{"valueFrom": map[string]any{"configMapKeyRef": KeyRef("c", "a/b")}}),
		"spec.app.env[0].valueFrom.configMapKeyRef.key", "key must be a key of a Secret's or ConfigMap's data"},
	{"env valueFrom without a key", ValidAppGroup, EnvFrom(map[string]any{"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s"}}}),
		"spec.app.env[0].valueFrom.secretKeyRef.key", "Required value"},
	{"memory limit with a space", ValidAppGroup, map[string]any{"spec.pool.memoryLimit": "1 GB"},
		"spec.pool.memoryLimit", `Invalid value: "1 GB": memoryLimit` + QuantityForm},
	{"tiny memory limit", ValidAppGroup, map[string]any{"spec.pool.memoryLimit": "1Ki"},
		"spec.pool.memoryLimit", "memoryLimit must be greater than 1Mi"},
	{"zero request buffer limit", ValidAppGroup, map[string]any{"spec.proxy.requestBufferLimit": "0"},
		"spec.proxy.requestBufferLimit", "requestBufferLimit must be greater than 0 and less than 8Gi"},
	{"huge request buffer limit", ValidAppGroup, map[string]any{"spec.proxy.requestBufferLimit": "1Ti"},
		"spec.proxy.requestBufferLimit", "requestBufferLimit must be greater than 0 and less than 8Gi"},
	{"response buffer limit too large", ValidAppGroup, map[string]any{"spec.proxy.responseBufferLimit": "1Gi"},
		"spec.proxy.responseBufferLimit", "responseBufferLimit must be between 0 and 64Mi"},
	{"request buffering not a bool", ValidAppGroup, map[string]any{"spec.proxy.requestBuffering": "on"},
		"spec.proxy.requestBuffering", "must be of type boolean"},
	{"zero concurrent nodes", ValidAppGroup, map[string]any{"spec.restart.maxConcurrentNodes": 0},
		"spec.restart.maxConcurrentNodes", "greater than or equal to 1"},
	{"negative queue size", ValidAppGroup, map[string]any{"spec.pool.maxRequestQueueSize": -1},
		"spec.pool.maxRequestQueueSize", "greater than or equal to 1"},
	{"resist not a bool", ValidAppGroup, map[string]any{"spec.restart.resistDeploymentErrors": "yes"},
		"spec.restart.resistDeploymentErrors", "must be of type boolean"},
	{"pool without node", ValidProcessPool, map[string]any{"spec.nodeName": nil},
		"spec.nodeName", "Required value"},
	{"pool with empty revision", ValidProcessPool, map[string]any{"spec.revision": ""},
		"spec.revision", "at least 1 chars long"},
	{"pool template min above max", ValidProcessPool,
		map[string]any{"spec.template.pool.minProcesses": 3, "spec.template.pool.maxProcesses": 2},
		"spec.template.pool.minProcesses", "minProcesses (3) must be less than or equal to maxProcesses (2): lower minProcesses or raise maxProcesses"},
	{"pool template Command without command", ValidProcessPool, map[string]any{"spec.template.app.type": "Command"},
		"spec.template.app.command", "command is required when type is Command"},
}
