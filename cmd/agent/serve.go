package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

// http1Only is HTTP/1.1 alone: over TLS, net/http adds h2 to the
// config's NextProtos unless Protocols leaves it out, and HTTP/2's stream
// reset and continuation floods reach a server before any token is checked.
func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	return &p
}

// serve runs an HTTP endpoint in the background until ctx is done, over
// TLS when tlsConfig is not nil; addr "0" or "" turns it off.
func serve(ctx context.Context, addr string, h http.Handler, tlsConfig *tls.Config, log logr.Logger) {
	if addr == "" || addr == "0" {
		return
	}
	// IdleTimeout: without it (and no ReadTimeout) net/http waits for a
	// keep-alive connection's next request for ever, so anyone reaching
	// the node's port could hold connections open, before any token is
	// checked. Scrapers come back within a minute or two.
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 3 * time.Minute,
		TLSConfig: tlsConfig, Protocols: http1Only()}
	go func() {
		listen := srv.ListenAndServe
		if tlsConfig != nil {
			listen = func() error { return srv.ListenAndServeTLS("", "") }
		}
		if err := listen(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "Endpoint stopped", "address", addr)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
}
