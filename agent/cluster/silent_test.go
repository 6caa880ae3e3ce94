package cluster

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestDrainFinalizerTryGetsNoAnswer: the API server takes the agent's
// first removal of a drained pool's finalizer and never answers it, its
// connection open and well. The try ends within its bound, is logged as
// the API server answering nothing, and the next try releases the pool.
// Before, the try had no bound (the agent's client has none, as its
// watches must last): it waited as long as the connection did, the pool
// stayed Terminating, and the agent could not stop.
func TestDrainFinalizerTryGetsNoAnswer(t *testing.T) {
	ns := namespace(t)
	const node, name = "node-n", "app-node-n"
	proxy, cfg := throughSilentProxy(t, func(r *http.Request) bool {
		return r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/processpools/"+name)
	})
	book := agenttest.NewLogbook(t)
	runAgent(t, node, cfg, stateDir(t), logTo(book))
	// Before the agent's stop: a try without a bound would hold it.
	t.Cleanup(proxy.end)
	pp, key := readyPool(t, ns, name, node, freePort(t))
	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, time.Minute, "the deleted pool released after the API server left its finalizer's first removal unanswered",
		func() error {
			if !proxy.held.Load() {
				return errors.New("no removal of its finalizer has reached the API server yet")
			}
			return poolGone(key)
		})
	if e := book.WaitFor(t, "Could not remove the drain finalizer; will retry"); troubleKey(e.Err) != troubleNoAnswer {
		t.Errorf("the unanswered removal was logged with %q, want an error that says the API server did not answer", e.Err)
	}
	book.Check(t)
}

// silentProxy is an HTTPS proxy to the test API server that passes every
// request on but the first one its hold picks, which it takes and never
// answers, its connection kept open and well (HTTP/2's pings answered):
// as a load balancer, or an API server whose storage hangs, can. A TCP
// forwarder that stops passing bytes cannot pick one request out of the
// connection the agent's requests share, and HTTP/2's health check ends
// such a connection's requests itself (in about 45 s).
type silentProxy struct {
	hold    func(*http.Request) bool
	held    atomic.Bool
	release chan struct{}
	endOnce sync.Once
}

// throughSilentProxy is a silentProxy holding the first request hold
// picks, and a config that reaches the test API server through it, with
// no timeout, as cmd/agent's.
func throughSilentProxy(t *testing.T, hold func(*http.Request) bool) (*silentProxy, *rest.Config) {
	t.Helper()
	target, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	p := &silentProxy{hold: hold, release: make(chan struct{})}
	pass := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     rt,
		FlushInterval: -1, // watches
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold(r) && p.held.CompareAndSwap(false, true) {
			select {
			case <-r.Context().Done():
			case <-p.release:
			}
			panic(http.ErrAbortHandler) // no answer, ever
		}
		pass.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		p.end()
		srv.CloseClientConnections()
		srv.Close()
	})
	return p, &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}}
}

// end lets the held request go (unanswered: its stream is reset).
func (p *silentProxy) end() { p.endOnce.Do(func() { close(p.release) }) }
