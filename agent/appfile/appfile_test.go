package appfile

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/config/crd"
	"github.com/ferry-dev/ferry/internal/testsupport/validationcases"
)

func TestSampleGetsEveryDefault(t *testing.T) {
	const path = "../../config/samples/ferry_v1alpha1_appgroup.yaml"
	groups, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 {
		t.Fatalf("got %d AppGroups, want 1", len(groups))
	}
	got := groups[0]
	if got.Name != "hello" || got.Namespace != DefaultNamespace {
		t.Errorf("name = %s/%s, want %s/hello", got.Namespace, got.Name, DefaultNamespace)
	}
	if got.Kind != "AppGroup" || got.APIVersion != "ferry.dev/v1alpha1" {
		t.Errorf("type = %s %s, want ferry.dev/v1alpha1 AppGroup", got.APIVersion, got.Kind)
	}
	wantPool := v1alpha1.PoolSpec{
		MinProcesses:        1,
		MaxProcesses:        6,
		MaxRequestQueueSize: 100,
		QueueTimeout:        &metav1.Duration{Duration: 60 * time.Second},
		IdleTimeout:         &metav1.Duration{Duration: 5 * time.Minute},
		StartTimeout:        &metav1.Duration{Duration: 90 * time.Second},
		ShutdownTimeout:     &metav1.Duration{Duration: 60 * time.Second},
	}
	wantRestart := v1alpha1.RestartSpec{
		Strategy:               v1alpha1.RestartRolling,
		ResistDeploymentErrors: ptr.To(true),
		MaxConcurrentNodes:     1,
	}
	if diff := compare(wantPool, got.Spec.Pool); diff != "" {
		t.Errorf("pool defaults: %s", diff)
	}
	if diff := compare(wantRestart, got.Spec.Restart); diff != "" {
		t.Errorf("restart defaults: %s", diff)
	}
	if p := got.Spec.Proxy; !ptr.Deref(p.RequestBuffering, false) || p.RequestBufferLimit == nil || p.RequestBufferLimit.Value() != 64<<20 ||
		p.ResponseBufferLimit == nil || p.ResponseBufferLimit.Value() != 1<<20 {
		t.Errorf("proxy defaults: %+v, want request buffering on, up to 64Mi, and responses up to 1Mi", p)
	}
	if got.Spec.App.StartupFile != "passenger_wsgi.py" {
		t.Errorf("app.startupFile = %q, want the default passenger_wsgi.py", got.Spec.App.StartupFile)
	}
	if got.Spec.App.Concurrency != 1 {
		t.Errorf("app.concurrency = %d, want the default 1", got.Spec.App.Concurrency)
	}
	if got.Spec.App.Root != "/srv/ferry/examples/hello-wsgi" {
		t.Errorf("app.root = %q, want the absolute root kept as written", got.Spec.App.Root)
	}
	if got.Annotations[v1alpha1.RevisionAnnotation] != "1" {
		t.Errorf("revision annotation = %q, want 1", got.Annotations[v1alpha1.RevisionAnnotation])
	}
	if got.Spec.NodeSelector["ferry.dev/web"] != "true" {
		t.Errorf("nodeSelector = %v, want ferry.dev/web=true", got.Spec.NodeSelector)
	}
}

func TestMultipleDocumentsAndRelativeRoots(t *testing.T) {
	groups, err := Load(filepath.Join("testdata", "multi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 {
		t.Fatalf("got %d AppGroups, want 2 (empty documents skipped)", len(groups))
	}
	hello, api := groups[0], groups[1]
	if hello.Name != "hello" || api.Name != "api" {
		t.Fatalf("names = %s, %s; want hello, api in file order", hello.Name, api.Name)
	}
	if want := filepath.Join(dir, "app"); hello.Spec.App.Root != want {
		t.Errorf("hello root = %q, want %q", hello.Spec.App.Root, want)
	}
	if api.Spec.App.Root != dir {
		t.Errorf("api root = %q, want %q", api.Spec.App.Root, dir)
	}
	if api.Namespace != "web" || hello.Namespace != DefaultNamespace {
		t.Errorf("namespaces = %q, %q; want a set one kept and an unset one defaulted", hello.Namespace, api.Namespace)
	}
	// What the file sets wins; what it leaves out is defaulted.
	if api.Spec.App.Concurrency != 8 || api.Spec.Pool.MaxProcesses != 2 || api.Spec.Pool.MinProcesses != 1 {
		t.Errorf("api concurrency/max/min = %d/%d/%d, want 8/2/1",
			api.Spec.App.Concurrency, api.Spec.Pool.MaxProcesses, api.Spec.Pool.MinProcesses)
	}
	if q := api.Spec.Pool.MemoryLimit; q == nil || q.Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("api memoryLimit = %v, want 512Mi", q)
	}
	if r := api.Spec.Restart; r.Strategy != v1alpha1.RestartBlocking || r.ResistDeploymentErrors == nil ||
		*r.ResistDeploymentErrors || r.MaxConcurrentNodes != 1 {
		t.Errorf("api restart = %+v, want Blocking, resist false, default maxConcurrentNodes 1", r)
	}
	if got := api.Spec.App.Command; len(got) != 2 || got[1] != "--port=$(PORT)" {
		t.Errorf("api command = %q", got)
	}
}

func TestJSON(t *testing.T) {
	groups, err := Load(filepath.Join("testdata", "hello.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 {
		t.Fatalf("got %d AppGroups, want 1", len(groups))
	}
	g := groups[0]
	if g.Name != "hello-json" || g.Spec.App.StartupFile != "wsgi.py" || g.Spec.Pool.MinProcesses != 2 ||
		g.Spec.Pool.IdleTimeout.Duration != 90*time.Second || g.Spec.Pool.MaxProcesses != 6 {
		t.Errorf("got %+v", g.Spec)
	}
}

// TestMicrosecondsInEitherMu: a file's duration may spell microseconds
// with the micro sign (U+00B5) or the Greek mu (U+03BC), as Go reads
// them: the CRD's rules, run here by the agent's own CEL, take both, and
// the field decodes to what Go reads.
func TestMicrosecondsInEitherMu(t *testing.T) {
	groups, err := Parse([]byte(validAppGroup+"  pool: {startTimeout: 90000000\u00b5s, idleTimeout: 1500000\u03bcs}\n"), "", "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pool := groups[0].Spec.Pool
	if pool.StartTimeout.Duration != 90*time.Second || pool.IdleTimeout.Duration != 1500*time.Millisecond {
		t.Errorf("startTimeout, idleTimeout = %v, %v, want 1m30s, 1.5s", pool.StartTimeout.Duration, pool.IdleTimeout.Duration)
	}
}

func TestParseWithoutBaseDirKeepsRelativeRootInvalid(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(validAppGroup, "/srv/app", "app", 1)), "", "")
	if err == nil || !strings.Contains(err.Error(), `<input>: AppGroup "valid": spec.app.root: Invalid value: "app": root must be an absolute path, as /srv/app`) {
		t.Fatalf("got %v, want the relative root rejected", err)
	}
}

func TestParseResolvesAgainstBaseDir(t *testing.T) {
	groups, err := Parse([]byte(strings.Replace(validAppGroup, "/srv/app", "../app/./x", 1)), "/srv/apps/hello", "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := groups[0].Spec.App.Root; got != "/srv/apps/app/x" {
		t.Errorf("root = %q, want /srv/apps/app/x", got)
	}
}

// The valid AppGroups the cases start from, the API's.
const (
	validAppGroup        = validationcases.ValidAppGroup
	validCommandAppGroup = validationcases.ValidCommandAppGroup
)

// invalidCase is an AppGroup that breaks one rule.
type invalidCase struct {
	name   string
	base   string
	set    map[string]any // dotted path -> value; nil value deletes
	field  string         // the field the message must name
	reason string         // a fragment of the rule's message
}

// invalidCases are api/v1alpha1's invalid AppGroups, which its
// TestInvalidObjectsAreRejected sends to a real API server, with the same
// field and words (the standalone agent and the cluster refuse the same
// things in the same words, but for fileWords), then fileCases. A
// fileWords entry that names no case fails the test: its case was renamed
// or removed, and the words it kept checked no longer are.
func invalidCases(t *testing.T) []invalidCase {
	t.Helper()
	var cases []invalidCase
	used := map[string]bool{}
	for _, c := range validationcases.Invalid {
		if c.Base == validationcases.ValidProcessPool { // a file holds AppGroups only
			continue
		}
		reason := c.Reason
		if words, ok := fileWords[c.Name]; ok {
			reason = words
			used[c.Name] = true
		}
		cases = append(cases, invalidCase{c.Name, c.Base, c.Set, c.Field, reason})
	}
	for name := range fileWords {
		if !used[name] {
			t.Errorf("fileWords has words for %q, which is no AppGroup case of validationcases.Invalid", name)
		}
	}
	return append(cases, fileCases...)
}

// fileWords are the file's words for a value of the wrong type, where the
// server says "must be of type boolean" (typesInWords), by case name.
var fileWords = map[string]string{
	"request buffering not a bool": `Invalid value: "on": must be a boolean (true or false)`,
	"resist not a bool":            `Invalid value: "yes": must be a boolean (true or false)`,
}

// fileCases are what the API test does not try: what only a file is
// refused for, and what the server also refuses.
var fileCases = []invalidCase{
	{"quantity with a vast negative exponent", validAppGroup, map[string]any{"spec.pool.memoryLimit": "1e-99999999999999"},
		"spec.pool.memoryLimit", "memoryLimit must be at most 64 characters, with an exponent (e) from -999 to 999"},

	// Beyond the server test: what the server also rejects, and what
	// only a file can get wrong.
	{"WSGI readinessPath that is no path", validAppGroup, map[string]any{"spec.app.readinessPath": "healthz"},
		"spec.app.readinessPath", "readinessPath must be a URL path beginning with '/'"},
	{"Command concurrency too large", validCommandAppGroup, map[string]any{"spec.app.concurrency": 2000},
		"spec.app.concurrency", "less than or equal to 1024"},
	{"duplicate env name", validAppGroup, map[string]any{"spec.app.env": []any{
		map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "A", "value": "2"}}},
		"spec.app.env[1]", "Duplicate value"},
	{"name not a DNS subdomain", validAppGroup, map[string]any{"metadata.name": "Hello_World"},
		"metadata.name", "a lowercase RFC 1123 subdomain"},
	{"bad label", validAppGroup, map[string]any{"metadata.labels": map[string]any{"a b": "c"}},
		"metadata.labels", "name part must consist of"},
	{"pool not an object", validAppGroup, map[string]any{"spec.pool": "big"},
		"spec.pool", `Invalid value: "big": must be a mapping`},
}

// TestInvalidAppGroupsAreRejected checks that each invalid case is rejected
// with an error naming the source, the object, the field and the rule.
func TestInvalidAppGroupsAreRejected(t *testing.T) {
	for _, tc := range invalidCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			data := edit(t, tc.base, tc.set)
			groups, err := Parse(data, "", "test.yaml")
			if err == nil {
				t.Fatalf("accepted %+v, want rejected naming %s (%s)", groups, tc.field, tc.reason)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field+":") || !strings.Contains(msg, tc.reason) {
				t.Errorf("error does not name %q with %q:\n%s", tc.field, tc.reason, msg)
			}
			// One problem is one line naming the input and the object;
			// several are a line naming the input, then one line for
			// each, indented, naming the object.
			name := "valid"
			if n, ok := tc.set["metadata.name"].(string); ok {
				name = n
			}
			object := fmt.Sprintf("AppGroup %q: ", name)
			lines := strings.Split(msg, "\n")
			if len(lines) == 1 {
				if !strings.HasPrefix(lines[0], "test.yaml: "+object) {
					t.Errorf("the error does not start with the source and the object: %q", lines[0])
				}
			} else {
				if want := fmt.Sprintf("test.yaml: %d problems:", len(lines)-1); lines[0] != want {
					t.Errorf("first line %q, want %q", lines[0], want)
				}
				for _, line := range lines[1:] {
					if !strings.HasPrefix(line, "  "+object) {
						t.Errorf("line does not start with an indent and the object: %q", line)
					}
				}
			}
			if groups != nil {
				t.Errorf("got AppGroups along with the error: %+v", groups)
			}
		})
	}
}

// TestAppsOwnFerryEnvNamesAccepted: as the API accepts them, a file's env
// may set FERRY_ names the agent does not set for the app's workers: a
// WSGI app's FERRY_MODE, a Command app's FERRY_SOCKET and the loader's
// other names (a Command app has no loader).
func TestAppsOwnFerryEnvNamesAccepted(t *testing.T) {
	for _, tc := range []struct {
		base  string
		names []string
	}{
		{validAppGroup, []string{"FERRY_MODE", "FERRY_REVISIONS", "FERRY_SOCKET_PATH", "FERRY_"}},
		{validCommandAppGroup, []string{"FERRY_MODE", "FERRY_SOCKET", "FERRY_APP_ROOT", "FERRY_STARTUP_FILE", "FERRY_READY_FD"}},
	} {
		var envs []any
		for _, n := range tc.names {
			envs = append(envs, map[string]any{"name": n, "value": "x"})
		}
		groups, err := Parse(edit(t, tc.base, map[string]any{"spec.app.env": envs}), "", "test.yaml")
		if err != nil {
			t.Errorf("env %v refused: %v", tc.names, err)
			continue
		}
		if got := groups[0].Spec.App.Env; len(got) != len(tc.names) {
			t.Errorf("env %v parsed as %+v", tc.names, got)
		}
	}
}

// TestInvalidFiles checks what goes wrong only with a file, or with a whole
// document, against the complete error.
func TestInvalidFiles(t *testing.T) {
	cases := []struct {
		name string
		data string
		want []string // every line of the error, in order
	}{{
		name: "env valueFrom, which the server accepts",
		data: strings.Replace(validAppGroup, "root: /srv/app}", "root: /srv/app, env: [{name: A, value: a}, "+
			"{name: SECRET_KEY, valueFrom: {secretKeyRef: {name: django, key: k}}}, {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: m}}}]}", 1),
		want: []string{
			`f.yaml: 2 problems:`,
			`  AppGroup "valid": spec.app.env[1].valueFrom: Forbidden: SECRET_KEY: the standalone agent has no API server to read Secret "django" from: set value instead, in a file others may not read`,
			`  AppGroup "valid": spec.app.env[2].valueFrom: Forbidden: MODE: the standalone agent has no API server to read ConfigMap "settings" from: set value instead, in a file others may not read`,
		},
	}, {
		name: "unknown field",
		data: validAppGroup + "  pool: {maxProcess: 3}\n",
		want: []string{`f.yaml: AppGroup "valid": unknown field "spec.pool.maxProcess"`},
	}, {
		name: "unknown fields anywhere, reported with the other errors",
		data: strings.Replace(validAppGroup, "{name: valid}", "{name: valid, labls: {a: b}}", 1) +
			"  pool: {minProcesses: 7, maxProcess: 3}\nsatus: {}\n",
		want: []string{
			`f.yaml: 4 problems:`,
			`  AppGroup "valid": unknown field "metadata.labls"`,
			`  AppGroup "valid": unknown field "satus"`,
			`  AppGroup "valid": unknown field "spec.pool.maxProcess"`,
			`  AppGroup "valid": spec.pool.minProcesses: Invalid value: minProcesses (7) must be less than or equal to maxProcesses (6, its default when not set): lower minProcesses or raise maxProcesses`,
		},
	}, {
		// The file and the field, in a file's words: not the API server's
		// "spec.pool.minProcesses in body should be ...".
		name: "a bound of the schema",
		data: validAppGroup + "  pool: {minProcesses: -1}\n",
		want: []string{`f.yaml: AppGroup "valid": spec.pool.minProcesses: Invalid value: -1: should be greater than or equal to 1`},
	}, {
		name: "all field errors of a document",
		data: validAppGroup + "  pool: {minProcesses: 7, startTimeout: 2h}\n",
		want: []string{
			`f.yaml: 2 problems:`,
			`  AppGroup "valid": spec.pool.minProcesses: Invalid value: minProcesses (7) must be less than or equal to maxProcesses (6, its default when not set): lower minProcesses or raise maxProcesses`,
			`  AppGroup "valid": spec.pool.startTimeout: Invalid value: "2h": startTimeout must be a positive duration of at most 1h`,
		},
	}, {
		name: "CEL rules skipped after a type error, as on the server",
		data: validAppGroup + "  pool: {minProcesses: 7}\n  restart: {strategy: Parallel}\n",
		want: []string{
			`f.yaml: 2 problems:`,
			`  AppGroup "valid": spec.restart.strategy: Unsupported value: "Parallel": supported values: "Rolling", "Blocking"`,
			`  AppGroup "valid": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`,
		},
	}, {
		// The value and what it must be, not its Go type twice
		// ("Invalid value: \"string\": must be of type integer: \"string\"").
		name: "a port that is no number",
		data: strings.Replace(validAppGroup, "8080", "abc", 1),
		want: []string{
			`f.yaml: 2 problems:`,
			`  AppGroup "valid": spec.listen.port: Invalid value: "abc": must be an integer`,
			`  AppGroup "valid": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`,
		},
	}, {
		// The OpenAPI validator's format check names the field only in its
		// detail, on no field ("<nil>: Invalid value: \"\": Checked value
		// must be of type integer with format int32 in spec.listen.port"),
		// after a type error that says the same.
		name: "a port that is no integer",
		data: strings.Replace(validAppGroup, "8080", "80.5", 1),
		want: []string{
			`f.yaml: 2 problems:`,
			`  AppGroup "valid": spec.listen.port: Invalid value: 80.5: must be an integer`,
			`  AppGroup "valid": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`,
		},
	}, {
		name: "a type error in a list, with the other errors of its field",
		data: strings.NewReplacer("root: /srv/app}", "root: /srv/app, env: [{name: A, value: 1.5}]}",
			"8080", "70000.5").Replace(validAppGroup),
		want: []string{
			`f.yaml: 4 problems:`,
			`  AppGroup "valid": spec.app.env[0].value: Invalid value: 1.5: must be a string`,
			`  AppGroup "valid": spec.listen.port: Invalid value: 70000.5: must be an integer`,
			`  AppGroup "valid": spec.listen.port: Invalid value: 70000.5: should be less than or equal to 65535`,
			`  AppGroup "valid": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`,
		},
	}, {
		name: "wrong kind",
		data: strings.Replace(validAppGroup, "kind: AppGroup", "kind: ProcessPool", 1),
		want: []string{`f.yaml: document 1 (line 2): kind: Invalid value: "ProcessPool": must be AppGroup`},
	}, {
		name: "wrong apiVersion, missing kind",
		data: strings.Replace(strings.Replace(validAppGroup, "kind: AppGroup\n", "", 1), "v1alpha1", "v1", 1),
		want: []string{
			`f.yaml: 2 problems:`,
			`  document 1 (line 2): apiVersion: Invalid value: "ferry.dev/v1": must be ferry.dev/v1alpha1`,
			`  document 1 (line 2): kind: Required value: must be AppGroup`,
		},
	}, {
		name: "missing name",
		data: strings.Replace(validAppGroup, "metadata: {name: valid}", "metadata: {labels: {a: b}}", 1),
		want: []string{`f.yaml: document 1 (line 2): metadata.name: Required value: name or generateName is required`},
	}, {
		name: "metadata errors do not hide CEL rules",
		data: strings.Replace(validAppGroup, "metadata: {name: valid}", "metadata: {}", 1) + "  pool: {minProcesses: 7}\n",
		want: []string{
			`f.yaml: 2 problems:`,
			`  document 1 (line 2): metadata.name: Required value: name or generateName is required`,
			`  document 1 (line 2): spec.pool.minProcesses: Invalid value: minProcesses (7) must be less than or equal to maxProcesses (6, its default when not set): lower minProcesses or raise maxProcesses`,
		},
	}, {
		name: "generateName",
		data: strings.Replace(validAppGroup, "{name: valid}", "{generateName: valid-}", 1),
		want: []string{
			`f.yaml: 2 problems:`,
			`  document 1 (line 2): metadata.generateName: Forbidden: not supported in a file: set metadata.name`,
			`  document 1 (line 2): metadata.name: Required value: name or generateName is required`,
		},
	}, {
		name: "duplicate name",
		data: validAppGroup + "---\n" + strings.Replace(validAppGroup, "8080", "8081", 1),
		want: []string{`f.yaml: document 2 (line 10): metadata.name: Duplicate value: "valid": document 1 (line 2) has the same name`},
	}, {
		name: "duplicate port",
		data: validAppGroup + "---\n" + strings.Replace(validAppGroup, "name: valid", "name: other", 1),
		want: []string{`f.yaml: AppGroup "other": spec.listen.port: Duplicate value: 8080: AppGroup "valid" listens on it too; AppGroups served by one agent need different ports`},
	}, {
		name: "YAML syntax error, with the line in the file",
		data: validAppGroup + "---\n" + strings.Replace(validAppGroup, "listen: {port: 8080}", "listen: {port: 8080", 1),
		want: []string{`f.yaml: document 2 (line 10): yaml: line 15: did not find expected ',' or '}'`},
	}, {
		name: "duplicate keys, with their lines in the file",
		data: validAppGroup + "---\n" + strings.Replace(validAppGroup, "name: valid", "name: b", 1) +
			"  listen: {port: 8081}\n  app: {type: Command}\n",
		want: []string{"f.yaml: document 2 (line 10): yaml: unmarshal errors:\n" +
			"  line 16: key \"listen\" already set in map\n" +
			"  line 17: key \"app\" already set in map"},
	}, {
		name: "a problem of several lines among others, its lines indented further",
		data: strings.Replace(validAppGroup, "8080", "0", 1) + "---\n" + strings.Replace(validAppGroup, "name: valid", "name: b", 1) +
			"  listen: {port: 8081}\n  app: {type: Command}\n",
		want: []string{
			`f.yaml: 2 problems:`,
			`  AppGroup "valid": spec.listen.port: Invalid value: 0: should be greater than or equal to 1`,
			`  document 2 (line 10): yaml: unmarshal errors:`,
			`    line 16: key "listen" already set in map`,
			`    line 17: key "app" already set in map`,
		},
	}, {
		name: "every bad document",
		data: strings.Replace(validAppGroup, "8080", "0", 1) + "---\n" + validAppGroup +
			"---\n" + strings.Replace(validAppGroup, "{name: valid}", "{name: c}", 1) + "  restart: {maxConcurrentNodes: 0}\n",
		want: []string{
			`f.yaml: 4 problems:`,
			`  AppGroup "valid": spec.listen.port: Invalid value: 0: should be greater than or equal to 1`,
			`  document 2 (line 10): metadata.name: Duplicate value: "valid": document 1 (line 2) has the same name`,
			`  AppGroup "c": spec.restart.maxConcurrentNodes: Invalid value: 0: should be greater than or equal to 1`,
			`  AppGroup "c": spec.listen.port: Duplicate value: 8080: document 2 (line 10) listens on it too; AppGroups served by one agent need different ports`,
		},
	}, {
		name: "not an object",
		data: "- a\n- b\n",
		want: []string{`f.yaml: document 1 (line 1): not an object: an AppGroup is a mapping with apiVersion, kind, metadata and spec`},
	}, {
		name: "no AppGroup",
		data: "# nothing here\n---\n---\n",
		want: []string{`f.yaml: no AppGroup found`},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			groups, err := Parse([]byte(tc.data), "/srv", "f.yaml")
			if err == nil {
				t.Fatalf("accepted %+v", groups)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if groups != nil {
				t.Errorf("got AppGroups along with the error: %+v", groups)
			}
		})
	}
}

func TestFieldErrorsCanBeInspected(t *testing.T) {
	_, err := Parse(edit(t, validAppGroup, map[string]any{"spec.listen.port": 0}), "", "f.yaml")
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Field != "spec.listen.port" {
		t.Fatalf("errors.As(%v) = %v, want the *field.Error for spec.listen.port", err, fe)
	}
}

func TestSchemaIsTheGeneratedCRD(t *testing.T) {
	crds, err := crd.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range crds {
		kinds = append(kinds, c.Spec.Names.Kind)
	}
	if strings.Join(kinds, ",") != "AppGroup,ProcessPool" {
		t.Errorf("embedded CRDs = %v, want AppGroup and ProcessPool, by name", kinds)
	}
	// Callers get copies: changing one does not change the schema Parse uses.
	ag, err := crd.ByKind("AppGroup")
	if err != nil {
		t.Fatal(err)
	}
	ag.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties = nil
	again, err := crd.ByKind("AppGroup")
	if err != nil || again.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties == nil {
		t.Fatalf("ByKind handed out shared state (err %v)", err)
	}
	if _, err := crd.ByKind("Deployment"); err == nil {
		t.Error("ByKind(Deployment) succeeded, want an error")
	}
}

// TestParseConcurrently shares the compiled schema between goroutines; run
// with -race.
func TestParseConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		data := edit(t, validAppGroup, map[string]any{"spec.pool.minProcesses": i + 1})
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups, err := Parse(data, "", "f.yaml")
			switch {
			case i+1 <= 6 && (err != nil || groups[0].Spec.Pool.MinProcesses != int32(i+1)):
				t.Errorf("minProcesses %d: got %v, %v", i+1, groups, err)
			case i+1 > 6 && err == nil:
				t.Errorf("minProcesses %d: accepted above the default maxProcesses", i+1)
			}
		}()
	}
	wg.Wait()
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "absent.yaml"))
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
}

// edit applies set (dotted path -> value, nil deletes) to the manifest and
// returns it as YAML.
func edit(t *testing.T, manifest string, set map[string]any) []byte {
	t.Helper()
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatal(err)
	}
	for path, value := range set {
		keys := strings.Split(path, ".")
		if value == nil {
			unstructured.RemoveNestedField(obj, keys...)
			continue
		}
		if err := unstructured.SetNestedField(obj, validationcases.JSONValue(value), keys...); err != nil {
			t.Fatal(err)
		}
	}
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// compare reports the difference between two values as their YAML.
func compare(want, got any) string {
	w, _ := yaml.Marshal(want)
	g, _ := yaml.Marshal(got)
	if string(w) == string(g) {
		return ""
	}
	return fmt.Sprintf("\nwant:\n%s\ngot:\n%s", w, g)
}
