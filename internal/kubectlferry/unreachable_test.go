package kubectlferry

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestUnreachableAPIServer: with the API server down, or a kubeconfig
// pointing elsewhere, each command says which server it could not reach
// and what to check, rather than client-go's "failed to get server groups".
func TestUnreachableAPIServer(t *testing.T) {
	addr := testsupport.FreeAddr(t) // nothing listens there: connections are refused
	kubeconfig := env.KubeconfigFor(t, "https://"+addr, "")
	for _, args := range [][]string{
		{"status", "app"},
		{"status", "app", "--json"},
		{"restart", "app", "--timeout", "5s"},
		{"restart", "app", "--wait", "--timeout", "5s"},
	} {
		r := runWith(kubeconfig, args...)
		want := "error: could not reach the API server at https://" + addr + ": "
		if r.code != ExitFailure || !strings.HasPrefix(r.err, want) || !strings.Contains(r.err, "connection refused") ||
			!strings.Contains(r.err, unreachableHint) || r.out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q ... %q", args, r.code, r.out, r.err, want, unreachableHint)
		}
	}
}

// TestHungAPIServer: a server that accepts connections and never answers
// (a stopped or overloaded API server) is named the same way, once the
// TLS handshake times out.
func TestHungAPIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn // accepted and never answered
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	kubeconfig := env.KubeconfigFor(t, "https://"+l.Addr().String(), "")
	r := runWith(kubeconfig, "status", "app")
	want := "error: could not reach the API server at https://" + l.Addr().String() + ": "
	if r.code != ExitFailure || !strings.HasPrefix(r.err, want) || !strings.Contains(r.err, "TLS handshake timeout") ||
		!strings.Contains(r.err, unreachableHint) || r.out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q ... %q", r.code, r.out, r.err, want, unreachableHint)
	}
}

const unreachableHint = "Is the cluster up, and are the kubeconfig and its context (--kubeconfig, $KUBECONFIG, --context) the right ones?"

// runWith runs the plugin with a kubeconfig of the test's own.
func runWith(kubeconfig string, args ...string) result {
	var out, errb bytes.Buffer
	a := &App{Out: &out, Err: &errb, PollInterval: 20 * time.Millisecond}
	code := a.Run(context.Background(), append(args, "--kubeconfig", kubeconfig))
	return result{out: out.String(), err: errb.String(), code: code}
}
