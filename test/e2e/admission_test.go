package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestLocalStackRefusesAnInvalidRevision: the local stack installs
// config/admission's revision policy, as a cluster installed with the
// chart has it, so `kubectl annotate` of an invalid ferry.dev/revision is
// refused there too, saying why, and the AppGroup keeps its revision. The
// AppGroup selects no node: nothing runs.
func TestLocalStackRefusesAnInvalidRevision(t *testing.T) {
	const name = "e2e-revision-policy"
	manifest := `apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata:
  name: ` + name + `
  namespace: default
  annotations: {ferry.dev/revision: "1"}
spec:
  app: {type: WSGI, root: /srv/nowhere}
  listen: {port: 8080}
  nodeSelector: {ferry.dev/no-such-node: "true"}
`
	cmd := exec.Command("kubectl", "--kubeconfig", stack.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	t.Cleanup(func() { kubectlQuiet("delete", "appgroup", name, "-n", "default", "--wait=false") })

	out, err := exec.Command("kubectl", "--kubeconfig", stack.Kubeconfig, "annotate", "appgroup", name, "-n", "default",
		ferryv1.RevisionAnnotation+"=bad value!", "--overwrite").CombinedOutput()
	want := `ValidatingAdmissionPolicy 'ferry-revision' with binding 'ferry-revision' denied request: ` +
		`annotation ferry.dev/revision value "bad value!" may only contain letters, digits, '.', '_' and '-'`
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("kubectl annotate %s=\"bad value!\": err %v, output:\n%s\nwant it refused with %q", ferryv1.RevisionAnnotation, err, out, want)
	}
	ag := &ferryv1.AppGroup{}
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, ag); err != nil {
		t.Fatal(err)
	}
	if got := ag.Annotations[ferryv1.RevisionAnnotation]; got != "1" {
		t.Errorf("the refused annotate left %s=%q, want 1", ferryv1.RevisionAnnotation, got)
	}
	kubectl(t, "annotate", "appgroup", name, "-n", "default", ferryv1.RevisionAnnotation+"=2", "--overwrite")
}

// kubectlQuiet runs kubectl on the stack, ignoring its outcome (cleanups).
func kubectlQuiet(args ...string) {
	_ = exec.Command("kubectl", append([]string{"--kubeconfig", stack.Kubeconfig}, args...)...).Run()
}
