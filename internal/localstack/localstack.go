// Package localstack runs a whole Ferry on one machine: a real
// kube-apiserver and etcd (internal/testenv) with the revision admission
// policy (config/admission), Node objects for simulated nodes, the
// manager, and one agent per node bound to its own loopback address
// (127.0.0.2, 127.0.0.3, ...). There is no kubelet here, so the
// binaries run as local processes, with exactly the arguments the Helm
// chart renders (internal/deployargs) plus a --kubeconfig.
//
// `make local-up` (hack/local-up.sh, via hack/localstack) and the e2e
// tests (test/e2e) both use it.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/config/admission"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/deployargs"
	"github.com/ferry-dev/ferry/internal/freeport"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// Node is a simulated node: a Node object and an agent bound to IP.
type Node struct {
	Name string
	IP   string
}

// DefaultNodes are the two nodes of `make local-up`.
var DefaultNodes = []Node{{Name: "node-1", IP: "127.0.0.2"}, {Name: "node-2", IP: "127.0.0.3"}}

// ServiceCIDR is the local API server's Service range: a /16, room for as
// many AppGroups' Services as the control-plane benchmark creates.
const ServiceCIDR = "10.0.0.0/16"

// NodeLabel marks the simulated nodes; the sample AppGroup selects it.
const NodeLabel = "ferry.dev/web"

// Options configure a stack.
type Options struct {
	// Dir holds the kubeconfig, the logs and the agents' state.
	Dir string
	// Bin holds ferry-manager and ferry-agent.
	Bin string
	// Nodes to simulate. Default DefaultNodes.
	Nodes []Node
	// Progress receives one line per step. Optional.
	Progress io.Writer
	// ManagerArgs are extra manager arguments (tests shorten
	// --agent-stale-after). Later flags win.
	ManagerArgs []string
	// AgentArgs are extra agent arguments.
	AgentArgs []string
	// FreePorts has the manager's and the agents' metrics and health
	// endpoints listen on ports the kernel picks, so that a test's stack
	// runs beside `make local-up`'s, which keeps the fixed ports its docs
	// name (127.0.0.1:18080 and :18081; each node's IP :9441 and :9442).
	FreePorts bool
}

// Stack is a running local Ferry.
type Stack struct {
	opts       Options
	env        *testenv.Env
	Kubeconfig string
	Client     client.Client
	// managerMu guards manager, the manager running now (keepManager
	// replaces it when it exits), and stopping: Down began, and the
	// manager is not started again.
	managerMu sync.Mutex
	manager   *process
	stopping  bool
	agents    map[string]*process
	apiserver *exec.Cmd // set once the API server was restarted by StartAPIServer
	// managerHealth is the manager's health endpoint, host:port;
	// agentPorts are each node's agent's metrics and health ports when
	// Options.FreePorts picked them.
	managerHealth string
	agentPorts    map[string][2]int
	// apiserverArgv is the API server's command line, read when stopped.
	apiserverArgv []string
}

// BuildBinaries builds ferry-manager and ferry-agent from the repository
// at repo into bin, for a stack's Options.Bin.
func BuildBinaries(repo, bin string) error {
	for pkg, out := range map[string]string{"./cmd/manager": "ferry-manager", "./cmd/agent": "ferry-agent"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, out), pkg)
		build.Dir = repo
		if b, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
		}
	}
	return nil
}

// Up starts everything and waits until the manager and every agent answer
// their readiness probes.
func Up(ctx context.Context, opts Options) (_ *Stack, err error) {
	if len(opts.Nodes) == 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	for _, d := range []string{opts.Dir, filepath.Join(opts.Dir, "logs"), filepath.Join(opts.Dir, "agents")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, bin := range []string{"ferry-manager", "ferry-agent"} {
		if _, err := os.Stat(filepath.Join(opts.Bin, bin)); err != nil {
			return nil, fmt.Errorf("%s not built (make build): %w", bin, err)
		}
	}
	s := &Stack{opts: opts, agents: map[string]*process{}}
	defer func() {
		if err != nil {
			_ = s.Down()
		}
	}()

	s.progress("Starting kube-apiserver and etcd, with Ferry's CRDs")
	if s.env, err = testenv.Start(testenv.Options{APIServerFlags: map[string][]string{
		// Every AppGroup has a ClusterIP Service: envtest's default /24
		// runs out at 254 of them, a real cluster's range is far larger.
		"service-cluster-ip-range": {ServiceCIDR},
	}}); err != nil {
		return nil, err
	}
	s.Client = s.env.Client
	s.Kubeconfig = filepath.Join(opts.Dir, "kubeconfig")
	data, err := os.ReadFile(s.env.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.Kubeconfig, data, 0o600); err != nil {
		return nil, err
	}
	// Ferry's namespace: the agents renew their Leases there.
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: deployargs.LocalNamespace}}); err != nil {
		return nil, err
	}
	for _, n := range opts.Nodes {
		if err := s.createNode(ctx, n); err != nil {
			return nil, err
		}
	}
	s.progress("Installing the revision admission policy (config/admission)")
	if err := s.installRevisionPolicy(ctx); err != nil {
		return nil, err
	}

	s.progress("Starting the manager")
	menv := deployargs.LocalManagerEnv()
	local := deployargs.LocalManager()
	if opts.FreePorts {
		if err := s.pickPorts(&local); err != nil {
			return nil, err
		}
	}
	s.managerHealth = local.HealthProbeBindAddress
	margs := deployargs.Expand(deployargs.ManagerArgs(local), menv)
	margs = append(append(margs, "--kubeconfig="+s.Kubeconfig), opts.ManagerArgs...)
	mpath, mlog := filepath.Join(opts.Bin, "ferry-manager"), filepath.Join(opts.Dir, "logs", "manager.log")
	manager, err := start(mpath, margs, menv, mlog, false)
	if err != nil {
		return nil, err
	}
	s.manager = manager
	go s.keepManager(manager, mpath, margs, menv, mlog)
	for _, n := range opts.Nodes {
		s.progress("Starting the agent of " + n.Name + " on " + n.IP)
		if err := s.StartAgent(n.Name); err != nil {
			return nil, err
		}
	}
	if err := waitHTTP(ctx, "http://"+s.managerHealth+"/readyz", manager); err != nil {
		return nil, fmt.Errorf("the manager did not become ready: %w\n%s", err, manager.tail())
	}
	for _, n := range opts.Nodes {
		health := 9442
		if p, ok := s.agentPorts[n.Name]; ok {
			health = p[1]
		}
		if err := waitHTTP(ctx, "http://"+net.JoinHostPort(n.IP, strconv.Itoa(health))+"/readyz", s.agents[n.Name]); err != nil {
			return nil, fmt.Errorf("the agent of %s did not become ready: %w\n%s", n.Name, err, s.agents[n.Name].tail())
		}
	}
	return s, nil
}

// installRevisionPolicy installs config/admission's revision policy and
// its binding, as a cluster installed with the chart or config/default
// has them, and waits until the API server enforces them (it takes a
// policy up a moment after it is made): until a dry run of an AppGroup
// with an invalid revision is refused.
func (s *Stack) installRevisionPolicy(ctx context.Context) error {
	policy, binding, err := admission.RevisionPolicy()
	if err != nil {
		return err
	}
	for _, o := range []client.Object{policy, binding} {
		if err := s.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("installing %s: %w", o.GetName(), err)
		}
	}
	probe := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "revision-policy-probe",
			Annotations: map[string]string{ferryv1.RevisionAnnotation: "bad value!"}},
		Spec: ferryv1.AppGroupSpec{AppTemplate: ferryv1.AppTemplate{
			App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/probe"},
			Listen: ferryv1.ListenSpec{Port: 8080},
		}},
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := s.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policy.Name+"'") {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("accepted")
			}
			return fmt.Errorf("the API server did not enforce the revision policy %s within a minute: a dry run of an AppGroup with an invalid revision: %w", policy.Name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pickPorts asks the kernel for the manager's and every agent's metrics
// and health ports (Options.FreePorts).
func (s *Stack) pickPorts(m *deployargs.Manager) error {
	ports := make([]int, 2)
	for i := range ports {
		p, err := freeport.Loopback()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	m.MetricsBindAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	m.HealthProbeBindAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	s.agentPorts = map[string][2]int{}
	for _, n := range s.opts.Nodes {
		var p [2]int
		for i := range p {
			port, err := freeport.On(n.IP)
			if err != nil {
				return err
			}
			p[i] = port
		}
		s.agentPorts[n.Name] = p
	}
	return nil
}

func (s *Stack) progress(msg string) { fmt.Fprintln(s.opts.Progress, "==> "+msg) }

func (s *Stack) node(name string) (Node, bool) {
	for _, n := range s.opts.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

func (s *Stack) createNode(ctx context.Context, n Node) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
		NodeLabel: "true", corev1.LabelHostname: n.Name}}}
	if err := s.Client.Create(ctx, node); err != nil {
		return err
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "SimulatedNode", Message: "a node simulated by Ferry's local stack", LastHeartbeatTime: metav1.Now(),
		LastTransitionTime: metav1.Now()}}
	return s.Client.Status().Update(ctx, node)
}

// AgentArgs are the arguments the agent of node runs with (StartAgent's).
func (s *Stack) AgentArgs(node string) []string { return s.agentArgs(node, s.Kubeconfig) }

// agentArgs are the arguments of node's agent reaching the API server
// through kubeconfig.
func (s *Stack) agentArgs(node, kubeconfig string) []string {
	n, _ := s.node(node)
	state := filepath.Join(s.opts.Dir, "agents", n.Name)
	args := deployargs.Expand(deployargs.AgentArgs(deployargs.LocalAgent(state)), deployargs.LocalAgentEnv(n.Name, n.IP))
	args = append(args, "--kubeconfig="+kubeconfig)
	if p, ok := s.agentPorts[n.Name]; ok {
		args = append(args, "--metrics-bind-address="+net.JoinHostPort(n.IP, strconv.Itoa(p[0])),
			"--health-probe-bind-address="+net.JoinHostPort(n.IP, strconv.Itoa(p[1])))
	}
	return append(args, s.opts.AgentArgs...)
}

// StartAgent starts (or restarts) the agent of a node, as a cluster admin
// (the stack's Kubeconfig).
func (s *Stack) StartAgent(node string) error { return s.startAgent(node, s.Kubeconfig) }

// StartAgentAs starts (or restarts) the agent of a node as user: through
// a kubeconfig like the stack's whose user impersonates user (its `as:`),
// so that the agent may do only what RBAC grants user, as in a cluster,
// where it has its service account's roles and no more (a test binds user
// to the chart's agent roles). The kubeconfig is DIR/kubeconfig-as-USER.
// StartAgent starts it as an admin again.
func (s *Stack) StartAgentAs(node, user string) error {
	cfg, err := clientcmd.LoadFromFile(s.Kubeconfig)
	if err != nil {
		return err
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok || cfg.AuthInfos[ctx.AuthInfo] == nil {
		return fmt.Errorf("%s: no user in its current context %q", s.Kubeconfig, cfg.CurrentContext)
	}
	cfg.AuthInfos[ctx.AuthInfo].Impersonate = user
	path := filepath.Join(s.opts.Dir, "kubeconfig-as-"+user)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	return s.startAgent(node, path)
}

func (s *Stack) startAgent(node, kubeconfig string) error {
	n, ok := s.node(node)
	if !ok {
		return fmt.Errorf("no node %q", node)
	}
	if p := s.agents[node]; p != nil && p.running() {
		return fmt.Errorf("the agent of %s is running", node)
	}
	p, err := start(filepath.Join(s.opts.Bin, "ferry-agent"), s.agentArgs(node, kubeconfig),
		deployargs.LocalAgentEnv(n.Name, n.IP), filepath.Join(s.opts.Dir, "logs", "agent-"+n.Name+".log"), false)
	if err != nil {
		return err
	}
	s.agents[node] = p
	return nil
}

// StopAgent stops a node's agent (it drains its pools first).
func (s *Stack) StopAgent(node string) error {
	if p := s.agents[node]; p != nil {
		return p.stop(3 * time.Minute)
	}
	return nil
}

// StopAPIServer kills the kube-apiserver at once, as a crash or a lost
// network would (a SIGTERM would start a graceful shutdown that keeps
// serving for a minute); etcd keeps the data. The manager and the agents
// see it gone.
func (s *Stack) StopAPIServer() error {
	if s.apiserver != nil {
		err := s.apiserver.Process.Kill()
		_ = s.apiserver.Wait()
		s.apiserver = nil
		return err
	}
	as := s.env.APIServer()
	pid, argv, err := findProcess(as.Path, "--cert-dir="+as.CertDir)
	if err != nil {
		return err
	}
	s.apiserverArgv = argv
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for alive(pid) {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// StartAPIServer starts the kube-apiserver again with the very command
// line and certificates it ran with, and waits until it answers.
func (s *Stack) StartAPIServer(ctx context.Context) error {
	if len(s.apiserverArgv) == 0 {
		return errors.New("the kube-apiserver was not stopped by StopAPIServer")
	}
	cmd := exec.Command(s.apiserverArgv[0], s.apiserverArgv[1:]...) //nolint:gosec // the binary and flags envtest ran
	log, err := os.OpenFile(filepath.Join(s.opts.Dir, "logs", "kube-apiserver-restarted.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.apiserver = cmd
	for {
		var ns corev1.NamespaceList
		if err := s.Client.List(ctx, &ns); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down stops the agents (they drain), the manager and the control plane.
func (s *Stack) Down() error {
	// Together: each serves on for its drain delay once it said it stops.
	errs := make([]error, 0, len(s.agents)+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, p := range s.agents {
		s.progress("Stopping the agent of " + name)
		wg.Go(func() {
			err := p.stop(3 * time.Minute)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	s.managerMu.Lock()
	s.stopping = true
	manager := s.manager
	s.managerMu.Unlock()
	if manager != nil {
		s.progress("Stopping the manager")
		errs = append(errs, manager.stop(time.Minute))
	}
	if s.apiserver != nil {
		_ = s.apiserver.Process.Signal(syscall.SIGTERM)
		_ = s.apiserver.Wait()
	}
	if s.env != nil {
		s.progress("Stopping kube-apiserver and etcd")
		if err := s.env.Stop(); err != nil && s.apiserver == nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// findProcess finds the process running path with an argument arg, and
// returns its pid and argv.
func findProcess(path, arg string) (int, []string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(argv) > 0 && argv[0] == path && slices.Contains(argv, arg) {
			return pid, argv, nil
		}
	}
	return 0, nil, fmt.Errorf("no running %s with %s", path, arg)
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie has exited; its parent (envtest) reaps it.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// waitHTTP waits until url answers 200, or p exits.
func waitHTTP(ctx context.Context, url string, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !p.running() {
			return fmt.Errorf("it exited: %s", p.exitStatus())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// process is a binary the stack started.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start starts path with args and env, its output in logPath: appended
// to it with appendLog, else replacing it.
func start(path string, args []string, env map[string]string, logPath string, appendLog bool) (*process, error) {
	mode := os.O_TRUNC
	if appendLog {
		mode = os.O_APPEND
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|mode, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = deployargs.Environ(env)
	cmd.Stdout, cmd.Stderr = log, log
	// The binaries die with the stack, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) exitStatus() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// stop sends SIGTERM and waits, SIGKILL after timeout.
func (p *process) stop(timeout time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s; killed", filepath.Base(p.cmd.Path), timeout)
	}
}

// tail returns the end of the process's log: its last 20 lines ("" when
// there is none).
func (p *process) tail() string {
	data, _ := os.ReadFile(p.log)
	return contract.LastLines(string(data), 20)
}

// Config reaches the API server as a cluster admin.
func (s *Stack) Config() *rest.Config { return s.env.Config }

// ManagerPID is the process id of the manager running now (keepManager
// starts another when it exits).
func (s *Stack) ManagerPID() int {
	s.managerMu.Lock()
	defer s.managerMu.Unlock()
	return s.manager.cmd.Process.Pid
}

// managerRestartDelay is how long keepManager waits before it starts the
// manager again.
const managerRestartDelay = 2 * time.Second

// keepManager starts the manager again each time it exits while the stack
// runs (p is the one running first), as the kubelet restarts a
// Deployment's container: with leader election, as the chart runs it, a
// manager that could not renew its Lease for 10 s (an API server down or
// frozen) exits with "leader election lost", and the next one waits for
// the API server. Each restart is said on Progress and in the manager's
// log, which the new manager appends to.
func (s *Stack) keepManager(p *process, path string, args []string, env map[string]string, logPath string) {
	for {
		<-p.done
		time.Sleep(managerRestartDelay)
		s.managerMu.Lock()
		if s.stopping {
			s.managerMu.Unlock()
			return
		}
		note := fmt.Sprintf("The manager exited (%s); starting it again, as the kubelet would (its log: %s)", p.exitStatus(), logPath)
		s.progress(note)
		appendLine(logPath, "ferry-local: "+note)
		next, err := start(path, args, env, logPath, true)
		if err != nil {
			s.progress("Could not start the manager again: " + err.Error())
			s.managerMu.Unlock()
			return
		}
		s.manager, p = next, next
		s.managerMu.Unlock()
	}
}

// appendLine adds line to the file at path, if it can.
func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}

// Nodes returns the simulated nodes.
func (s *Stack) Nodes() []Node { return slices.Clone(s.opts.Nodes) }
