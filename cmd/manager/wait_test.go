package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestWaitsForTheAPIServer starts the real ferry-manager while its API
// server cannot be reached (a port nothing listens on), then lets it
// through to the real API server (a TCP relay on that port): until then it
// says what it waits for, its /healthz answers and its /readyz does not;
// after, it starts and reconciles without being restarted.
func TestWaitsForTheAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	apiAddr := testsupport.FreeAddr(t)
	kubeconfig := env.KubeconfigFor(t, "https://"+apiAddr, "")
	probeAddr := testsupport.FreeAddr(t)
	var logs testenv.Output
	_, stop := startManager(ctx, t, &logs, managerBinary(t), "--kubeconfig", kubeconfig,
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address="+probeAddr)
	defer stop()

	testenv.Eventually(t, time.Minute, "the manager says it waits", func() error {
		if s := logs.String(); !strings.Contains(s, "Waiting for the API server") || !strings.Contains(s, apiAddr) {
			return fmt.Errorf("logs so far:\n%s", s)
		}
		return nil
	})
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		if code, body, err := get("http://" + probeAddr + path); err != nil || code != want {
			t.Errorf("while waiting, %s answered %d %q (%v), want %d", path, code, body, err, want)
		}
	}

	// The API server comes back.
	relayTo(ctx, t, apiAddr, env.Config.Host)
	testenv.Eventually(t, 2*time.Minute, "/readyz", func() error {
		code, body, err := get("http://" + probeAddr + "/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
	if !strings.Contains(logs.String(), "The API server answers; starting") {
		t.Errorf("the manager did not say it starts:\n%s", logs.String())
	}
	const ns = "apps-waited"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: ns},
		Spec: ferryv1.AppGroupSpec{AppTemplate: ferryv1.AppTemplate{
			App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/hello"},
			Listen: ferryv1.ListenSpec{Port: 8080},
		}},
	}
	if err := env.Client.Create(ctx, ag); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "status written", func() error {
		got := &ferryv1.AppGroup{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ag), got); err != nil {
			return err
		}
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
}

// TestRefusedCredentialsAreNotWaitedFor: an API server that answers but
// refuses the manager's token is a configuration to fix, not an outage:
// the manager exits at once and says why.
func TestRefusedCredentialsAreNotWaitedFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubeconfig := env.KubeconfigFor(t, "", "not-a-token")
	var logs testenv.Output
	cmd, stop := startManager(ctx, t, &logs, managerBinary(t), "--kubeconfig", kubeconfig,
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0")
	defer stop()
	err := cmd.Wait()
	if err == nil || !strings.Contains(logs.String(), "refused the manager's credentials") || strings.Contains(logs.String(), "Waiting for the API server") {
		t.Errorf("with a refused token: exit %v, logs:\n%s", err, logs.String())
	}
}

// relayTo accepts connections on addr (which must be free) and relays
// each to the API server at host, until ctx ends.
func relayTo(ctx context.Context, t *testing.T, addr, host string) {
	t.Helper()
	u, err := url.Parse(host)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-ctx.Done(); _ = l.Close() }()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", u.Host)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
}
