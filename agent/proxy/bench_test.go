package proxy_test

import (
	"bytes"
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

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
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
	client, direct, e := benchUpstreams(b)
	run := func(b *testing.B, url string) {
		waitAnswer(b, client, url)
		parallel(b, func() (*http.Response, error) { return client.Get(url) })
	}
	b.Run("direct", func(b *testing.B) { run(b, direct) })
	b.Run("proxy", func(b *testing.B) { run(b, e.URL+"/") })
	// maxRequestTime bounds each wait for a response head: a deadline set
	// and lifted on the worker connection, under its lock.
	b.Run("proxy-maxRequestTime", func(b *testing.B) {
		cfg := e.Pool.Config()
		limited := cfg
		limited.Template.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Minute}
		e.Pool.Update(limited)
		defer e.Pool.Update(cfg)
		run(b, e.URL+"/")
	})
}

// BenchmarkUpload measures a POST's cost through the proxy with its body
// buffered (in memory up to SpoolMemory, then in a file) and streamed, and
// straight to the upstream, which reads the body before it answers.
//
//	go test -run '^$' -bench Upload -benchmem ./agent/proxy/
func BenchmarkUpload(b *testing.B) {
	client, direct, e := benchUpstreams(b)
	for _, size := range []int{1 << 10, 256 << 10} {
		body := make([]byte, size)
		run := func(b *testing.B, url string, buffering bool) {
			cfg := e.Pool.Config()
			cfg.Template.Proxy.RequestBuffering = &buffering
			e.Pool.Update(cfg)
			waitAnswer(b, client, url)
			b.SetBytes(int64(size))
			parallel(b, func() (*http.Response, error) {
				return client.Post(url, "application/octet-stream", bytes.NewReader(body))
			})
		}
		name := strconv.Itoa(size>>10) + "KiB/"
		b.Run(name+"direct", func(b *testing.B) { run(b, direct, true) })
		b.Run(name+"buffered", func(b *testing.B) { run(b, e.URL+"/", true) })
		b.Run(name+"streamed", func(b *testing.B) { run(b, e.URL+"/", false) })
	}
}

// BenchmarkResponse measures a GET of a larger response through the
// proxy, buffered (read whole from the worker before it is written) and
// relayed as it is read, and straight from the upstream.
//
//	go test -run '^$' -bench Response -benchmem ./agent/proxy/
func BenchmarkResponse(b *testing.B) {
	client, direct, e := benchUpstreams(b)
	for _, size := range []int{64 << 10, 512 << 10} {
		path := "bytes/" + strconv.Itoa(size)
		run := func(b *testing.B, url string, limit int64) {
			cfg := e.Pool.Config()
			cfg.Template.Proxy.ResponseBufferLimit = resource.NewQuantity(limit, resource.BinarySI)
			e.Pool.Update(cfg)
			waitAnswer(b, client, url)
			b.SetBytes(int64(size))
			parallel(b, func() (*http.Response, error) { return client.Get(url) })
		}
		name := strconv.Itoa(size>>10) + "KiB/"
		b.Run(name+"direct", func(b *testing.B) { run(b, direct+path, 0) })
		b.Run(name+"buffered", func(b *testing.B) { run(b, e.URL+"/"+path, 1<<20) })
		b.Run(name+"relayed", func(b *testing.B) { run(b, e.URL+"/"+path, 0) })
	}
}

// BenchmarkChunkedResponse measures a GET of a small chunked response,
// whose head and body the worker writes at once, through the proxy and
// straight from the upstream: the proxy holds a streamed answer's head
// for its body's first bytes (holdHead), which need not be waited for
// when they are in already.
//
//	go test -run '^$' -bench ChunkedResponse -benchmem ./agent/proxy/
func BenchmarkChunkedResponse(b *testing.B) {
	client, direct, e := benchUpstreams(b)
	run := func(b *testing.B, url string) {
		waitAnswer(b, client, url)
		parallel(b, func() (*http.Response, error) { return client.Get(url) })
	}
	b.Run("direct", func(b *testing.B) { run(b, direct+"chunked") })
	b.Run("proxy", func(b *testing.B) { run(b, e.URL+"/chunked") })
}

// benchUpstreams starts bench/cmd/upstream twice: straight (its URL), and
// as a Command worker behind a proxy (e).
func benchUpstreams(b *testing.B) (*http.Client, string, *agenttest.Env) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	dir := testsupport.WorkerDir(b) // the worker runs as another user, who must reach it
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
	b.Cleanup(func() { _ = direct.Process.Kill(); _ = direct.Wait() })

	// The proxied one.
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: dir, Command: []string{upstream}, Concurrency: 64}
	e := agenttest.Start(b, pool.Config{Name: "bench", Revision: "1", Template: tmpl}, agenttest.Options{Proxy: proxy.Options{}})
	e.WaitFor(b, time.Minute, "the worker", func(s pool.Status) bool { return s.Counts.Ready == 1 })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	return client, "http://127.0.0.1:" + port + "/", e
}

// parallel runs b's requests, made by do, from GOMAXPROCS goroutines,
// reading each response to its end.
func parallel(b *testing.B, do func() (*http.Response, error)) {
	b.ReportAllocs()
	rw := readsAndWrites(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := do()
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(readsAndWrites(b)-rw)/float64(b.N), "rw-syscalls/op")
}

// readsAndWrites is the count of read and write system calls this
// process made so far (those that found nothing to read included), from
// /proc/self/io: on a machine where system calls are dear, they are a
// good part of a request's cost, and unlike ns/op their count does not
// move with the machine's load. recvfrom (the idle connection's peek) is
// not counted.
func readsAndWrites(b *testing.B) int64 {
	f, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for line := range bytes.Lines(f) {
		name, v, _ := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		if string(name) == "syscr" || string(name) == "syscw" {
			c, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			n += c
		}
	}
	return n
}

// waitAnswer waits for url to answer: the direct upstream may still be
// starting.
func waitAnswer(b *testing.B, client *http.Client, url string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s does not answer", url)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
