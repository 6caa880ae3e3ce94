package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestLeaseTroubleLogging: a renewal that keeps failing is logged when it
// starts, when it fails in a way not yet logged, and as a reminder every
// leaseRemindEvery; never every second, never only once.
func TestLeaseTroubleLogging(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	refused := errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
	forbidden := errors.New(`leases.coordination.k8s.io "ferry-agent-node-a" is forbidden`)
	var lt leaseTrouble
	steps := []struct {
		at      time.Duration
		err     error // nil: renewed
		wantLog bool
	}{
		{0, refused, true},
		{time.Second, refused, false},
		{time.Minute, refused, false},
		{2 * time.Minute, forbidden, true},
		{3 * time.Minute, forbidden, false},
		{2*time.Minute + leaseRemindEvery, forbidden, true},
		{2*time.Minute + leaseRemindEvery + time.Second, forbidden, false},
		{10 * time.Minute, nil, true}, // the recovery is logged
		{11 * time.Minute, refused, true},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		if s.err == nil {
			since, was := lt.renewed()
			if was != s.wantLog || !since.Equal(t0) {
				t.Errorf("step %d: renewed = %v, %v; want %v since %v", i, since, was, s.wantLog, t0)
			}
			continue
		}
		since, log := lt.failed(now, s.err)
		if log != s.wantLog {
			t.Errorf("step %d (%v, %v): log = %v, want %v", i, s.at, s.err, log, s.wantLog)
		}
		wantSince := t0
		if i == len(steps)-1 {
			wantSince = now // a new outage after the recovery
		}
		if !since.Equal(wantSince) {
			t.Errorf("step %d: failing since %v, want %v", i, since, wantSince)
		}
	}
	if _, was := lt.renewed(); !was {
		t.Error("renewed after the last failure: was failing = false")
	}
	if _, was := lt.renewed(); was {
		t.Error("renewed twice: was failing = true")
	}
}

// TestLeaseTroubleIgnoresWhatChangesEachTry: an error that names the
// connection's own ephemeral port (a reset, a broken pipe) differs on
// every try; it is still the same trouble, not one to log every second.
func TestLeaseTroubleIgnoresWhatChangesEachTry(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	reset := func(port int) error {
		return fmt.Errorf(`Put "https://10.96.0.1:443/apis/coordination.k8s.io/v1/namespaces/ferry-system/leases/ferry-agent-node-a?timeout=10s": `+
			"read tcp 10.244.1.5:%d->10.96.0.1:443: read: connection reset by peer", port)
	}
	var lt leaseTrouble
	logged := 0
	for i := range 60 {
		if _, log := lt.failed(t0.Add(time.Duration(i)*time.Second), reset(40000+i)); log {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("a minute of resets, each from another local port, logged %d times, want once", logged)
	}
	if _, log := lt.failed(t0.Add(time.Minute), errors.New(`leases.coordination.k8s.io "ferry-agent-node-a" is forbidden`)); !log {
		t.Error("a Forbidden after the resets is not logged")
	}
}

// TestTroubleKey: the errors of an API server that does not answer are
// one trouble, and those of one that cannot be reached another, however
// their words change from try to try; an answer of the API server's, or
// an error of another kind, is its own. The errors are client-go's: a
// *url.Error around the transport's error, most made by real requests.
func TestTroubleKey(t *testing.T) {
	const lease = "https://10.96.0.1:443/apis/coordination.k8s.io/v1/namespaces/ferry-system/leases/ferry-agent-node-a"
	dialErr := func(err error) error {
		return &url.Error{Op: "Get", URL: lease, Err: &net.OpError{Op: "dial", Net: "tcp",
			Addr: &net.TCPAddr{IP: net.IPv4(10, 96, 0, 1), Port: 443}, Err: err}}
	}
	leases := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	silent := silentListener(t)
	cases := []struct {
		name string
		err  error
		want string // "": the error's own key
	}{
		{"TLS handshake timeout", refusedGET(t, &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: 50 * time.Millisecond}}, silent), troubleNoAnswer},
		{"Client.Timeout", refusedGET(t, &http.Client{Timeout: 50 * time.Millisecond}, silent), troubleNoAnswer},
		{"request deadline", lateGET(t, 50*time.Millisecond, silent), troubleNoAnswer},
		{"context deadline exceeded", &url.Error{Op: "Put", URL: lease, Err: context.DeadlineExceeded}, troubleNoAnswer},
		{"dial i/o timeout", dialErr(os.ErrDeadlineExceeded), troubleNoAnswer},
		{"read i/o timeout", &url.Error{Op: "Get", URL: lease, Err: &net.OpError{Op: "read", Net: "tcp",
			Err: &os.SyscallError{Syscall: "read", Err: os.ErrDeadlineExceeded}}}, troubleNoAnswer},
		{"client rate limiter", rateLimiterWait(t), troubleNoAnswer},
		{"HTTP/2 lost ping", &url.Error{Op: "Put", URL: lease, Err: errors.New("http2: client connection lost")}, troubleNoAnswer},
		{"connection refused", refusedGET(t, http.DefaultClient, closedAddr(t)), troubleUnreachable},
		{"no route to host", dialErr(&os.SyscallError{Syscall: "connect", Err: syscall.EHOSTUNREACH}), troubleUnreachable},
		{"network unreachable", dialErr(&os.SyscallError{Syscall: "connect", Err: syscall.ENETUNREACH}), troubleUnreachable},
		{"no such host", dialErr(&net.DNSError{Err: "no such host", Name: "api.example.internal", IsNotFound: true}), troubleUnreachable},
		{"DNS timeout", dialErr(&net.DNSError{Err: "i/o timeout", Name: "api.example.internal", Server: "10.96.0.10:53",
			IsTimeout: true}), troubleUnreachable},
		{"forbidden", apierrors.NewForbidden(leases, "ferry-agent-node-a", errors.New("no RBAC policy matched")), ""},
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), ""},
		{"conflict", apierrors.NewConflict(leases, "ferry-agent-node-a", errors.New("the object has been modified")), ""},
		{"500 with a message", apierrors.NewInternalError(errors.New("etcdserver: request timed out")), ""},
		{"504 of the server's", apierrors.NewTimeoutError("request did not complete within requested timeout - context deadline exceeded", 0), ""},
		{"connection reset", &url.Error{Op: "Put", URL: lease, Err: &net.OpError{Op: "read", Net: "tcp",
			Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}}, ""},
		{"EOF", &url.Error{Op: "Put", URL: lease, Err: io.EOF}, ""},
	}
	for _, c := range cases {
		want := c.want
		if want == "" {
			want = numbers.ReplaceAllString(c.err.Error(), "#")
		}
		if got := troubleKey(c.err); got != want {
			t.Errorf("%s (%T: %v): key %q, want %q", c.name, c.err, c.err, got, want)
		}
	}
}

// TestLeaseTroubleOutageThatFlaps: a frozen API server's errors alternate
// between a TLS handshake timeout and the request's deadline (seen on the
// local stack, a line every 11s before); a refused connection turns into
// no route. Each outage is logged once, a Forbidden between them at once.
func TestLeaseTroubleOutageThatFlaps(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	silent := silentListener(t)
	handshake := refusedGET(t, &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: 50 * time.Millisecond}}, silent)
	deadline := lateGET(t, 50*time.Millisecond, silent)
	refused := refusedGET(t, http.DefaultClient, closedAddr(t))
	noRoute := &url.Error{Op: "Get", URL: "https://10.96.0.1:443/", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.EHOSTUNREACH}}}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"},
		"ferry-agent-node-a", errors.New("no RBAC policy matched"))
	var lt leaseTrouble
	var logged []string
	at := t0
	try := func(err error) {
		at = at.Add(11 * time.Second)
		if _, log := lt.failed(at, err); log {
			logged = append(logged, err.Error())
		}
	}
	for range 6 {
		try(handshake)
		try(deadline)
	}
	try(forbidden)
	for range 6 {
		try(refused)
		try(noRoute)
	}
	want := []string{handshake.Error(), forbidden.Error(), refused.Error()}
	if !slices.Equal(logged, want) {
		t.Errorf("logged %d lines:\n%s\nwant %d:\n%s", len(logged), strings.Join(logged, "\n"), len(want), strings.Join(want, "\n"))
	}
}

// TestLeaseTroubleKindsOncePerOutage: an outage whose kind switches back
// and forth (a restarting API server refuses, then does not answer, then
// refuses again) logs each kind once, then only the reminder every
// leaseRemindEvery; a kind not yet logged is logged when it comes, and
// a renewal starts over. One try every 10s.
func TestLeaseTroubleKindsOncePerOutage(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	silent := silentListener(t)
	refused := refusedGET(t, http.DefaultClient, closedAddr(t))
	timeout := refusedGET(t, &http.Client{Timeout: 50 * time.Millisecond}, silent)
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"},
		"ferry-agent-node-a", errors.New("no RBAC policy matched"))
	flapping := func(n int) []error { // n tries, refused and timeout in turn
		var errs []error
		for i := range n {
			errs = append(errs, []error{refused, timeout}[i%2])
		}
		return errs
	}
	cases := []struct {
		name  string
		tries []error  // nil: a renewal that succeeded
		want  []string // the lines logged: when, and which error
	}{
		{"a restart's minute", flapping(6), []string{"0s refused", "10s timeout"}},
		{"flapping for 7 minutes", flapping(42), []string{"0s refused", "10s timeout", "5m10s timeout"}},
		{"an answer between", append(flapping(4), forbidden, refused, timeout, forbidden),
			[]string{"0s refused", "10s timeout", "40s forbidden"}},
		{"a new outage after a renewal", append(append(flapping(4), nil), flapping(4)...),
			[]string{"0s refused", "10s timeout", "50s refused", "1m0s timeout"}},
	}
	name := map[error]string{refused: "refused", timeout: "timeout", forbidden: "forbidden"}
	for _, c := range cases {
		var lt leaseTrouble
		var logged []string
		for i, err := range c.tries {
			at := time.Duration(i) * 10 * time.Second
			if err == nil { // renewed
				lt.renewed()
			} else if _, log := lt.failed(t0.Add(at), err); log {
				logged = append(logged, at.String()+" "+name[err])
			}
		}
		if !slices.Equal(logged, c.want) {
			t.Errorf("%s: logged %q, want %q", c.name, logged, c.want)
		}
	}
}

// TestLeaseTroubleKindsAreBounded: errors whose words differ at every try
// (each its own kind, each logged) do not pile up in a long outage.
func TestLeaseTroubleKindsAreBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var lt leaseTrouble
	for i := range 100 {
		err := fmt.Errorf("request %s failed", strings.Repeat("x", i))
		if _, log := lt.failed(t0.Add(time.Duration(i)*time.Second), err); !log {
			t.Errorf("try %d, an error of its own: not logged", i)
		}
	}
	if len(lt.kinds) > maxTroubleKinds {
		t.Errorf("%d kinds kept after 100 of them, want at most %d", len(lt.kinds), maxTroubleKinds)
	}
}

// silentListener is the address of a listener that accepts connections
// and never answers, as a frozen API server's kernel does.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	return testsupport.FreeAddr(t)
}

// refusedGET is c's error for an HTTPS GET of addr, which must fail.
func refusedGET(t *testing.T, c *http.Client, addr string) error {
	t.Helper()
	return failedGET(t, c, context.Background(), addr)
}

// lateGET is the error of an HTTPS GET of addr that must end within d.
func lateGET(t *testing.T, d time.Duration, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return failedGET(t, &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: time.Minute}}, ctx, addr)
}

func failedGET(t *testing.T, c *http.Client, ctx context.Context, addr string) error {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s answered", addr)
	}
	return err
}

// rateLimiterWait is the error of client-go's rate limiter asked to wait
// past the request's deadline, wrapped as client-go's rest.Request does.
func rateLimiterWait(t *testing.T) error {
	t.Helper()
	lim := flowcontrol.NewTokenBucketRateLimiter(0.1, 1)
	lim.Accept() // the burst spent: the next token is 10s away
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := lim.Wait(ctx)
	if err == nil {
		t.Fatal("the rate limiter waited past the deadline")
	}
	return fmt.Errorf("client rate limiter Wait returned an error: %w", err)
}
