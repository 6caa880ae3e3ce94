package v1alpha1_test

import (
	"testing"

	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport/validationcases"
)

// TestEnvValueFromIsKept: a Pod's env valueFrom, secretKeyRef and
// configMapKeyRef (optional too), carries over to an AppGroup and a
// ProcessPool as written, and so does a variable with neither value nor
// valueFrom (an empty value, as a Pod's and as a Go client writes "").
func TestEnvValueFromIsKept(t *testing.T) {
	ns := newNamespace(t)
	vars := []any{
		map[string]any{"name": "SECRET_KEY", "valueFrom": validationcases.SecretRef("django", "SECRET_KEY")},
		map[string]any{"name": "MODE", "valueFrom": map[string]any{
			"configMapKeyRef": map[string]any{"name": "settings.v1", "key": "mode.name", "optional": true}}},
		map[string]any{"name": "EMPTY"},
	}
	want := []ferryv1.EnvVar{
		{Name: "SECRET_KEY", ValueFrom: &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "django", Key: "SECRET_KEY"}}},
		{Name: "MODE", ValueFrom: &ferryv1.EnvVarSource{ConfigMapKeyRef: &ferryv1.KeySelector{Name: "settings.v1", Key: "mode.name", Optional: ptr.To(true)}}},
		{Name: "EMPTY"},
	}
	ag := decode(t, validAppGroup)
	ag.SetNamespace(ns)
	setPath(t, ag.Object, "spec.app.env", vars)
	if err := env.Client.Create(testContext(t), ag); err != nil {
		t.Fatalf("AppGroup refused: %v", err)
	}
	var got ferryv1.AppGroup
	if err := env.Client.Get(testContext(t), clientKey(ns, "valid"), &got); err != nil {
		t.Fatal(err)
	}
	if diff := compare(want, got.Spec.App.Env); diff != "" {
		t.Errorf("AppGroup env: %s", diff)
	}
	pp := decode(t, validProcessPool)
	pp.SetNamespace(ns)
	setPath(t, pp.Object, "spec.template.app.env", vars)
	if err := env.Client.Create(testContext(t), pp); err != nil {
		t.Fatalf("ProcessPool refused: %v", err)
	}
}
