package packaging_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/yaml"

	"github.com/ferry-dev/ferry/internal/testenv"
)

var (
	// env is the control plane every test here talks to.
	env *testenv.Env
	// root is the repository's root directory.
	root string
	// chartDir is charts/ferry.
	chartDir string
	// helmBin is the helm the Makefile builds.
	helmBin string
	// helmHome isolates helm's cache, config and data from the user's.
	helmHome string
	// workDir holds what the package's tests build and share.
	workDir string
	// kubeVersion is the API server's version; `helm template` and `helm
	// lint` render for it (a helm built with plain `go build` defaults to
	// v1.20, below the chart's kubeVersion).
	kubeVersion string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/packaging:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if root, err = testenv.RepoRoot(); err != nil {
		return 0, err
	}
	chartDir = filepath.Join(root, "charts", "ferry")
	helmBin = filepath.Join(root, "bin", "helm")
	// The Makefile's own rule: a no-op when bin/helm is newer than its
	// go.mod, a build otherwise.
	mk := exec.Command("make", "-C", root, "--no-print-directory", helmBin)
	mk.Stdout, mk.Stderr = os.Stderr, os.Stderr
	if err := mk.Run(); err != nil {
		return 0, fmt.Errorf("building helm with make %s: %w", helmBin, err)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		return 0, errors.New("kubectl is not on PATH; it is part of this machine kind (apt-get install kubectl)")
	}
	if workDir, err = os.MkdirTemp("", "ferry-packaging-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(workDir)
	helmHome = filepath.Join(workDir, "helm-home")

	env, err = testenv.Start(testenv.Options{APIServerFlags: map[string][]string{
		// Added to the API server's default plugins, which envtest keeps
		// (minus ServiceAccount, which envtest disables: no controller
		// creates the default service accounts here). PodSecurity is on by
		// default too; naming it makes the requirement explicit.
		"enable-admission-plugins": {"PodSecurity"},
	}})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		return 0, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return 0, err
	}
	kubeVersion = v.GitVersion
	return m.Run(), nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// helm runs bin/helm against the test API server and returns its standard
// output; a failure carries its standard error.
func helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, helmBin, args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+env.Kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// kubectlIn runs kubectl with stdin.
func kubectlIn(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// renderOpts say how to render the chart.
type renderOpts struct {
	release, namespace string
	valuesFiles        []string // relative to testdata/ unless absolute
	sets               []string // --set
	// skipSchema renders with --skip-schema-validation, as a user may.
	skipSchema bool
	// chart is the chart's directory, chartDir when "".
	chart string
}

// templateRaw runs `helm template` and returns the manifest.
func templateRaw(ctx context.Context, o renderOpts) (string, error) {
	if o.release == "" {
		o.release = "ferry"
	}
	if o.namespace == "" {
		o.namespace = "ferry-system"
	}
	if o.chart == "" {
		o.chart = chartDir
	}
	args := []string{"template", o.release, o.chart, "--namespace", o.namespace, "--kube-version", kubeVersion}
	for _, f := range o.valuesFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join("testdata", f)
		}
		args = append(args, "-f", f)
	}
	for _, s := range o.sets {
		args = append(args, "--set", s)
	}
	if o.skipSchema {
		args = append(args, "--skip-schema-validation")
	}
	return helm(ctx, args...)
}

// render runs `helm template` and decodes the objects.
func render(t *testing.T, o renderOpts) []*unstructured.Unstructured {
	t.Helper()
	out, err := templateRaw(testContext(t), o)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// kustomize renders a kustomization directory of config/.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := env.Kubectl(testContext(t), "kustomize", filepath.Join(root, "config", dir))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// decode splits a multi-document YAML stream into objects.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// encode joins objects into a multi-document YAML stream.
func encode(t *testing.T, objs []*unstructured.Unstructured) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes()
}

// find returns the one object of kind whose name ends with suffix.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, suffix string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), suffix) {
			if found != nil {
				t.Fatalf("two %s objects named *%s: %s and %s", kind, suffix, found.GetName(), o.GetName())
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("no %s named *%s among %d objects", kind, suffix, len(objs))
	}
	return found
}

// ofKind returns the objects of kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}
