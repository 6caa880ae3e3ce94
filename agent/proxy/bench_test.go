package proxy_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// BenchmarkRequest measures one request's cost on the proxy's path:
// "direct" is a client talking straight to a Go upstream; "proxy" is the
// same client through Ferry's proxy and pool to another instance of that
// upstream, run as a Command worker. Both run in this process (the
// upstreams do not), so allocs/op and B/op of "proxy" minus those of
// "direct" are what the proxy allocates per request. Throughput belongs to
// `make bench BENCH=proxy`, on a quiet machine.
//
//	go test -run '^$' -bench Request -benchmem ./agent/proxy/
func BenchmarkRequest(b *testing.B) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	dir, err := os.MkdirTemp("", "fbench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	upstream := filepath.Join(dir, "upstream")
	build := exec.Command("go", "build", "-o", upstream, "./bench/cmd/upstream")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}

	// The direct upstream.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	direct := exec.Command(upstream, "-addr", "127.0.0.1:"+port)
	if err := direct.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = direct.Process.Kill(); _ = direct.Wait() }()

	// The proxied one.
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: dir, Command: []string{upstream}, Concurrency: 64}
	e := agenttest.Start(b, pool.Config{Name: "bench", Revision: "1", Template: tmpl}, agenttest.Options{Proxy: proxy.Options{}})
	e.WaitFor(b, time.Minute, "the worker", func(s pool.Status) bool { return s.Counts.Ready == 1 })

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	run := func(b *testing.B, url string) {
		deadline := time.Now().Add(10 * time.Second)
		for { // the direct upstream may still be starting
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s does not answer", url)
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, "http://127.0.0.1:"+port+"/") })
	b.Run("proxy", func(b *testing.B) { run(b, e.URL+"/") })
}
