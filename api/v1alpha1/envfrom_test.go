package v1alpha1_test

import (
	"testing"

	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

const (
	envOneOf     = "an env variable takes one of value and valueFrom, not both"
	envOneSource = "valueFrom takes exactly one of secretKeyRef and configMapKeyRef"
)

func keyRef(name, key string) map[string]any { return map[string]any{"name": name, "key": key} }

func secretRef(name, key string) map[string]any {
	return map[string]any{"secretKeyRef": keyRef(name, key)}
}

// envFrom sets spec.app.env to one variable K with fields.
func envFrom(fields map[string]any) map[string]any {
	v := map[string]any{"name": "K"}
	for k, f := range fields {
		v[k] = f
	}
	return map[string]any{"spec.app.env": []any{v}}
}

// TestEnvValueFromIsKept: a Pod's env valueFrom, secretKeyRef and
// configMapKeyRef (optional too), carries over to an AppGroup and a
// ProcessPool as written, and so does a variable with neither value nor
// valueFrom (an empty value, as a Pod's and as a Go client writes "").
func TestEnvValueFromIsKept(t *testing.T) {
	ns := newNamespace(t)
	vars := []any{
		map[string]any{"name": "SECRET_KEY", "valueFrom": secretRef("django", "SECRET_KEY")},
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
