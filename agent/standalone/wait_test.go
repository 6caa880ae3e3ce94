package standalone

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dieAfterBoot makes the app's processes boot, be ready, and exit with
// status 3 after seconds, as an app whose thread loses its database does.
func (s *site) dieAfterBoot(t *testing.T, seconds string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.root, "passenger_wsgi.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = io.WriteString(f, "\nimport threading, sys, os\n"+
		"threading.Timer("+seconds+", lambda: (print('lost the database', file=sys.stderr, flush=True), os._exit(3))).start()\n")
}

// TestWaitOutlastsTheCrashWindow: restart --wait (WaitRestart) ends a
// restart only once the new revision has lived the crash window, as the
// manager does in a cluster. A healthy restart ends with the revision
// lasted (the pool's RevisionLasted); a revision whose processes are ready
// and die 5 s later, once every old process is replaced, ends in the
// resistance's error, not in success. Before, the wait returned nil as the
// last step's process was ready, and the pool resisted the revision a
// moment later.
func TestWaitOutlastsTheCrashWindow(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	settled := 0
	settling := func() { settled++ }
	if err := WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, settling); err != nil {
		t.Fatalf("a healthy restart: %v", err)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Apps[0].Pool; !p.RevisionLasted || p.Revision != rev {
		t.Errorf("after the wait of a healthy restart, revision %s lasted=%v; want revision %s lasted", p.Revision,
			p.RevisionLasted, rev)
	}
	if settled != 1 {
		t.Errorf("the wait said %d times that it waits for the crash window; want once", settled)
	}

	s.dieAfterBoot(t, "5")
	rev, err = r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	err = WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil)
	if !errors.Is(err, ErrResisting) || !strings.Contains(err.Error(), "exited with status 3") ||
		!strings.Contains(err.Error(), "lost the database") {
		t.Fatalf("wait on a revision whose processes die 5s after boot: %v; want the resistance's error", err)
	}
}
