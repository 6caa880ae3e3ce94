package spawn

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestWorkersNeverShareASocketDirectory: a worker's loader unlinks the
// socket at its path before it binds its own, so a second worker given a
// directory that exists would take the first's requests. Another agent
// sharing the state directory counts its workers from 1 too; here the
// count restarts, as in a new agent of the same pid, over a directory left
// by one before. Each worker must still answer at its own address.
func TestWorkersNeverShareASocketDirectory(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py"})
	var procs []*Process
	for range 2 {
		sockSeq.Store(0) // an agent starting afresh
		p, err := Spawn(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		procs = append(procs, p)
	}
	if procs[0].Address == procs[1].Address {
		t.Fatalf("both workers were given %s", procs[0].Address)
	}
	for _, p := range procs {
		if body := get(t, p, "/"); strings.Fields(body)[0] != strconv.Itoa(p.PID) {
			t.Errorf("the worker of pid %d at %s was answered by %q", p.PID, p.Address, body)
		}
		if info, err := os.Stat(filepath.Dir(p.Address)); err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("socket directory of %d: %v, %v; want mode 0700", p.PID, info, err)
		}
	}
}
