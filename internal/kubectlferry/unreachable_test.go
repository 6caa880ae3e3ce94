package kubectlferry

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnreachableAPIServer: with the API server down, or a kubeconfig
// pointing elsewhere, each command says which server it could not reach
// and what to check, rather than client-go's "failed to get server groups".
func TestUnreachableAPIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	data, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	live := env.Config.Host
	dead := strings.ReplaceAll(string(data), strings.TrimSuffix(strings.TrimPrefix(live, "https://"), "/"), addr)
	if dead == string(data) {
		t.Fatalf("the kubeconfig does not name the API server %s", live)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(dead), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status", "app"},
		{"status", "app", "--json"},
		{"restart", "app", "--timeout", "5s"},
		{"restart", "app", "--wait", "--timeout", "5s"},
	} {
		var out, errb bytes.Buffer
		a := &App{Out: &out, Err: &errb, PollInterval: 20 * time.Millisecond}
		code := a.Run(context.Background(), append(args, "--kubeconfig", kubeconfig))
		r := result{out: out.String(), err: errb.String(), code: code}
		want := "error: could not reach the API server at https://" + addr + ": "
		hint := "Is the cluster up, and are the kubeconfig and its context (--kubeconfig, $KUBECONFIG, --context) the right ones?"
		if r.code != ExitFailure || !strings.HasPrefix(r.err, want) || !strings.Contains(r.err, "connection refused") ||
			!strings.Contains(r.err, hint) || r.out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q ... %q", args, r.code, r.out, r.err, want, hint)
		}
	}
}
