package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// How often the manager asks an API server that does not answer, and how
// often it says it still waits.
const (
	apiWaitFirstRetry = time.Second
	apiWaitMaxRetry   = 10 * time.Second
	apiWaitLogEvery   = time.Minute
	apiWaitAskTimeout = 10 * time.Second
)

// waitForAPIServer returns once the API server at cfg.Host answers
// discovery, or with ctx's error when the manager is stopped first.
//
// ctrl.NewManager asks the API server which resources are namespaced, so
// a manager started while the API server is down (a restart during an
// outage, or the exit that follows a lost leader election) used to exit at
// once; the kubelet then restarts it with a back-off that grows to five
// minutes, and the manager came back up to five minutes after the API
// server. Here it waits instead, with /healthz answering (so that the
// kubelet's liveness probe does not restart it) and /readyz not, and
// starts within apiWaitMaxRetry of the API server's return.
//
// An API server that answers but refuses the manager's credentials
// (401, 403) is not waited for: that is a configuration to fix, and the
// error says so at once.
func waitForAPIServer(ctx context.Context, cfg *rest.Config, probeAddr string, log logr.Logger) error {
	ask := rest.CopyConfig(cfg)
	ask.Timeout = apiWaitAskTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(ask)
	if err != nil {
		return err
	}
	_, err = dc.ServerGroups()
	if err == nil || refused(err) {
		return refusal(cfg, err)
	}
	stopProbes := serveWaitingProbes(probeAddr, log)
	defer stopProbes()
	log.Info("Waiting for the API server: the manager starts once it answers", "host", cfg.Host, "error", err.Error())
	began, logged := time.Now(), time.Now()
	for retry := apiWaitFirstRetry; ; retry = min(2*retry, apiWaitMaxRetry) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retry):
		}
		if _, err = dc.ServerGroups(); err == nil || refused(err) {
			break
		}
		if time.Since(logged) >= apiWaitLogEvery {
			log.Info("Still waiting for the API server", "host", cfg.Host,
				"waited", time.Since(began).Round(time.Second).String(), "error", err.Error())
			logged = time.Now()
		}
	}
	if err == nil {
		log.Info("The API server answers; starting", "host", cfg.Host, "waited", time.Since(began).Round(time.Second).String())
	}
	return refusal(cfg, err)
}

// refusal says what to check when the API server refused the manager
// (err is nil or refused).
func refusal(cfg *rest.Config, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("the API server at %s refused the manager's credentials (%w): check the kubeconfig, "+
		"or the service account's token and RBAC (the chart's ferry-manager ClusterRole)", cfg.Host, err)
}

// refused tells an API server that answered and refused the manager's
// credentials from one that could not be reached or is not serving yet.
func refused(err error) bool {
	return apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)
}

// serveWaitingProbes answers the kubelet's probes on addr while the
// manager waits for the API server: /healthz ok (the process is fine),
// /readyz 503 (it does nothing yet). The returned func stops it, freeing
// addr for the manager's own probes. With probes off ("" or "0"), or addr
// taken, nothing is served; the manager's own start reports addr then.
func serveWaitingProbes(addr string, log logr.Logger) (stop func()) {
	if addr == "" || addr == "0" {
		return func() {}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Info("Could not answer probes while waiting for the API server", "address", addr, "error", err.Error())
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok: waiting for the API server\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for the API server", http.StatusServiceUnavailable)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Info("Probes while waiting for the API server stopped", "error", err.Error())
		}
	}()
	return func() {
		_ = srv.Close()
		<-done
	}
}
