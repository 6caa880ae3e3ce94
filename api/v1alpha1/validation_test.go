package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/testsupport/validationcases"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace gives each test its own namespace on the shared server.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := "t-" + rand.String(8)
	if _, err := env.Kubectl(testContext(t), "create", "namespace", ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestSampleAppGroupGetsEveryDefault(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", "ferry_v1alpha1_appgroup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sample ferryv1.AppGroup
	if err := yaml.UnmarshalStrict(data, &sample); err != nil {
		t.Fatalf("sample does not decode strictly into AppGroup: %v", err)
	}
	sample.Namespace = ns
	if err := env.Client.Create(ctx, &sample); err != nil {
		t.Fatalf("sample rejected: %v", err)
	}

	var got ferryv1.AppGroup
	if err := env.Client.Get(ctx, clientKey(ns, sample.Name), &got); err != nil {
		t.Fatal(err)
	}
	wantPool := ferryv1.PoolSpec{
		MinProcesses:        1,
		MaxProcesses:        6,
		MaxRequestQueueSize: 100,
		QueueTimeout:        &metav1.Duration{Duration: 60 * time.Second},
		IdleTimeout:         &metav1.Duration{Duration: 5 * time.Minute},
		StartTimeout:        &metav1.Duration{Duration: 90 * time.Second},
		ShutdownTimeout:     &metav1.Duration{Duration: 60 * time.Second},
	}
	wantRestart := ferryv1.RestartSpec{
		Strategy:               ferryv1.RestartRolling,
		ResistDeploymentErrors: ptr.To(true),
		MaxConcurrentNodes:     1,
	}
	if diff := compare(wantPool, got.Spec.Pool); diff != "" {
		t.Errorf("pool defaults: %s", diff)
	}
	if diff := compare(wantRestart, got.Spec.Restart); diff != "" {
		t.Errorf("restart defaults: %s", diff)
	}
	limit, responseLimit := resource.MustParse("64Mi"), resource.MustParse("1Mi")
	wantProxy := ferryv1.ProxySpec{RequestBuffering: ptr.To(true), RequestBufferLimit: &limit, ResponseBufferLimit: &responseLimit}
	if diff := compare(wantProxy, got.Spec.Proxy); diff != "" {
		t.Errorf("proxy defaults: %s", diff)
	}
	if got.Spec.App.StartupFile != "passenger_wsgi.py" {
		t.Errorf("app.startupFile = %q, want the default passenger_wsgi.py", got.Spec.App.StartupFile)
	}
	if got.Spec.App.Concurrency != 1 {
		t.Errorf("app.concurrency = %d, want the default 1", got.Spec.App.Concurrency)
	}
	if got.Annotations[ferryv1.RevisionAnnotation] != "1" {
		t.Errorf("revision annotation = %q, want 1", got.Annotations[ferryv1.RevisionAnnotation])
	}
}

// compare reports the difference between two values as their YAML, which
// reads better in a failure than %+v of nested pointers.
func compare(want, got any) string {
	w, _ := yaml.Marshal(want)
	g, _ := yaml.Marshal(got)
	if string(w) == string(g) {
		return ""
	}
	return fmt.Sprintf("\nwant:\n%s\ngot:\n%s", w, g)
}

// The valid objects, what a refusal says and the invalid cases are
// validationcases', which agent/appfile's tests share.
const (
	validAppGroup        = validationcases.ValidAppGroup
	validCommandAppGroup = validationcases.ValidCommandAppGroup
	validProcessPool     = validationcases.ValidProcessPool
	userForm             = validationcases.UserForm
	ferryEnvForm         = validationcases.FerryEnvForm
	envNameForm          = validationcases.EnvNameForm
	readinessPathForm    = validationcases.ReadinessPathForm
	rootForm             = validationcases.RootForm
	startupFileForm      = validationcases.StartupFileForm
	quantityForm         = validationcases.QuantityForm
)

// TestInvalidObjectsAreRejected sends objects that break one rule each and
// checks that the API server rejects them with a message naming the field
// and the rule, so a user's `kubectl apply` tells them what to fix.
func TestInvalidObjectsAreRejected(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range validationcases.Invalid {
		t.Run(tc.Name, func(t *testing.T) {
			obj := decode(t, tc.Base)
			obj.SetNamespace(ns)
			for path, value := range tc.Set {
				setPath(t, obj.Object, path, value)
			}
			err := env.Client.Create(testContext(t), obj)
			if err == nil {
				t.Fatalf("accepted, want rejected naming %s (%s)", tc.Field, tc.Reason)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.Field+":") || !strings.Contains(msg, tc.Reason) {
				t.Errorf("error does not name %q with %q:\n%s", tc.Field, tc.Reason, msg)
			}
		})
	}
}

func TestValidObjectsAreAccepted(t *testing.T) {
	ns := newNamespace(t)
	for i, manifest := range []string{validAppGroup, validCommandAppGroup, validProcessPool} {
		obj := decode(t, manifest)
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("valid-%d", i))
		if err := env.Client.Create(testContext(t), obj); err != nil {
			t.Errorf("%s rejected: %v", obj.GetKind(), err)
		}
	}
}

func TestProcessPoolNodeNameIsImmutable(t *testing.T) {
	ctx := testContext(t)
	obj := decode(t, validProcessPool)
	obj.SetNamespace(newNamespace(t))
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	setPath(t, obj.Object, "spec.nodeName", "node-b")
	err := env.Client.Update(ctx, obj)
	if err == nil || !strings.Contains(err.Error(), "spec.nodeName: Invalid value") ||
		!strings.Contains(err.Error(), "nodeName is immutable") {
		t.Fatalf("update of nodeName: got %v, want rejected as immutable", err)
	}
}

func decode(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatal(err)
	}
	return obj
}

// setPath sets (or, for nil, deletes) a dotted path in an object, creating
// intermediate maps.
func setPath(t *testing.T, obj map[string]any, path string, value any) {
	t.Helper()
	keys := strings.Split(path, ".")
	if value == nil {
		unstructured.RemoveNestedField(obj, keys...)
		return
	}
	if err := unstructured.SetNestedField(obj, validationcases.JSONValue(value), keys...); err != nil {
		t.Fatal(err)
	}
}

// TestNodeSelectorMustBeLabels: spec.nodeSelector is matched against Node
// labels. A key or value no label can have is refused, naming the field, as
// a Pod's nodeSelector is, rather than accepted to select no node and
// leave the AppGroup NoNodes with nothing saying why.
func TestNodeSelectorMustBeLabels(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		sel  map[string]any
		want string // empty: accepted
	}{
		"label keys and values": {map[string]any{"ferry.dev/web": "true", "kubernetes.io/os": "linux", "tier": "", "a_b.c-d": "X.y_z-1"}, ""},
		"a value of 63":         {map[string]any{"web": strings.Repeat("x", 63)}, ""},
		// The API server names a map key in brackets in a CEL rule's
		// error (the value's form), with a dot in a schema check's (its
		// length).
		"value with spaces":      {map[string]any{"ferry.dev/web": "yes please"}, "spec.nodeSelector[ferry.dev/web]"},
		"value too long":         {map[string]any{"web": strings.Repeat("x", 64)}, "spec.nodeSelector.web"},
		"value ending in a dash": {map[string]any{"web": "true-"}, "spec.nodeSelector[web]"},
		"key with spaces":        {map[string]any{"web tier": "true"}, "nodeSelector keys must be label keys"},
		"key with an empty name": {map[string]any{"ferry.dev/": "true"}, "nodeSelector keys must be label keys"},
		"key name too long":      {map[string]any{strings.Repeat("k", 64): "true"}, "nodeSelector keys must be label keys"},
		"key prefix not DNS":     {map[string]any{"Ferry_Dev/web": "true"}, "nodeSelector keys must be label keys"},
		// Every label key a Node may have is accepted: a prefix of 253
		// (many labels) and a name of 63 with capitals, dots and '_'.
		"longest label key": {map[string]any{longPrefix(253) + "/" + "Ab_c." + strings.Repeat("d", 57) + "E": ""}, ""},
		// A prefix over 253 is no DNS subdomain, whatever the key's size.
		"key prefix too long": {map[string]any{longPrefix(255) + "/web": "true"}, "nodeSelector keys must be label keys"},
	} {
		t.Run(name, func(t *testing.T) {
			obj := decode(t, validAppGroup)
			obj.SetNamespace(ns)
			obj.SetName("sel-" + strings.ReplaceAll(name, " ", "-"))
			setPath(t, obj.Object, "spec.nodeSelector", tc.sel)
			err := env.Client.Create(testContext(t), obj)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("nodeSelector %v refused: %v", tc.sel, err)
			case tc.want != "" && err == nil:
				t.Fatalf("nodeSelector %v accepted: no Node label can match it", tc.sel)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "spec.nodeSelector")):
				t.Errorf("error does not say %q of spec.nodeSelector: %v", tc.want, err)
			}
		})
	}
}

// longPrefix is a DNS subdomain of n characters, of labels of 63 at most.
func longPrefix(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.Repeat("a", min(63, n-b.Len())))
	}
	return b.String()
}

// labelValueForm is what the refusal of a malformed nodeSelector value
// says.
const labelValueForm = "nodeSelector values must be label values: empty, or at most 63 letters, digits, '-', '_' or '.', " +
	"beginning and ending with a letter or digit"

// TestMalformedNamesSayWhatTheyMust: a user, an env name, a root, a
// startupFile, a readinessPath or a nodeSelector value of the wrong form is
// refused, on each kind that has it, with one error that says what the
// field must be, not the pattern's regular expression ("should match
// '^/'"), which told a user who wrote "www data" or "srv/app" nothing; the
// values of every form allowed are still accepted.
func TestMalformedNamesSayWhatTheyMust(t *testing.T) {
	type field struct {
		base, path string
		set        func(v string) any // the value of path that has v in the field
		errPath    string             // where the error is
		want       string
		bad, good  []string
	}
	users := []string{"www data", "WWW", "-x", "a$b", "1a", ".x", "$", "ä"}
	okUsers := []string{"www-data", "_apt", "a.b-c", "samba$", "x", "1000", "0001"}
	envs := []string{"1BAD", "MY-VAR", "A B", "A.B", "é", "$X"}
	okEnvs := []string{"_", "a1", "DJANGO_SETTINGS_MODULE", "_x9", "Z"}
	roots := []string{"srv/app", "./app", "~/app", "", " /srv/app"}
	okRoots := []string{"/", "/srv/app", "//srv/app/", "/srv/my app", "/srv/é"}
	plain := func(v string) any { return v }
	envList := func(v string) any { return []any{map[string]any{"name": v, "value": "x"}} }
	fields := []field{
		{validAppGroup, "spec.app.user", plain, "spec.app.user", userForm, users, okUsers},
		{validProcessPool, "spec.template.app.user", plain, "spec.template.app.user", userForm, users, okUsers},
		{validAppGroup, "spec.app.env", envList, "spec.app.env[0].name", envNameForm, envs, okEnvs},
		{validProcessPool, "spec.template.app.env", envList, "spec.template.app.env[0].name", envNameForm, envs, okEnvs},
		{validAppGroup, "spec.app.root", plain, "spec.app.root", rootForm, roots, okRoots},
		{validProcessPool, "spec.template.app.root", plain, "spec.template.app.root", rootForm, roots, okRoots},
		{validAppGroup, "spec.app.startupFile", plain, "spec.app.startupFile", startupFileForm,
			[]string{"/srv/app/passenger_wsgi.py", "/", "//app.py"}, []string{"app.py", "app/wsgi.py", ".wsgi.py", "./app.py", "a/"}},
		{validCommandAppGroup, "spec.app.readinessPath", plain, "spec.app.readinessPath", readinessPathForm,
			[]string{"healthz", "", "?deep=1", "http://x/healthz"}, nil},
		{validAppGroup, "spec.nodeSelector", func(v string) any { return map[string]any{"web": v} }, "spec.nodeSelector[web]",
			labelValueForm, []string{"yes please", "true-", "-true", "_x", "a/b", "x."}, []string{"", "a", "1", "X.y_z-1", "a--b"}},
	}
	ns := newNamespace(t)
	create := func(t *testing.T, f field, v string) error {
		obj := decode(t, f.base)
		obj.SetNamespace(ns)
		obj.SetName("n-" + rand.String(8))
		setPath(t, obj.Object, f.path, f.set(v))
		return env.Client.Create(testContext(t), obj)
	}
	for _, f := range fields {
		for _, v := range f.bad {
			t.Run(f.path+"="+v, func(t *testing.T) {
				t.Parallel()
				err := create(t, f, v)
				if err == nil {
					t.Fatalf("%s: %q accepted", f.path, v)
				}
				msg := err.Error()
				if want := f.errPath + ": Invalid value: " + strconv.Quote(v) + ": " + f.want; !strings.Contains(msg, want) {
					t.Errorf("no %q:\n%s", want, msg)
				}
				if n := strings.Count(msg, f.errPath+":"); n != 1 || strings.Contains(msg, "should match") {
					t.Errorf("%d errors for %s, want that one alone:\n%s", n, f.errPath, msg)
				}
			})
		}
		for _, v := range f.good {
			t.Run(f.path+"="+v, func(t *testing.T) {
				t.Parallel()
				if err := create(t, f, v); err != nil {
					t.Errorf("%s: %q refused: %v", f.path, v, err)
				}
			})
		}
	}
}

// TestUsersAccepted: names and uids a worker may run as, leading zeros
// and the largest uid included.
func TestUsersAccepted(t *testing.T) {
	assertAccepted(t, validAppGroup, "spec.app.user", "www-data", "app_1", "1000", "00000000001", "4294967294")
}

// TestReadinessPathsAccepted: every path and query the agent can GET is
// still accepted, the ones whose characters it escapes included, for a
// Command app and for a WSGI app.
func TestReadinessPathsAccepted(t *testing.T) {
	assertAccepted(t, validCommandAppGroup, "spec.app.readinessPath",
		"/", "/healthz", "/ready?deep=1", "/a b", "/é", "/a%2Fb", "/a?x=%zz", "/-/_.~!$&'()*+,;=:@")
	// A WSGI app's too: one that imports fine may fail every request.
	assertAccepted(t, validAppGroup, "spec.app.readinessPath", "/healthz")
}

// assertAccepted creates an object of base with path set to each of
// values: each must be accepted.
func assertAccepted(t *testing.T, base, path string, values ...string) {
	t.Helper()
	ns := newNamespace(t)
	for i, v := range values {
		obj := decode(t, base)
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("value-%d", i))
		setPath(t, obj.Object, path, v)
		if err := env.Client.Create(testContext(t), obj); err != nil {
			t.Errorf("%s %q refused: %v", path, v, err)
		}
	}
}

// TestMalformedDurationsAndQuantities: a value that is no duration or
// quantity at all gets one error for its field, not also the field's rule
// failing (its message) or erring (a CEL conversion error), on both kinds:
// one that says what a duration or a quantity is (Kubernetes' pattern, a
// regular expression, was all a user who wrote "300", "5min" or "1 GB"
// got). A value of the right form is still held to the rule (a decimal, a
// number, an exponent, a negative duration), and one that has the form of
// a quantity but is none is refused with the rule's message, not a CEL
// error; the values of every form allowed are accepted.
func TestMalformedDurationsAndQuantities(t *testing.T) {
	rules := map[string]string{ // field under spec.pool or spec.proxy -> its rule's message
		"pool.queueTimeout":         "queueTimeout must be a positive duration of at most 1h",
		"pool.idleTimeout":          "idleTimeout must be a positive duration of at most 24h",
		"pool.maxRequestTime":       "maxRequestTime must be a duration from 1s to 24h",
		"pool.startTimeout":         "startTimeout must be a positive duration of at most 1h",
		"pool.shutdownTimeout":      "shutdownTimeout must be a positive duration of at most 1h",
		"pool.memoryLimit":          "memoryLimit must be greater than 1Mi",
		"proxy.requestBufferLimit":  "requestBufferLimit must be greater than 0 and less than 8Gi",
		"proxy.responseBufferLimit": "responseBufferLimit must be between 0 and 64Mi",
	}
	// Of the quantities, "-", "Mi" and ".Ki" parse (as 0), and "1E0.0" has
	// Kubernetes' pattern but does not parse. Of the durations, "500μ"
	// (the Greek mu, U+03BC, without its s) and "5Μs" (the capital Greek
	// Mu, U+039C) look like microseconds and are none of Go's units.
	malformed := map[bool][]string{ // quantity? -> values
		false: {"5 minutes", "1.5", "forever", "1h 30m", "300", "5min", "1d", "PT5M", "--5s", "1h-5s", "+5s", "500μ", "5Μs"},
		true:  {"lots", "64 MiB", "1 GB", "512MB", "1gi", "1Mb", "-", "Mi", ".Ki", "1.5.5Mi", "1E0.0"},
	}
	kinds := []struct{ base, prefix string }{{validAppGroup, "spec."}, {validProcessPool, "spec.template."}}
	ns := newNamespace(t)
	create := func(t *testing.T, base, path string, value any) error {
		t.Helper()
		obj := decode(t, base)
		obj.SetNamespace(ns)
		obj.SetName("v-" + rand.String(8))
		setPath(t, obj.Object, path, value)
		return env.Client.Create(testContext(t), obj)
	}
	for _, kind := range kinds {
		for field, rule := range rules {
			quantity := strings.HasPrefix(field, "proxy.") || field == "pool.memoryLimit"
			path := kind.prefix + field
			for _, value := range malformed[quantity] {
				t.Run(path+"="+value, func(t *testing.T) {
					t.Parallel()
					err := create(t, kind.base, path, value)
					if err == nil {
						t.Fatalf("%s: %q accepted", path, value)
					}
					msg := err.Error()
					_, name, _ := strings.Cut(field, ".")
					want := name + " must be a duration: numbers, each with a unit (ns, us, µs, ms, s, m, h), as 90s, 5m or 1h30m"
					if quantity {
						want = name + quantityForm
					}
					if !strings.Contains(msg, path+": Invalid value: "+strconv.Quote(value)+": "+want) {
						t.Errorf("no %q error for %s:\n%s", want, path, msg)
					}
					if n := strings.Count(msg, path+":"); n != 1 {
						t.Errorf("%d errors for %s, want that one alone:\n%s", n, path, msg)
					}
					extras := []string{rule, "evaluating rule", "type conversion error", "quantities must match", "no such overload", "should match"}
					for _, extra := range extras {
						if strings.Contains(msg, extra) {
							t.Errorf("the error for %s has %q beside that one:\n%s", path, extra, msg)
						}
					}
				})
			}
		}
		for _, tc := range []struct {
			field string
			value any
		}{
			{"pool.maxRequestTime", "0.5s"},
			{"pool.maxRequestTime", "-5s"},
			{"pool.shutdownTimeout", "-5s"},
			{"pool.idleTimeout", "-0s"},
			{"pool.maxRequestTime", "24h0.5s"},
			{"pool.queueTimeout", "59m60.5s"},
			{"pool.maxRequestTime", "999999μs"}, // the Greek mu: the form takes it, duration() reads it
			{"pool.memoryLimit", 5},
			{"pool.memoryLimit", "1e6"},
			{"pool.memoryLimit", "-2Mi"},
			{"proxy.requestBufferLimit", "8.5Gi"},
			{"proxy.responseBufferLimit", ".1Gi"},
			{"proxy.responseBufferLimit", "+68M"},
			{"proxy.responseBufferLimit", -1},
		} {
			path := kind.prefix + tc.field
			t.Run(fmt.Sprintf("%s=%v", path, tc.value), func(t *testing.T) {
				t.Parallel()
				err := create(t, kind.base, path, tc.value)
				if err == nil {
					t.Fatalf("%s: %v accepted, want the rule's refusal", path, tc.value)
				}
				msg := err.Error()
				if !strings.Contains(msg, path+": Invalid value: ") || !strings.Contains(msg, rules[tc.field]) ||
					strings.Count(msg, path+":") != 1 || strings.Contains(msg, "evaluating rule") || strings.Contains(msg, "should match") {
					t.Errorf("want the rule's error alone (%s):\n%s", rules[tc.field], msg)
				}
			})
		}
		for _, tc := range []struct {
			field string
			value any
		}{
			{"pool.maxRequestTime", "1.5h"},
			{"pool.maxRequestTime", "1h30m0.25s"},
			{"pool.idleTimeout", "1500ms"},
			{"pool.startTimeout", "90000000µs"}, // the micro sign, U+00B5
			{"pool.startTimeout", "90000000μs"}, // the Greek mu, U+03BC, as Go reads it too
			{"pool.maxRequestTime", "1s500000μs"},
			{"pool.shutdownTimeout", "1000000us"},
			{"pool.memoryLimit", "1.5Mi"},
			{"pool.memoryLimit", "+512M"},
			{"pool.memoryLimit", "2e6"},
			{"proxy.requestBufferLimit", 65536},
			{"proxy.requestBufferLimit", ".5Gi"},
			{"proxy.responseBufferLimit", "0"},
			{"proxy.responseBufferLimit", "64Mi"},
			{"proxy.responseBufferLimit", "0e-999"},
			{"pool.memoryLimit", "0.000000000000000000000000000000000000000000000000000000001e64"}, // 61 characters
		} {
			path := kind.prefix + tc.field
			t.Run(fmt.Sprintf("%s=%v", path, tc.value), func(t *testing.T) {
				t.Parallel()
				if err := create(t, kind.base, path, tc.value); err != nil {
					t.Errorf("%s: %v refused: %v", path, tc.value, err)
				}
			})
		}
		// Kubernetes' quantity parser takes time that grows with the square of
		// a negative exponent (1e-99999999999999 held the API server's request
		// until its timeout, and its CPU after that) and with the digits: a
		// value longer than 64 characters, or with an exponent past 999 either
		// way, is refused before it is parsed, with the guard's message alone.
		for _, value := range []string{
			"1e-99999999999999", "1e99999999999999999999", "1E1000", "1e-0001000", "+.5e+12345",
			strings.Repeat("9", 65), "1" + strings.Repeat("0", 63) + "Mi",
		} {
			for _, field := range []string{"pool.memoryLimit", "proxy.requestBufferLimit", "proxy.responseBufferLimit"} {
				path := kind.prefix + field
				t.Run(path+"="+value, func(t *testing.T) {
					t.Parallel()
					err := create(t, kind.base, path, value)
					if err == nil {
						t.Fatalf("%s: %q accepted", path, value)
					}
					msg := err.Error()
					_, name, _ := strings.Cut(field, ".")
					guard := name + " must be at most 64 characters, with an exponent (e) from -999 to 999"
					if !strings.Contains(msg, guard) || strings.Count(msg, path+":") != 1 {
						t.Errorf("want the guard's error alone (%s):\n%s", guard, msg)
					}
				})
			}
		}
		// Past 1024 characters (the bound that keeps the rules' cost within
		// the API server's budget) the length's error is the only one.
		for _, field := range []string{"pool.memoryLimit", "proxy.requestBufferLimit", "proxy.responseBufferLimit"} {
			path := kind.prefix + field
			t.Run(path+"=1025 digits", func(t *testing.T) {
				t.Parallel()
				err := create(t, kind.base, path, strings.Repeat("9", 1025))
				if err == nil {
					t.Fatalf("%s: 1025 digits accepted", path)
				}
				msg := err.Error()
				if !strings.Contains(msg, path+": Too long: may not be more than 1024 bytes") || strings.Count(msg, path+":") != 1 {
					t.Errorf("want the length's error alone:\n%s", msg)
				}
			})
		}
	}
}

// TestNULRefused: a NUL in a string the agent passes to exec or the
// filesystem (a path, a program, an argument, an env value) is refused,
// with a message that names the field: exec refused it at every spawn with
// "invalid argument", naming none. Ordinary values are still accepted.
func TestNULRefused(t *testing.T) {
	cases := []struct {
		base, path string
		value      any
		errPath    string
		want       string
	}{
		{validAppGroup, "spec.app.root", "/srv/a\x00pp", "spec.app.root", "root may not contain a NUL character"},
		{validAppGroup, "spec.app.startupFile", "app\x00.py", "spec.app.startupFile", "startupFile may not contain a NUL character"},
		{validAppGroup, "spec.app.python", "python3\x00", "spec.app.python", "python may not contain a NUL character"},
		{validCommandAppGroup, "spec.app.command", []any{"./server", "--x=\x00"}, "spec.app.command",
			"command may not contain a NUL character"},
		{validAppGroup, "spec.app.env", []any{map[string]any{"name": "A", "value": "a\x00b"}}, "spec.app.env[0].value",
			"an env value may not contain a NUL character"},
		{validProcessPool, "spec.template.app.root", "/srv/\x00", "spec.template.app.root", "root may not contain a NUL character"},
	}
	ns := newNamespace(t)
	for i, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			obj := decode(t, tc.base)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("nul-%d", i))
			setPath(t, obj.Object, tc.path, tc.value)
			err := env.Client.Create(testContext(t), obj)
			if err == nil {
				t.Fatalf("%s with a NUL accepted", tc.path)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.errPath+":") || !strings.Contains(msg, tc.want) {
				t.Errorf("error does not name %q with %q:\n%s", tc.errPath, tc.want, msg)
			}
		})
	}
	// Other control characters are a value's own: a newline in an env
	// value (a PEM key, say), a tab in an argument.
	assertAccepted(t, validAppGroup, "spec.app.root", "/srv/my app", "/srv/é\t")
	accepted := []struct {
		base, path string
		value      any
	}{
		{validAppGroup, "spec.app.env", []any{map[string]any{"name": "KEY", "value": "-----BEGIN-----\nx\n"}}},
		{validCommandAppGroup, "spec.app.command", []any{"./server", "a\tb", "$(PORT)", ""}},
		{validAppGroup, "spec.app.python", "/opt/venv 1/bin/python"},
	}
	for i, tc := range accepted {
		obj := decode(t, tc.base)
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("ok-%d", i))
		setPath(t, obj.Object, tc.path, tc.value)
		if err := env.Client.Create(testContext(t), obj); err != nil {
			t.Errorf("%s %q refused: %v", tc.path, tc.value, err)
		}
	}
}
