package localstack_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/deployargs"
	"github.com/ferry-dev/ferry/internal/kubectlferry"
	"github.com/ferry-dev/ferry/internal/localstack"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestManagerLeadsAndComesBack: the local stack's manager runs with
// leader election, as the chart runs it, so `kubectl ferry status` finds
// its Lease and notes nothing; killed, it is started again, as the kubelet
// would, and the new one takes the Lease. Before, it ran without leader
// election: status could not tell a manager that is gone, and one that
// exited stayed gone.
func TestManagerLeadsAndComesBack(t *testing.T) {
	// kubectl-ferry's main discards controller-runtime's client logs too;
	// without a logger, it complains after 30 s with a stack trace.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(dir, "bin")
	if err := localstack.BuildBinaries(filepath.Join(filepath.Dir(file), "..", ".."), bin); err != nil {
		t.Fatal(err)
	}
	s, err := localstack.Up(ctx, localstack.Options{Dir: dir, Bin: bin, FreePorts: true,
		Nodes: []localstack.Node{{Name: "node-1", IP: "127.0.0.2"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Down(); err != nil {
			t.Error(err)
		}
	})
	// An AppGroup no node runs: status needs one to show.
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "idle"},
		Spec: ferryv1.AppGroupSpec{NodeSelector: map[string]ferryv1.LabelValue{"no-such": "node"}, AppTemplate: ferryv1.AppTemplate{
			App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/idle"},
			Listen: ferryv1.ListenSpec{Port: 8080},
		}},
	}
	if err := s.Client.Create(ctx, ag); err != nil {
		t.Fatal(err)
	}

	first := leader(ctx, t, s, "")
	assertNoManagerNote(ctx, t, s)

	pid := s.ManagerPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, time.Minute, "another manager process", func() error {
		if s.ManagerPID() == pid {
			return fmt.Errorf("still pid %d", pid)
		}
		return nil
	})
	// The Lease of the killed one expires (15 s) before the new one takes it.
	leader(ctx, t, s, first)
	assertNoManagerNote(ctx, t, s)
}

// leader waits until a manager other than prev holds the leader Lease in
// the local stack's namespace, and returns its identity.
func leader(ctx context.Context, t *testing.T, s *localstack.Stack, prev string) string {
	t.Helper()
	var holder string
	testsupport.Eventually(t, 2*time.Minute, "a leader other than "+prev, func() error {
		var l coordinationv1.Lease
		key := client.ObjectKey{Namespace: deployargs.LocalNamespace, Name: contract.ManagerLeaseName}
		if err := s.Client.Get(ctx, key, &l); err != nil {
			return err
		}
		holder = ptr.Deref(l.Spec.HolderIdentity, "")
		if holder == "" || holder == prev {
			return fmt.Errorf("held by %q", holder)
		}
		return nil
	})
	return holder
}

// assertNoManagerNote runs `kubectl ferry status idle` against the stack:
// with a manager leading, it notes none missing.
func assertNoManagerNote(ctx context.Context, t *testing.T, s *localstack.Stack) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &kubectlferry.App{Out: &out, Err: &errb}
	if code := app.Run(ctx, []string{"status", "idle", "-n", "default", "--kubeconfig", s.Kubeconfig}); code != kubectlferry.ExitOK {
		t.Fatalf("kubectl ferry status: exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "No ferry-manager leads") || strings.Contains(out.String(), "the manager may be down") {
		t.Errorf("kubectl ferry status notes no manager while one leads:\n%s", out.String())
	}
}
