package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ferry-dev/ferry/internal/scheme"
)

// Options tune the control plane a test starts.
type Options struct {
	// APIServerFlags are extra kube-apiserver flags, e.g.
	// {"enable-admission-plugins": {"PodSecurity"}}.
	APIServerFlags map[string][]string
}

// Env is a running control plane with Ferry's CRDs installed.
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client with Ferry's and client-go's
	// kinds registered.
	Client client.Client
	// Scheme is the scheme Client uses.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for Config, usable by the
	// real kubectl and by Ferry's binaries.
	Kubeconfig string

	env   *envtest.Environment
	dir   string
	guard *guard
}

// NewScheme returns a scheme with client-go's kinds and Ferry's.
func NewScheme() *runtime.Scheme { return scheme.New() }

// Start starts etcd and kube-apiserver, installs the CRDs and waits until
// they are served. Call Stop when done (TestMain usually does both).
func Start(opts Options) (*Env, error) {
	keepInheritedFilesFromChildren()
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := binaryAssets(root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-testenv-")
	if err != nil {
		return nil, err
	}
	// etcd's data and the API server's certificates live in dir, so that
	// every process of this control plane names dir on its command line:
	// the guard finds them by it.
	etcdDir, certDir := filepath.Join(dir, "etcd"), filepath.Join(dir, "apiserver")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	g, err := startGuard(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	scheme := NewScheme()
	te := &envtest.Environment{
		Scheme:                   scheme,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	te.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir}
	apiserver := te.ControlPlane.GetAPIServer()
	apiserver.CertDir = certDir
	for flag, values := range opts.APIServerFlags {
		apiserver.Configure().Set(flag, values...)
	}
	cfg, err := te.Start()
	if err != nil {
		// envtest may have started etcd and kube-apiserver before failing
		// (installing the CRDs, say): stop them, or they outlive the test.
		_ = te.Stop()
		_ = g.stop()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the test control plane from %s: %w", assets, err)
	}
	e := &Env{Config: cfg, Scheme: scheme, env: te, dir: dir, guard: g}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, te.KubeConfig, 0o600); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

// keepInheritedFilesFromChildren marks the files this process inherited
// beyond stdin, stdout and stderr close-on-exec, so that etcd and
// kube-apiserver do not inherit them: `flock LOCK go test` hands its lock
// down to the test binary, and a control plane that outlived the binary
// (the guard kills it, but not at once) would hold the lock, and every
// later run waiting on it. Go opens its own files close-on-exec already.
func keepInheritedFilesFromChildren() {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // not Linux: nothing to do that matters here
	}
	for _, f := range fds {
		if fd, err := strconv.Atoi(f.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// APIServer is the running kube-apiserver, for tests that stop and
// restart it.
func (e *Env) APIServer() *envtest.APIServer { return e.env.ControlPlane.GetAPIServer() }

// Stop stops the control plane and removes its files. The guard then
// kills whatever of it is left (a process that ignored its stop).
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, e.guard.stop(), os.RemoveAll(e.dir))
}

// Kubectl runs the machine's kubectl against the test API server and
// returns its standard output; a failure carries its standard error.
func (e *Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}

// RepoRoot is the directory of the repository's go.mod, found by walking up
// from the working directory (a test runs in its package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(data, []byte("module github.com/ferry-dev/ferry\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: not inside the Ferry repository")
		}
		dir = parent
	}
}

// binaryAssets finds kube-apiserver and etcd, building them if needed.
func binaryAssets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	bin := filepath.Join(root, "bin")
	script := filepath.Join(root, "hack", "build-control-plane.sh")
	// The script returns at once when bin/ is current, and otherwise copies
	// from the machine cache or builds.
	cmd := exec.Command(script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testenv: %s failed: %w", script, err)
	}
	return bin, nil
}
