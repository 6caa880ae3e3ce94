package pool_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
)

// TestDeathsInRequestsOnEveryPathBackOff: code of a revision known to stay
// up, broken in place so that every request kills its worker, whatever the
// path, is no request of death: the deaths come on several paths, and no
// other path is served. After maxExcused young deaths in a row the pool
// backs off, as for any crash loop.
func TestDeathsInRequestsOnEveryPathBackOff(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	flag := dieFlag(t)
	e := agenttest.Start(t, pool.Config{Name: "t/everypath", Revision: "1",
		Template: agenttest.WSGIAt(root, 1, 1, env("DIE_IN_REQUEST_IF_EXISTS", flag))},
		agenttest.Options{Tick: 50 * time.Millisecond})
	e.WaitFor(t, 30*time.Second, "the revision lasted", func(s pool.Status) bool { return s.RevisionLasted })
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var counted atomic.Bool
	for end := time.Now().Add(60 * time.Second); !counted.Load() && time.Now().Before(end); {
		for _, path := range []string{"/", "/crash", "/other"} {
			_, _, _ = fetch(e.URL + path)
			if s := e.Pool.Status(); s.ScalingFailures > 0 {
				counted.Store(true)
				if s.ScalingError == nil || !strings.Contains(s.ScalingError.Reason, "in a row") {
					t.Errorf("scaling error %+v, want one saying such deaths came in a row", s.ScalingError)
				}
				break
			}
		}
	}
	if !counted.Load() {
		t.Fatal("workers died in every request, on every path, for a minute with no death counted: want a backoff")
	}
}

// fetch is a GET that returns its failure rather than failing the test.
func fetch(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
