// Command upstream is the proxy benchmark's upstream: the smallest useful
// Go HTTP server. Every request gets 200 and the server's pid and a newline
// as a text/plain body (so loadgen records which process answered), except
// /bytes/N, which answers N zero bytes, /chunked, which answers the pid
// chunked (head and body in one write), and GET /_conns, which answers how
// many connections the server has accepted
// (so the benchmark can tell a proxy that reuses its upstream connections
// from one that dials per request). It listens on -addr, by default
// 127.0.0.1:$PORT, which is how Ferry runs a Command app.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:"+os.Getenv("PORT"), "listen address")
	flag.Parse()
	body := []byte(strconv.Itoa(os.Getpid()) + "\n")
	length := strconv.Itoa(len(body))
	var conns atomic.Int64
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			if r.URL.Path == "/_conns" {
				_, _ = fmt.Fprintln(w, conns.Load())
				return
			}
			// A body is read before the answer, as an app does, so that the
			// connection is kept (proxy.BenchmarkUpload); a GET has none.
			_, _ = io.Copy(io.Discard, r.Body)
			if n, ok := strings.CutPrefix(r.URL.Path, "/bytes/"); ok { // proxy.BenchmarkResponse
				size, _ := strconv.Atoi(n)
				h["Content-Length"] = []string{n}
				_, _ = w.Write(make([]byte, size))
				return
			}
			if r.URL.Path == "/chunked" { // proxy.BenchmarkChunkedResponse
				h["Transfer-Encoding"] = []string{"chunked"}
			} else {
				h["Content-Length"] = []string{length}
			}
			_, _ = w.Write(body)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Fprintln(os.Stderr, "upstream listening on", *addr)
	log.Fatal(srv.ListenAndServe())
}
