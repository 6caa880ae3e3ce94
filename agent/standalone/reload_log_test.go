package standalone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// logCapture keeps a logger's entries, as the JSON objects a JSON log
// writes, for the test to read back; each goes to the test's log too.
type logCapture struct {
	mu      sync.Mutex
	entries []map[string]any
}

func captureLog(t *testing.T) (logr.Logger, *logCapture) {
	c := &logCapture{}
	return funcr.NewJSON(func(obj string) {
		var e map[string]any
		_ = json.Unmarshal([]byte(obj), &e)
		c.mu.Lock()
		c.entries = append(c.entries, e)
		c.mu.Unlock()
		t.Log(obj)
	}, funcr.Options{}), c
}

// last is the last entry whose msg begins with prefix (nil: none).
func (c *logCapture) last(prefix string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.entries) - 1; i >= 0; i-- {
		if msg, _ := c.entries[i]["msg"].(string); strings.HasPrefix(msg, prefix) {
			return c.entries[i]
		}
	}
	return nil
}

// listed is a log entry's list field as "[a b]", "[]" for none (absent,
// null or empty alike).
func listed(e map[string]any, key string) string {
	l, _ := e[key].([]any)
	return fmt.Sprint(l)
}

// TestReloadLogNamesAppGroupsOnce: the log entry of a SIGHUP reload that
// failed in part names its AppGroups in its fields (applied, notApplied,
// notStarted, removed) and gives as its error the problems alone. Before,
// its error was the PartialReloadError's text, which `ferry-agent reload`
// prints: "reload applied in part: applied b; removed d; ...", every list
// of the fields again in one entry.
func TestReloadLogNamesAppGroupsOnce(t *testing.T) {
	problems := errors.New("f.yaml: 2 problems:\n  AppGroup \"a\": one\n  AppGroup \"e\": two")
	for _, tc := range []struct {
		name   string
		err    error
		msg    string
		fields map[string]string
	}{
		{"in part", &PartialReloadError{Applied: []string{"b", "c"}, NotApplied: []string{"a", "e"}, Removed: []string{"d"},
			notStarted: []string{"e"}, Err: problems}, PartialReloadLogged,
			map[string]string{"applied": "[b c]", "notApplied": "[a e]", "notStarted": "[e]", "removed": "[d]"}},
		{"in part, nothing new", &PartialReloadError{Removed: []string{"d"}, NotApplied: []string{"a"}, Err: problems},
			PartialReloadLogged, map[string]string{"applied": "[]", "notApplied": "[a]", "notStarted": "[]", "removed": "[d]"}},
		{"nothing applied", problems, "Reload failed; still serving the previous configuration", nil},
	} {
		log, c := captureLog(t)
		logReload(log, "f.yaml", tc.err)
		e := c.last("Reload")
		if e == nil || e["msg"] != tc.msg || e["error"] != problems.Error() {
			t.Errorf("%s: logged %v\nwant msg %q and error %q", tc.name, e, tc.msg, problems.Error())
			continue
		}
		for key, want := range tc.fields {
			if got := listed(e, key); got != want {
				t.Errorf("%s: %s is %s, want %s", tc.name, key, got, want)
			}
		}
		if _, named := e["applied"]; tc.fields == nil && named {
			t.Errorf("%s: a reload that applied nothing names what it applied: %v", tc.name, e)
		}
	}
	log, c := captureLog(t)
	logReload(log, "f.yaml", nil)
	if e := c.last("Reloaded"); e == nil || e["file"] != "f.yaml" || e["error"] != nil {
		t.Errorf("a reload that worked logged %v, want Reloaded with the file", e)
	}
}

// TestReloadOfANewAppGroupThatDoesNotStart: a real reload adds two
// AppGroups and changes hello. New e's port is taken: e does not start,
// and the reload's error (`ferry-agent reload`'s) says the rest was
// applied and e did not start (new), then the problem; status's
// reloadFailed names hello applied and e not applied. New f's command
// fails: f starts all the same (its pool retries its spawns with
// backoff), so it is applied, not named after "did not start". A second
// reload, by SIGHUP's way (ReloadAndLog), logs the lists in its fields
// once, its error the problem alone, while status's reloadFailed still
// says everything, in words and, in its status JSON, e in notStarted.
// Before, that JSON had no notStarted: a script had to parse the error
// to know that e did not start.
func TestReloadOfANewAppGroupThatDoesNotStart(t *testing.T) {
	s := newSite(t)
	log, logged := captureLog(t)
	r := runLogged(t, s, log)
	ctx := context.Background()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: e}
spec:
  app: {type: WSGI, root: app}
  listen: {port: %d}
`, taken.Addr().(*net.TCPAddr).Port)
	f := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: f}
spec:
  app: {type: Command, root: app, command: [sh, -c, "echo no database >&2; exit 1"]}
  listen: {port: %d}
`, testsupport.FreePort(t))
	problem := s.file + `: AppGroup "e": listen.port: listen tcp ` + taken.Addr().String() + ": bind: address already in use"

	s.write(t, 1, "1", e, f)
	err = r.client.Reload(ctx)
	want := "reload applied in part: applied hello, f; did not start (new): e:\n  " + problem
	if err == nil || err.Error() != want {
		t.Errorf("reload adding e on a taken port and f, whose command fails: %v\nwant %q", err, want)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rf := st.ReloadFailed
	if rf == nil || rf.Error != want || fmt.Sprint(rf.Applied, rf.NotApplied, rf.NotStarted, rf.Removed) != "[hello f] [e] [e] []" {
		t.Errorf("status's reloadFailed after it: %+v\nwant applied [hello f], notApplied and notStarted [e], none removed, and the error", rf)
	}
	var served []string
	for _, a := range st.Apps {
		served = append(served, a.Name)
	}
	if fmt.Sprint(served) != "[f hello]" {
		t.Errorf("the agent serves %v, want f and hello, not e", served)
	}
	testsupport.Eventually(t, time.Minute, "f's spawns failing", func() error {
		st, err := r.client.Status(ctx)
		if err != nil {
			return err
		}
		for _, a := range st.Apps {
			if se := a.Pool.ScalingError; a.Name == "f" && se != nil && strings.Contains(se.Reason+se.Output, "no database") {
				return nil
			}
		}
		return fmt.Errorf("not yet: %+v", st.Apps)
	})

	s.write(t, 2, "1", e, f)
	r.srv.ReloadAndLog()
	entry := logged.last("Reload")
	if entry == nil || entry["msg"] != PartialReloadLogged || entry["error"] != problem ||
		listed(entry, "applied") != "[hello]" || listed(entry, "notApplied") != "[e]" ||
		listed(entry, "notStarted") != "[e]" || listed(entry, "removed") != "[]" {
		t.Errorf("the SIGHUP reload's log entry: %v\nwant msg %q, error %q, applied [hello], notApplied [e], notStarted [e], none removed",
			entry, PartialReloadLogged, problem)
	}
	st, err = r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rf := st.ReloadFailed; rf == nil || rf.Error != "reload applied in part: applied hello; did not start (new): e:\n  "+problem {
		t.Errorf("status's reloadFailed after the SIGHUP reload: %+v, want the error that says it all", rf)
	}
	// The status JSON as a script reads it: e, which did not start, under
	// notStarted, no need to parse the error's words.
	var raw struct {
		ReloadFailed map[string]any `json:"reloadFailed"`
	}
	if err := r.client.call(ctx, http.MethodGet, "/v1/status", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if rf := raw.ReloadFailed; listed(rf, "notStarted") != "[e]" || listed(rf, "notApplied") != "[e]" ||
		listed(rf, "applied") != "[hello]" || listed(rf, "removed") != "[]" {
		t.Errorf("status JSON's reloadFailed: %v\nwant notStarted [e], notApplied [e], applied [hello], none removed", rf)
	}
}
