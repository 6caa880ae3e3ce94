package spawn

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// mapSource is an EnvSource over a map of "Kind/name/key" to values; a
// missing one is ok false (as an optional one), "fail" an error.
type mapSource map[string]string

func (m mapSource) Value(_ context.Context, from ferryv1.EnvVarSource) (string, bool, error) {
	kind, ref := from.Ref()
	v, ok := m[kind+"/"+ref.Name+"/"+ref.Key]
	if v == "fail" {
		return "", false, errors.New(`Secret "s" has no key "k": add it`)
	}
	return v, ok, nil
}

func TestResolveEnv(t *testing.T) {
	secret := &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "s", Key: "k"}}
	config := &ferryv1.EnvVarSource{ConfigMapKeyRef: &ferryv1.KeySelector{Name: "c", Key: "k"}}
	src := mapSource{"Secret/s/k": "secret", "ConfigMap/c/k": "config"}
	cases := []struct {
		name    string
		env     []ferryv1.EnvVar
		src     EnvSource
		want    []ferryv1.EnvVar
		wantErr string
	}{
		{"values only, no source", []ferryv1.EnvVar{{Name: "A", Value: "1"}}, nil, []ferryv1.EnvVar{{Name: "A", Value: "1"}}, ""},
		{"each read, in order", []ferryv1.EnvVar{{Name: "A", Value: "1"}, {Name: "S", ValueFrom: secret}, {Name: "C", ValueFrom: config}}, src,
			[]ferryv1.EnvVar{{Name: "A", Value: "1"}, {Name: "S", Value: "secret"}, {Name: "C", Value: "config"}}, ""},
		{"an optional one missing is left out", []ferryv1.EnvVar{{Name: "S", ValueFrom: secret}, {Name: "A", Value: "1"}}, mapSource{},
			[]ferryv1.EnvVar{{Name: "A", Value: "1"}}, ""},
		{"a failed read names the variable", []ferryv1.EnvVar{{Name: "S", ValueFrom: secret}}, mapSource{"Secret/s/k": "fail"}, nil,
			`env S: Secret "s" has no key "k": add it`},
		{"a NUL in the value", []ferryv1.EnvVar{{Name: "S", ValueFrom: secret}}, mapSource{"Secret/s/k": "a\x00b"}, nil,
			`env S: the value of key "k" of Secret "s" holds a NUL character, which no environment variable can hold: store it without one (or read it from a file)`},
		{"the longest value exec takes (S=, 131069 bytes, a NUL)", []ferryv1.EnvVar{{Name: "S", ValueFrom: secret}},
			mapSource{"Secret/s/k": strings.Repeat("x", 131069)}, []ferryv1.EnvVar{{Name: "S", Value: strings.Repeat("x", 131069)}}, ""},
		{"a byte longer", []ferryv1.EnvVar{{Name: "S", ValueFrom: secret}}, mapSource{"Secret/s/k": strings.Repeat("x", 131070)}, nil,
			`env S: the value of key "k" of Secret "s" is 131070 bytes, more than an environment variable can hold (131072 with its name): put it in a file the app reads`},
		{"no source (standalone)", []ferryv1.EnvVar{{Name: "S", ValueFrom: secret}}, nil, nil,
			"env S: valueFrom reads a Secret or ConfigMap from the API server, and this agent has none (standalone): set value instead"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]ferryv1.EnvVar(nil), tc.env...)
			got, err := resolveEnv(context.Background(), tc.env, tc.src)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("resolveEnv = %+v, %q; want %+v, %q", got, gotErr, tc.want, tc.wantErr)
			}
			if !reflect.DeepEqual(tc.env, before) {
				t.Errorf("the template's env changed: %+v, was %+v", tc.env, before)
			}
		})
	}
}

// TestLongestEnvValueExecs: maxEnvString is the kernel's bound, not a
// guess: a worker spawned with the longest value resolveEnv lets through
// starts (one byte more and exec refuses it: "argument list too long").
func TestLongestEnvValueExecs(t *testing.T) {
	long := strings.Repeat("x", maxEnvString-len("S=")-1)
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, ReadinessPath: "/",
		Env: []ferryv1.EnvVar{{Name: "S", ValueFrom: &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "s", Key: "k"}}}}})
	spec.EnvFrom = mapSource{"Secret/s/k": long}
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatalf("a %d-byte value: %v", len(long), err)
	}
	p.Stop(5 * time.Second)
}
