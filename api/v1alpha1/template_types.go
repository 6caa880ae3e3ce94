package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AppType says how a worker process is started and talked to.
// +kubebuilder:validation:Enum=WSGI;Command
type AppType string

const (
	// AppTypeWSGI runs a Python WSGI application under Ferry's embedded
	// loader, which serves HTTP/1.1 on a Unix socket the agent chooses.
	AppTypeWSGI AppType = "WSGI"
	// AppTypeCommand runs any command that serves HTTP on the loopback port
	// the agent passes in the PORT environment variable.
	AppTypeCommand AppType = "Command"
)

// RestartStrategy says how the processes of a pool are replaced when the
// revision changes.
// +kubebuilder:validation:Enum=Rolling;Blocking
type RestartStrategy string

const (
	// RestartRolling replaces one process at a time: spawn the new process,
	// wait until it is ready, stop routing to one old process, let it finish
	// its requests, stop it. No request waits for a spawn.
	RestartRolling RestartStrategy = "Rolling"
	// RestartBlocking stops every process and spawns anew; requests queue in
	// the proxy until the first new process is ready. It exists for parity
	// with Passenger's default restart.
	RestartBlocking RestartStrategy = "Blocking"
)

// AppTemplate is everything that says how one node runs an application: the
// app itself, the port its proxy listens on, the pool's sizing and timeouts,
// and how restarts are done. An AppGroup's spec embeds it; the manager
// renders it into each node's ProcessPool.
type AppTemplate struct {
	// app says what a worker process is and how to start it.
	// +required
	App AppSpec `json:"app"`

	// listen says where each node's proxy accepts requests for this app.
	// +required
	Listen ListenSpec `json:"listen"`

	// pool sizes the pool of worker processes and bounds its queue and
	// timeouts. Every field has a default; omit the whole block to take them
	// all.
	// +optional
	// +kubebuilder:default={}
	Pool PoolSpec `json:"pool,omitempty"`

	// restart says how a new revision replaces the running processes.
	// Every field has a default; omit the whole block to take them all.
	// +optional
	// +kubebuilder:default={}
	Restart RestartSpec `json:"restart,omitempty"`

	// proxy says how each node's proxy handles this app's requests. Every
	// field has a default; omit the whole block to take them all.
	// +optional
	// +kubebuilder:default={}
	Proxy ProxySpec `json:"proxy,omitempty"`
}

// AppSpec says what a worker process is and how to start it.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'WSGI' || has(self.root)",message="root is required when type is WSGI",fieldPath=.root
// +kubebuilder:validation:XValidation:rule="self.type != 'Command' || has(self.command)",message="command is required when type is Command",fieldPath=.command
// +kubebuilder:validation:XValidation:rule="self.type != 'WSGI' || !has(self.command)",message="command may only be set when type is Command",fieldPath=.command
// +kubebuilder:validation:XValidation:rule="self.type != 'WSGI' || !has(self.concurrency) || self.concurrency == 1",message="concurrency must be 1 when type is WSGI: a WSGI worker serves one request at a time",fieldPath=.concurrency
type AppSpec struct {
	// type is how a worker is started: WSGI (a Python WSGI application run by
	// Ferry's embedded loader) or Command (any command that serves HTTP on
	// $PORT).
	// +required
	Type AppType `json:"type"`

	// root is the absolute path of the application's code on the node. It is
	// resolved again at every spawn, so deploy tools may swap a symlink and
	// bump the revision; but then, while the pool resists a broken release,
	// an old process that dies is replaced from the symlink, that is from
	// the broken release: a root naming the release's own directory keeps
	// the old release for replacements, and setting it back is the
	// rollback. The working directory of every worker; for WSGI it is also
	// put first on sys.path. Required for WSGI; optional for Command
	// (default: the agent's working directory).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="root must be an absolute path, as /srv/app"
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\u0000')",message="root may not contain a NUL character: no path can hold one"
	Root string `json:"root,omitempty"`

	// startupFile is the path of the Python file, relative to root, that
	// defines the `application` callable: a file path, as mysite/wsgi.py,
	// not a module name (mysite.wsgi). A file in a package directory (one
	// with __init__.py) is loaded as a module of its package. WSGI only.
	// Default: passenger_wsgi.py.
	// +optional
	// +kubebuilder:default="passenger_wsgi.py"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="startupFile must be a path relative to root, as passenger_wsgi.py or app/wsgi.py: it may not begin with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(p, p == '..')",message="startupFile must stay inside root: it may not contain a '..' segment"
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\u0000')",message="startupFile may not contain a NUL character: no path can hold one"
	StartupFile string `json:"startupFile,omitempty"`

	// python is the Python interpreter that runs the WSGI loader: a command
	// name looked up on the worker's PATH (see env: not the agent's, unless
	// the workers run as the agent's user), or an absolute path (a
	// virtualenv's bin/python, say). WSGI only. Default, applied by the
	// agent: python3.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\u0000')",message="python may not contain a NUL character: no program's path can hold one"
	Python string `json:"python,omitempty"`

	// command is the argv of a Command app, run from root. It must serve
	// HTTP on 127.0.0.1:$PORT; $(PORT) in an argument is replaced by the
	// port. Required for Command; not allowed for WSGI.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self[0] != ''",message="command[0], the program to run, may not be empty"
	// +kubebuilder:validation:XValidation:rule="self.all(a, !a.contains('\\u0000'))",message="command may not contain a NUL character: no program's argument can hold one"
	Command []string `json:"command,omitempty"`

	// readinessPath is the HTTP path the agent GETs from a new process to
	// learn that it is ready: any answer below 500 means ready (a redirect
	// too, not followed: an app redirecting plain HTTP to https), and until
	// one comes within startTimeout the process is not (in a rolling
	// restart, a deployment error). For a WSGI app it is asked once the
	// app is imported, with Host: localhost: point it at a URL that loads
	// what the first request would (Django's URLconf and views), or an app
	// that imports fine and fails every request becomes ready. When unset,
	// a WSGI process is ready once its app is imported, a Command process
	// once its port accepts connections. It is a URL path and an optional
	// query, as /healthz or /ready?deep=1: no control characters or '#' (a
	// fragment is never sent), and each '%' in the path followed by two
	// hex digits.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches('[[:cntrl:]]') && self.matches('^/([^%?#]|%[0-9A-Fa-f]{2})*([?][^#]*)?$')",message="readinessPath must be a URL path beginning with '/' and an optional query, as /healthz: no control characters (a tab, a newline) or '#', and each '%' in the path followed by two hex digits"
	ReadinessPath string `json:"readinessPath,omitempty"`

	// concurrency is how many requests one worker process is given at once.
	// WSGI workers take one (the only allowed value); a threaded or async
	// Command app may take more. Default: 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	Concurrency int32 `json:"concurrency,omitempty"`

	// env is extra environment for every worker, on top of the agent's
	// minimal one (not the agent's own environment): PATH, the agent's
	// when the workers run as the agent's own user (an agent not running
	// as root) and it has one, otherwise
	// /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; HOME,
	// the worker user's home directory (/ when it has none); LANG, the
	// agent's, or C.UTF-8 when it has none; USER and LOGNAME, the worker
	// user's name (its uid, for a uid that neither the agent image's
	// /etc/passwd nor getent passwd has an entry for); and
	// PYTHONUNBUFFERED=1. env may set any
	// of these, and its value is the one the worker gets: a PATH with a
	// virtualenv's bin first, say, on which python and command[0] are then
	// looked up too.
	// The agent also sets FERRY_REVISION (the revision the process was
	// spawned for), for WSGI the loader's FERRY_APP_ROOT (root),
	// FERRY_STARTUP_FILE, FERRY_SOCKET and FERRY_READY_FD (which the loader
	// takes out before it imports the app), and for Command PORT (the
	// process's port). Those are the agent's: an AppGroup's env may not set
	// them (FERRY_REVISION; FERRY_APP_ROOT, FERRY_STARTUP_FILE,
	// FERRY_SOCKET and FERRY_READY_FD when type is WSGI; PORT when it is
	// Command), and the agent's value wins over one a pool still holds.
	// Any other name is the app's, FERRY_MODE say.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Env []EnvVar `json:"env,omitempty"`

	// user is the system user (name or numeric uid) the workers run as. It
	// may not be root or uid 0; the agent also refuses a user whose group,
	// or one of whose groups, is root's (gid 0). When unset and the agent
	// runs as root, the workers run as nobody; when the agent is not root,
	// they run as the agent's own user. An agent started with
	// --worker-users (the chart's agent.workerUsers) runs workers only as
	// a user in that list: any other fails to spawn.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z_][a-z0-9_.-]*[$]?|[0-9]+)$')",message="user must be a user name or a numeric uid: a name is lower-case letters, digits, '_', '.' or '-', begins with a letter or '_', and may end in '$', as www-data"
	// +kubebuilder:validation:XValidation:rule="self != 'root' && !self.matches('^0+$')",message="user may not be root or uid 0: workers never run as root"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]+$') || (self.matches('^0*[0-9]{1,10}$') && int(self) < 4294967295)",message="a numeric user must be a uid below 4294967295"
	User string `json:"user,omitempty"`
}

// EnvVar is one environment variable given to every worker process: a
// value, or one read from a Secret or ConfigMap (valueFrom), as a Pod's.
// Neither is an empty value, as in a Pod (a Go client leaves out an empty
// value).
//
// +kubebuilder:validation:XValidation:rule="!has(self.value) || !has(self.valueFrom)",message="an env variable takes one of value and valueFrom, not both: a value written here, or one read by valueFrom.secretKeyRef or valueFrom.configMapKeyRef"
type EnvVar struct {
	// name is the variable's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z_][A-Za-z0-9_]*$')",message="an env name must be letters, digits and '_', and not begin with a digit, as DJANGO_SETTINGS_MODULE"
	Name string `json:"name"`

	// value is the variable's value. Default: empty. Not with valueFrom.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\u0000')",message="an env value may not contain a NUL character: no environment variable can hold one"
	Value string `json:"value,omitempty"`

	// valueFrom reads the value from a key of a Secret or ConfigMap in the
	// AppGroup's namespace, as a Pod's env does: the agent reads it each
	// time it spawns a worker (a rolling restart picks up a changed value;
	// running workers keep theirs) and puts it in the worker's environment
	// only, never in a ProcessPool, a status, a log line or the agent's
	// saved state. While the API server does not answer, a worker of a
	// revision the agent has already read it for gets the value last read
	// (kept in the agent's memory only). The agent
	// must be allowed to get Secrets and ConfigMaps (the chart's
	// agent.secretEnv). Not in standalone mode.
	// +optional
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource is where an env variable's value is read from: exactly one
// of secretKeyRef and configMapKeyRef.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretKeyRef) != has(self.configMapKeyRef)",message="valueFrom takes exactly one of secretKeyRef and configMapKeyRef"
type EnvVarSource struct {
	// secretKeyRef selects a key of a Secret in the AppGroup's namespace.
	// +optional
	SecretKeyRef *KeySelector `json:"secretKeyRef,omitempty"`

	// configMapKeyRef selects a key of a ConfigMap in the AppGroup's
	// namespace.
	// +optional
	ConfigMapKeyRef *KeySelector `json:"configMapKeyRef,omitempty"`
}

// Ref is the selector s holds and the kind it selects from: "Secret" or
// "ConfigMap" ("" for neither, which validation refuses).
func (s EnvVarSource) Ref() (kind string, ref KeySelector) {
	switch {
	case s.SecretKeyRef != nil:
		return "Secret", *s.SecretKeyRef
	case s.ConfigMapKeyRef != nil:
		return "ConfigMap", *s.ConfigMapKeyRef
	}
	return "", KeySelector{}
}

// KeySelector names a key of a Secret or ConfigMap, with corev1's
// SecretKeySelector's and ConfigMapKeySelector's fields.
type KeySelector struct {
	// name is the Secret's or ConfigMap's name, in the AppGroup's
	// namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a Secret's or ConfigMap's name: lower-case letters, digits, '-' and '.', as django-secrets"
	Name string `json:"name"`

	// key is the key of its data whose value is the variable's.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="key must be a key of a Secret's or ConfigMap's data: letters, digits, '-', '_' and '.', as SECRET_KEY"
	Key string `json:"key"`

	// optional: when true, a missing Secret, ConfigMap or key sets no
	// variable, as in a Pod; when false (the default) it fails the spawn.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// ListenSpec says where each node's proxy accepts requests for the app.
type ListenSpec struct {
	// port is the TCP port the agent's proxy listens on, on every selected
	// node, for this app. Two AppGroups on one node need two ports: where
	// two share it, the one whose pool has the port there keeps it, else
	// the older; the other gets no pool on that node (Ready=False,
	// PortConflict) until the port is free. Changing it is no new
	// revision: every node moves at once, not in waves, opening the new
	// port first; the old one goes on taking new connections for the
	// agent's drain delay (agent.drainDelay, while the Service's endpoints
	// follow), then drains (its requests finish; new connections to it are
	// refused). A node where the new port is taken stays on the old one
	// until it is free (Ready=False, ListenFailed, says so).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// PoolSpec sizes a node's pool of worker processes and bounds its queue and
// timeouts. Durations are Go duration strings ("90s", "5m", "1h30m").
//
// The rule's message names both values: a user who set maxProcesses was
// told before "which is 6 when not set", not what they set. It uses
// format(): concatenating string(int) made the API server refuse the CRD
// (estimated cost far over budget, kubernetes/kubernetes#124234). Two
// branches, not an empty string: gofmt turns two single quotes in a
// comment into a typographic quote. The message stands when the
// expression cannot be evaluated.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minProcesses) || !has(self.maxProcesses) || self.minProcesses <= self.maxProcesses",message="minProcesses must be less than or equal to maxProcesses (6 when not set): lower minProcesses or raise maxProcesses",messageExpression="self.maxProcesses == 6 ? 'minProcesses (%d) must be less than or equal to maxProcesses (6, its default when not set): lower minProcesses or raise maxProcesses'.format([self.minProcesses]) : 'minProcesses (%d) must be less than or equal to maxProcesses (%d): lower minProcesses or raise maxProcesses'.format([self.minProcesses, self.maxProcesses])",fieldPath=.minProcesses
type PoolSpec struct {
	// minProcesses is how many worker processes the pool keeps at least,
	// however idle. It is also the number a rolling restart replaces one by
	// one. Lowered, the processes above it are not stopped at once: each
	// stops once it has gone idleTimeout without a request, as Passenger's
	// minimum instances. Default: 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	MinProcesses int32 `json:"minProcesses,omitempty"`

	// maxProcesses is the most worker processes the pool runs. While
	// requests wait in the queue, the pool spawns more, up to this. During a
	// rolling restart the pool holds at most one more than its size.
	// Lowered, the processes above it stop (least busy first, each after
	// its requests), except while the pool restarts or resists.
	// Default: 6.
	// +optional
	// +kubebuilder:default=6
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	MaxProcesses int32 `json:"maxProcesses,omitempty"`

	// maxRequestQueueSize is how many requests may wait for a free process.
	// A request beyond it is answered 503 with Retry-After at once.
	// Default: 100.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxRequestQueueSize int32 `json:"maxRequestQueueSize,omitempty"`

	// queueTimeout is how long a request may wait in the queue for a free
	// process; past it the answer is 504. Default: 60s.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$')",message="queueTimeout must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('1h'))",message="queueTimeout must be a positive duration of at most 1h"
	QueueTimeout *metav1.Duration `json:"queueTimeout,omitempty"`

	// idleTimeout is how long a process may go without a request before the
	// pool stops it, never below minProcesses. Default: 5m.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$')",message="idleTimeout must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('24h'))",message="idleTimeout must be a positive duration of at most 24h"
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`

	// maxRequestsPerProcess recycles a process after it served this many
	// requests: a replacement is spawned first, then the old one drains, as
	// in a rolling restart of that one process. It is a soft limit: until
	// its replacement is ready (a boot's worth), the old process takes a
	// request only when no other ready process has a free slot, so under
	// full load it serves more than this many. The same holds for one
	// recycled for memoryLimit. 0 turns it off. Default: 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000000
	MaxRequestsPerProcess int64 `json:"maxRequestsPerProcess,omitempty"`

	// maxRequestTime is how long a process may take to begin its answer to
	// a request (to finish it, when the proxy buffers the answer), as
	// Passenger Enterprise's max_request_time: a process that has sent no
	// response head that long after the request began to reach it is
	// killed (SIGKILL to its process group); the client gets 504, any
	// other request at that process fails with it, and the pool replaces
	// the process as it would a crashed one, with no backoff. A response
	// body the proxy buffers (a declared length within
	// proxy.responseBufferLimit, while the agent's response buffer memory
	// lasts) must also be whole by then: no client paces it; past the
	// limit the proxy takes what has reached it, unread, and more only
	// while the body flows (each next piece within 50ms, for at most 1s):
	// one that stalls is an overrun. The clock does not run while any other response is
	// written (a long download, a stream, a slow client), nor while a
	// body that streams from the client (past
	// proxy.requestBufferLimit, with buffering off, or past the agent's
	// disk for buffered bodies) is sent, though a process that reads none
	// of it that long is killed too; nor once an upgrade (WebSocket) was
	// answered. Unset turns it off. Default: unset.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$')",message="maxRequestTime must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('24h'))",message="maxRequestTime must be a duration from 1s to 24h"
	MaxRequestTime *metav1.Duration `json:"maxRequestTime,omitempty"`

	// memoryLimit recycles a process whose resident memory (RSS) grows above
	// it, replacement first, as maxRequestsPerProcess does. It still applies
	// while the pool resists a deployment error. A process already above it
	// as it became ready, before any request, is left (its replacement
	// would start as large) until it grows past twice its size then (a
	// leak), and the agent logs once that memoryLimit is below what the
	// app needs to start, with that bound. One that grows above it within its first 10
	// requests is recycled, and the agent logs once that a limit below the
	// app's warmed-up size replaces every process after a few requests.
	// Unset turns it off.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="string(self).matches(r'^[+-]?(\\d+[.]?\\d*|[.]\\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?(\\d+[.]?\\d*|[.]\\d+))?$') && (string(self).size() > 64 || string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}') || isQuantity(string(self)))",message="memoryLimit must be a quantity: a number and an optional suffix, with no space: Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), as 512Mi or 1G"
	// +kubebuilder:validation:XValidation:rule="!string(self).matches('^[+-]?[.]?[0-9]') || (string(self).size() <= 64 && !string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}'))",message="memoryLimit must be at most 64 characters, with an exponent (e) from -999 to 999"
	// +kubebuilder:validation:XValidation:rule="!string(self).matches('^[+-]?[.]?[0-9]') || string(self).size() > 64 || string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}') || !isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('1Mi'))",message="memoryLimit must be greater than 1Mi"
	MemoryLimit *resource.Quantity `json:"memoryLimit,omitempty"`

	// startTimeout is how long a new process may take to become ready. A
	// spawn still not ready then is killed and counts as a spawn error.
	// Default: 90s.
	// +optional
	// +kubebuilder:default="90s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$')",message="startTimeout must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('1h'))",message="startTimeout must be a positive duration of at most 1h"
	StartTimeout *metav1.Duration `json:"startTimeout,omitempty"`

	// shutdownTimeout bounds each of the two waits of a stopping process:
	// for its in-flight requests to finish (it gets no new ones meanwhile),
	// then, after SIGTERM, for it to exit. A process still running after the
	// second wait gets SIGKILL. When the pool itself stops (its agent
	// stops, or its AppGroup is deleted or leaves the node), its whole stop
	// (in a cluster, after the agent's drain delay) takes one shutdownTimeout, and a second
	// or so to SIGKILL and reap what still runs then: the proxy's wait for
	// in-flight requests and both waits of every process share it, so a
	// process whose requests took all of it gets SIGKILL right after
	// SIGTERM (one whose requests were over still gets a second, at most
	// the timeout, to exit on SIGTERM, even past it). The agent's grace
	// period must cover the largest one on its node (the pools stop in
	// parallel). Default: 60s.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$')",message="shutdownTimeout must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('1h'))",message="shutdownTimeout must be a positive duration of at most 1h"
	ShutdownTimeout *metav1.Duration `json:"shutdownTimeout,omitempty"`
}

// RestartSpec says how a new revision replaces the running processes.
type RestartSpec struct {
	// strategy is how one node's processes are replaced: Rolling (one at a
	// time, new before old, no request waits for a spawn) or Blocking (stop
	// all, spawn anew, requests queue meanwhile). Deployment error
	// resistance needs Rolling: a Blocking restart to a revision that
	// cannot spawn leaves its node with no process (the rollout halts
	// there). Default: Rolling.
	// +optional
	// +kubebuilder:default=Rolling
	Strategy RestartStrategy `json:"strategy,omitempty"`

	// resistDeploymentErrors freezes a pool whose new revision fails to
	// spawn during a rolling restart: the old processes keep serving, nothing
	// of the new revision is spawned, nothing for traffic, nothing is
	// idle-cleaned (an old process that exits is replaced by the old
	// revision, up to minProcesses), the error is recorded, and no further
	// node gets the revision. A new revision ends it; turning this field off
	// while a pool resists does not (it applies from the next revision on).
	// When false, the failed process is skipped and the restart goes on.
	// Default: true.
	// +optional
	// +kubebuilder:default=true
	ResistDeploymentErrors *bool `json:"resistDeploymentErrors,omitempty"`

	// maxConcurrentNodes is how many nodes roll a new revision at once. The
	// next node starts only when the previous ones run every process on the
	// new revision and ready; while the revision has run on no node yet,
	// only once those processes have also lived 10s (the crash window), so
	// that a revision whose processes boot and then die halts at the first
	// wave, and its nodes return to what worked. A new AppGroup, which has
	// nothing running to keep serving, starts on every selected node at
	// once; waves are for a change of revision. A node still restarting
	// onto an earlier revision gets a newer one at once, past this bound
	// (it restarts anyway). A node whose agent is silent before it gets
	// the revision waits, without holding the others back, until it is
	// heard again. One whose agent stops or falls silent after it got the
	// revision keeps its place in the wave until it is heard again, as a
	// canary would: the revision may be what stopped it, so no other node
	// gets it meanwhile (RollingRestart names the node; restart its agent,
	// or unselect the node). Default: 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxConcurrentNodes int32 `json:"maxConcurrentNodes,omitempty"`
}

// ResistsDeploymentErrors tells whether pools of this spec resist a
// deployment error: resistDeploymentErrors (true when not set), which a
// Blocking restart gives up, as it stops the old processes first. The
// manager returns a node by it, and kubectl ferry's wait reads it to know
// whether one will be.
func (r *RestartSpec) ResistsDeploymentErrors() bool {
	return (r.ResistDeploymentErrors == nil || *r.ResistDeploymentErrors) && r.Strategy != RestartBlocking
}

// ProxySpec says how a node's proxy handles the app's requests.
type ProxySpec struct {
	// requestBuffering makes the proxy read a request's whole body before
	// the request queues for a process, as Passenger does by default: a slow
	// upload then holds no process, a client that gives up mid-upload never
	// reaches one, and a chunked body reaches the app with a Content-Length.
	// The first 64 KiB are held in memory, the rest in a file without a
	// name under the agent's --request-buffer-dir (by default under its state
	// directory). A client that sends none of its body for the agent's
	// --request-body-timeout gets 408. When false, a body streams to the
	// process as it arrives, so the app may answer before it is complete
	// (an early 413, or a streaming upload handler). Default: true.
	// +optional
	// +kubebuilder:default=true
	RequestBuffering *bool `json:"requestBuffering,omitempty"`

	// requestBufferLimit is the most of one request's body the proxy
	// buffers. A body declared larger is streamed, not buffered; a chunked
	// body that grows past it is sent on with what was buffered and streams
	// from there. Either holds a process while the rest arrives. It bounds
	// what one request takes of the node's disk; what concurrent uploads
	// take together is bounded by the agent's --request-buffer-disk, past
	// which a body streams too. Default: 64Mi.
	// +optional
	// +kubebuilder:default="64Mi"
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="string(self).matches(r'^[+-]?(\\d+[.]?\\d*|[.]\\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?(\\d+[.]?\\d*|[.]\\d+))?$') && (string(self).size() > 64 || string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}') || isQuantity(string(self)))",message="requestBufferLimit must be a quantity: a number and an optional suffix, with no space: Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), as 512Mi or 1G"
	// +kubebuilder:validation:XValidation:rule="!string(self).matches('^[+-]?[.]?[0-9]') || (string(self).size() <= 64 && !string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}'))",message="requestBufferLimit must be at most 64 characters, with an exponent (e) from -999 to 999"
	// +kubebuilder:validation:XValidation:rule="!string(self).matches('^[+-]?[.]?[0-9]') || string(self).size() > 64 || string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}') || !isQuantity(string(self)) || (quantity(string(self)).isGreaterThan(quantity('0')) && quantity(string(self)).isLessThan(quantity('8Gi')))",message="requestBufferLimit must be greater than 0 and less than 8Gi"
	RequestBufferLimit *resource.Quantity `json:"requestBufferLimit,omitempty"`

	// responseBufferLimit is the largest response body, of a declared
	// length, that the proxy reads whole from the process before it sends
	// it on, as Passenger does: the process is then free for the next
	// request however slowly the client reads, and a process that dies
	// mid-body gets the client a 502, not a cut-short response. The body
	// is held in the agent's memory until the client has it: each slow
	// client costs up to this much, and all of them together at most the
	// agent's --response-buffer-memory, past which a response is relayed
	// as it is read. A larger response, and one without a length
	// (chunked: a stream, server-sent events), goes to the client as it
	// comes, holding the process until the client has it. 0 turns
	// response buffering off. Default: 1Mi.
	// +optional
	// +kubebuilder:default="1Mi"
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="string(self).matches(r'^[+-]?(\\d+[.]?\\d*|[.]\\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?(\\d+[.]?\\d*|[.]\\d+))?$') && (string(self).size() > 64 || string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}') || isQuantity(string(self)))",message="responseBufferLimit must be a quantity: a number and an optional suffix, with no space: Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), as 512Mi or 1G"
	// +kubebuilder:validation:XValidation:rule="!string(self).matches('^[+-]?[.]?[0-9]') || (string(self).size() <= 64 && !string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}'))",message="responseBufferLimit must be at most 64 characters, with an exponent (e) from -999 to 999"
	// +kubebuilder:validation:XValidation:rule="!string(self).matches('^[+-]?[.]?[0-9]') || string(self).size() > 64 || string(self).matches(r'[eE][+-]?0*[1-9]\\d{3}') || !isQuantity(string(self)) || (!quantity(string(self)).isLessThan(quantity('0')) && !quantity(string(self)).isGreaterThan(quantity('64Mi')))",message="responseBufferLimit must be between 0 and 64Mi"
	ResponseBufferLimit *resource.Quantity `json:"responseBufferLimit,omitempty"`
}
