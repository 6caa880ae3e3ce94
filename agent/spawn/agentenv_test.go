package spawn

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/appfile"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/config/crd"
)

// TestAgentVariablesWinOverTheApps: a pool written before the API refused
// the env names the agent sets for its workers (or a standalone file
// before its check) may set the agent's own variables; the worker still gets the agent's values (the
// loader binds the socket the agent waits on, the app sees its revision)
// and the agent says which of the app's it left out.
func TestAgentVariablesWinOverTheApps(t *testing.T) {
	theirs := []ferryv1.EnvVar{
		{Name: "FERRY_APP_ROOT", Value: "/nonexistent"},
		{Name: "FERRY_STARTUP_FILE", Value: "other.py"},
		{Name: "FERRY_SOCKET", Value: "/tmp/ferry-not-the-agents-socket"},
		{Name: "FERRY_READY_FD", Value: "7"},
		{Name: "FERRY_REVISION", Value: "bogus"},
		{Name: "APP_OWN", Value: "kept"},
	}
	cases := []struct {
		name    string
		app     ferryv1.AppSpec
		dropped string // the names the log line must give
	}{
		{"WSGI", ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/env", StartupFile: "passenger_wsgi.py", Env: theirs},
			"FERRY_APP_ROOT FERRY_STARTUP_FILE FERRY_SOCKET FERRY_READY_FD FERRY_REVISION"},
		{"Command", ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/env", Command: []string{"python3", "server.py", "$(PORT)"},
			ReadinessPath: "/", Env: append(theirs, ferryv1.EnvVar{Name: "PORT", Value: "1"})},
			"FERRY_REVISION PORT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec(t, tc.app)
			lines := captureLog(&spec)
			p, err := Spawn(context.Background(), spec)
			if err != nil {
				t.Fatalf("spawn failed: %v", err)
			}
			t.Cleanup(func() { p.Stop(5 * time.Second) })
			got := map[string]string{}
			for l := range strings.Lines(get(t, p, "/")) {
				k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
				got[k] = v
			}
			want := map[string]string{"FERRY_REVISION": "r1", "APP_OWN": "kept"}
			if tc.app.Type == ferryv1.AppTypeWSGI {
				// The loader takes FERRY_READY_FD out of the app's
				// environment once it has read it: the app's 7 is not left.
				want["FERRY_APP_ROOT"], want["FERRY_STARTUP_FILE"], want["FERRY_SOCKET"], want["FERRY_READY_FD"] =
					spec.App.Root, "passenger_wsgi.py", p.Address, ""
			} else {
				want["PORT"] = strconv.Itoa(portOf(t, p.Address))
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("the worker sees %s=%q, want %q", k, got[k], v)
				}
			}
			// Logged before the spawn returns: no wait.
			if !slices.ContainsFunc(lines(), func(l string) bool { return strings.Contains(l, `"ignored"="`+tc.dropped+`"`) }) {
				t.Errorf("no log line ignoring %s in:\n%s", tc.dropped, strings.Join(lines(), "\n"))
			}
		})
	}
}

// TestAppEnv: the app's variables in its order, then PORT; of the app's,
// those the launch sets, and PORT for a Command app, are left out and named.
func TestAppEnv(t *testing.T) {
	env := func(kv ...string) []ferryv1.EnvVar {
		var out []ferryv1.EnvVar
		for _, s := range kv {
			k, v, _ := strings.Cut(s, "=")
			out = append(out, ferryv1.EnvVar{Name: k, Value: v})
		}
		return out
	}
	wsgiLaunch := launch{env: []string{"FERRY_SOCKET=/run/s", "FERRY_REVISION=r1"}}
	cmdLaunch := launch{env: []string{"FERRY_REVISION=r1"}, port: 4000}
	cases := []struct {
		name         string
		app          []ferryv1.EnvVar
		l            launch
		want, ignore []string
	}{
		{"none", nil, wsgiLaunch, nil, nil},
		{"the app's own, in order", env("B=2", "A=1"), wsgiLaunch, []string{"B=2", "A=1"}, nil},
		{"the loader's left out", env("FERRY_SOCKET=/tmp/x", "A=1", "FERRY_REVISION=v"), wsgiLaunch,
			[]string{"A=1"}, []string{"FERRY_SOCKET", "FERRY_REVISION"}},
		{"PORT kept for WSGI", env("PORT=80"), wsgiLaunch, []string{"PORT=80"}, nil},
		{"a FERRY_ name the agent does not set kept", env("FERRY_MODE=x"), wsgiLaunch, []string{"FERRY_MODE=x"}, nil},
		{"Command: PORT is the agent's", env("PORT=80", "A=1"), cmdLaunch, []string{"A=1", "PORT=4000"}, []string{"PORT"}},
		{"Command: FERRY_SOCKET is not its", env("FERRY_SOCKET=/tmp/x"), cmdLaunch, []string{"FERRY_SOCKET=/tmp/x", "PORT=4000"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored := appEnv(ferryv1.AppSpec{Env: tc.app}, tc.l)
			if !slices.Equal(got, tc.want) || !slices.Equal(ignored, tc.ignore) {
				t.Errorf("appEnv = %q, ignored %q; want %q, ignored %q", got, ignored, tc.want, tc.ignore)
			}
		})
	}
}

// TestTheRulesRefuseWhatTheLaunchSets keeps the AppGroup's env rules, whose
// names are written by hand, in step with the launch, which derives them
// (wsgi.Options.Env, commandLaunch, PORT): for each app type, an env name
// the generated CRD's CEL rules refuse (checked as a standalone file is,
// by the embedded CRD) is exactly one appEnv takes as the agent's. The
// names tried are every name either side has, the other type's, and one
// of the app's own.
func TestTheRulesRefuseWhatTheLaunchSets(t *testing.T) {
	launches := map[ferryv1.AppType]launch{
		ferryv1.AppTypeWSGI:    realLaunch(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/env", StartupFile: "passenger_wsgi.py"}),
		ferryv1.AppTypeCommand: realLaunch(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/env", Command: []string{"./server"}}),
	}
	names := map[string]bool{"FERRY_MODE": true, "PORT": true}
	for _, l := range launches {
		for _, kv := range l.env {
			name, _, _ := strings.Cut(kv, "=")
			names[name] = true
		}
	}
	for _, name := range ruleNames(t) {
		names[name] = true
	}
	tried := slices.Sorted(maps.Keys(names))
	var app []ferryv1.EnvVar
	for _, name := range tried {
		app = append(app, ferryv1.EnvVar{Name: name, Value: "x"})
	}
	files := map[ferryv1.AppType]string{
		ferryv1.AppTypeWSGI:    "type: WSGI, root: /srv/app",
		ferryv1.AppTypeCommand: "type: Command, command: [./server]",
	}
	for typ, l := range launches {
		_, agents := appEnv(ferryv1.AppSpec{Env: app}, l)
		var refused []string
		for _, name := range tried {
			file := fmt.Sprintf("apiVersion: ferry.dev/v1alpha1\nkind: AppGroup\nmetadata: {name: app}\n"+
				"spec:\n  app: {%s, env: [{name: %s, value: x}]}\n  listen: {port: 8080}\n", files[typ], name)
			if _, err := appfile.Parse([]byte(file), "", "test.yaml"); err != nil {
				if !strings.Contains(err.Error(), "spec.app.env:") {
					t.Fatalf("%s app with env %s: %v, want accepted or refused for its env", typ, name, err)
				}
				refused = append(refused, name)
			}
		}
		if slices.Sort(agents); !slices.Equal(refused, agents) {
			t.Errorf("%s: the AppGroup's rules refuse env %q, the launch sets %q: make the rule in api/v1alpha1/appgroup_types.go name what the launch sets", typ, refused, agents)
		}
	}
}

// realLaunch is the launch Spawn would run app with, its pipe and port
// given back.
func realLaunch(t *testing.T, app ferryv1.AppSpec) launch {
	t.Helper()
	givePort(t, 8000) // not bound: the launch only names it
	l, err := appLaunch(testSpec(t, app), &Process{}, identity{})
	if err != nil {
		t.Fatal(err)
	}
	l.closePipe()
	return l
}

// ruleNames are the upper-case names quoted in the AppGroup CRD's rules
// on its spec ('PORT', 'FERRY_SOCKET', ... and 'WSGI', a type, which is no
// name either side has and so harmless).
func ruleNames(t *testing.T) []string {
	t.Helper()
	def, err := crd.ByKind("AppGroup")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range def.Spec.Versions {
		for _, rule := range v.Schema.OpenAPIV3Schema.Properties["spec"].XValidations {
			for _, m := range regexp.MustCompile(`'([A-Z][A-Z0-9_]*)'`).FindAllStringSubmatch(rule.Rule, -1) {
				names = append(names, m[1])
			}
		}
	}
	if !slices.Contains(names, "FERRY_SOCKET") {
		t.Fatalf("no FERRY_SOCKET in the AppGroup's rules on spec: %q", names)
	}
	return names
}

// TestIgnoredEnvSaidOncePerRevision: the workers of a pool stored before
// the API refused the agent's env names are spawned again and again
// (replaced, scaled up, restarted); the line naming the app's variables
// the agent ignores comes once for each revision of the pool, as its
// EnvMemory says for the spawn's revision. Here r1's was said already
// (by an earlier spawn of r1): a spawn of r1 says nothing, one of r2 says
// it. TestEnvMemorySayIgnored has the memory's rules.
func TestIgnoredEnvSaidOncePerRevision(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/env", Command: []string{"python3", "server.py", "$(PORT)"},
		ReadinessPath: "/", Env: []ferryv1.EnvVar{{Name: "FERRY_REVISION", Value: "bogus"}}})
	lines := captureLog(&spec)
	spec.EnvMemory = &EnvMemory{}
	spec.EnvMemory.sayIgnored("r1")
	for _, revision := range []string{"r1", "r2"} {
		spec.Revision = revision
		p, err := Spawn(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		p.Stop(5 * time.Second)
	}
	said := map[string]int{}
	for _, l := range lines() {
		for _, revision := range []string{"r1", "r2"} {
			if strings.Contains(l, "the app's ignored") && strings.Contains(l, `"revision"="`+revision+`"`) {
				said[revision]++
			}
		}
	}
	if said["r1"] != 0 || said["r2"] != 1 {
		t.Errorf("said %d times for r1 (said before), %d for r2, want 0 and 1:\n%s", said["r1"], said["r2"], strings.Join(lines(), "\n"))
	}
}
