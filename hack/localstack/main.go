// Command ferry-local runs `make local-up`'s Ferry (internal/localstack) in
// the foreground: control plane, simulated nodes, manager, agents, and the
// sample AppGroup. It prints what to try once the sample is Ready, writes
// DIR/ready, and tears everything down on SIGTERM or SIGINT.
// hack/local-up.sh builds and starts it; hack/local-down.sh stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"sigs.k8s.io/yaml"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/localstack"
)

func main() {
	dir := flag.String("dir", ".local", "where the kubeconfig, logs and agents' state go")
	bin := flag.String("bin", "bin", "where ferry-manager, ferry-agent and kubectl-ferry are")
	repo := flag.String("repo", ".", "the repository (for the sample app and AppGroup)")
	detached := flag.Bool("detached", false, "started in the background (make local-up DETACH=1): say to stop it with make local-down, not Ctrl-C")
	flag.Parse()
	if err := run(*dir, *bin, *repo, *detached); err != nil {
		fmt.Fprintln(os.Stderr, "ferry-local:", err)
		os.Exit(1)
	}
}

func run(dir, bin, repo string, detached bool) error {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	dir, bin, repo = abs(dir), abs(bin), abs(repo)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(dir, "pid"))
	defer os.Remove(filepath.Join(dir, "ready"))

	s, err := localstack.Up(ctx, localstack.Options{Dir: dir, Bin: bin, Progress: os.Stdout})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("==> Tearing down")
		if err := s.Down(); err != nil {
			fmt.Fprintln(os.Stderr, "ferry-local:", err)
		}
	}()
	sample, err := sampleAppGroup(repo)
	if err != nil {
		return err
	}
	fmt.Println("==> Applying the sample AppGroup \"hello\" (examples/hello-wsgi)")
	if err := kubectl(s.Kubeconfig, sample, "apply", "-f", "-"); err != nil {
		return err
	}
	fmt.Println("==> Waiting until it is Ready")
	if err := kubectl(s.Kubeconfig, "", "wait", "--for=condition=Ready", "appgroup/hello", "--timeout=180s"); err != nil {
		return err
	}
	if err := writeEnv(dir, bin, s); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		return err
	}
	printTryThis(dir, repo, s, detached)
	<-ctx.Done()
	return nil
}

// sampleAppGroup is config/samples' AppGroup with its root set to this
// checkout's examples/hello-wsgi, two processes per node so a rolling
// restart shows, and a short boot delay so it can be watched.
func sampleAppGroup(repo string) (string, error) {
	data, err := os.ReadFile(filepath.Join(repo, "config", "samples", "ferry_v1alpha1_appgroup.yaml"))
	if err != nil {
		return "", err
	}
	var ag ferryv1.AppGroup
	if err := yaml.UnmarshalStrict(data, &ag); err != nil {
		return "", err
	}
	ag.Namespace = "default"
	ag.Spec.App.Root = filepath.Join(repo, "examples", "hello-wsgi")
	ag.Spec.App.Env = []ferryv1.EnvVar{{Name: "BOOT_DELAY", Value: "1"}}
	ag.Spec.Pool.MinProcesses, ag.Spec.Pool.MaxProcesses = 2, 4
	out, err := yaml.Marshal(&ag)
	return string(out), err
}

func kubectl(kubeconfig, stdin string, args ...string) error {
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd.Run()
}

func writeEnv(dir, bin string, s *localstack.Stack) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by make local-up: source it to talk to the local Ferry.\n")
	fmt.Fprintf(&b, "export KUBECONFIG=%s\n", s.Kubeconfig)
	fmt.Fprintf(&b, "export PATH=%s:$PATH\n", bin)
	for i, n := range s.Nodes() {
		fmt.Fprintf(&b, "export FERRY_NODE_%d=%s:8080\n", i+1, n.IP)
	}
	return os.WriteFile(filepath.Join(dir, "env"), []byte(b.String()), 0o644)
}

func printTryThis(dir, repo string, s *localstack.Stack, detached bool) {
	nodes := s.Nodes()
	stop := "Ctrl-C"
	if detached {
		stop = "make local-down"
	}
	fmt.Printf(`
Ferry is up: a kube-apiserver, the manager, and an agent on each of %d simulated nodes,
serving the sample AppGroup "hello" (examples/hello-wsgi, 2 processes per node).

  source %s/env                     # KUBECONFIG, and bin/ on PATH for kubectl ferry

  kubectl get appgroups                     # READY and its REASON, REVISION, PROCESSES, NODES, RESTARTING, RESISTING
  kubectl get processpools -o wide          # one pool per node
`, len(nodes), dir)
	for _, n := range nodes {
		fmt.Printf("  curl -i %s:8080/                   # %s; X-Pid says which worker answered\n", n.IP, n.Name)
	}
	fmt.Printf(`
Roll it (zero downtime, one process at a time, node by node):
  kubectl annotate appgroup hello ferry.dev/revision=2 --overwrite
  kubectl get appgroups -w                  # RESTARTING True, then False
  kubectl annotate appgroup hello ferry.dev/revision='bad value!' --overwrite   # refused: the revision policy
  kubectl ferry restart hello --wait        # or: bump the revision and follow the rollout to its end
  kubectl ferry status hello                # passenger-status across nodes

Break a deploy, then mend it:
  kubectl patch appgroup hello --type merge -p '{"spec":{"app":{"root":"%[1]s/examples/broken-wsgi"}}}'
  kubectl get appgroups                     # RESISTING True; the old processes keep serving
  kubectl describe appgroup hello           # the reason and the Python traceback
  kubectl patch appgroup hello --type merge -p '{"spec":{"app":{"root":"%[1]s/examples/hello-wsgi"}}}'

Logs: %[2]s/logs/   Stop: %[3]s
`, repo, dir, stop)
}
