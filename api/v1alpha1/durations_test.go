package v1alpha1_test

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/config/crd"
)

// goUnits are the units time.ParseDuration reads, which metav1.Duration
// decodes a field with: microseconds are us, µs (U+00B5, the micro sign)
// and μs (U+03BC, the Greek mu), which look the same.
var goUnits = []string{"ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h"}

// notGoUnits look like units and are none of Go's: the mu alone, the
// capital Greek Mu (U+039C), a spelled mu, a day, a capital S.
var notGoUnits = []string{"\u03bc", "\u039cs", "mus", "d", "S", " s"}

// formRule is a duration's form rule, its pattern quoted whole.
var formRule = regexp.MustCompile(`^self\.matches\('([^']*)'\)$`)

// TestDurationRulesTakeGoUnits: the markers spell a duration's pattern
// once per rule (a marker is a literal string), so every duration field
// of both CRDs must carry the same one, in its form rule and again at the
// head of its range rule, and that pattern must take every unit Go reads
// and no other: μs (the Greek mu) was refused by the form though Go, CEL's
// duration() and the agent read it. The API server's matches() is Go's
// regexp, as here.
func TestDurationRulesTakeGoUnits(t *testing.T) {
	fields := durationFields()
	if len(fields) == 0 {
		t.Fatal("PoolSpec has no *metav1.Duration field")
	}
	patterns := map[string]bool{}
	for _, kind := range []struct{ name, pool string }{{"AppGroup", "spec.pool"}, {"ProcessPool", "spec.template.pool"}} {
		def, err := crd.ByKind(kind.name)
		if err != nil {
			t.Fatal(err)
		}
		pool := schemaAt(t, def, kind.pool)
		for _, field := range fields {
			rules := pool.Properties[field].XValidations
			if len(rules) != 2 {
				t.Errorf("%s.%s has %d rules, want a form rule and a range rule", kind.pool, field, len(rules))
				continue
			}
			form := formRule.FindStringSubmatch(rules[0].Rule)
			if form == nil {
				t.Errorf("%s.%s's first rule is no form rule: %s", kind.pool, field, rules[0].Rule)
				continue
			}
			if head := "!" + form[0] + " || "; !strings.HasPrefix(rules[1].Rule, head) {
				t.Errorf("%s.%s's range rule does not begin %q: %s", kind.pool, field, head, rules[1].Rule)
			}
			patterns[form[1]] = true
		}
	}
	if len(patterns) != 1 {
		t.Fatalf("the duration rules spell %d patterns, want one: %v", len(patterns), patterns)
	}
	for pattern := range patterns {
		checkTakesGoUnits(t, regexp.MustCompile(pattern))
	}
}

// checkTakesGoUnits checks a duration pattern takes a value with each of
// Go's units, and none with a unit Go does not read.
func checkTakesGoUnits(t *testing.T, pattern *regexp.Regexp) {
	t.Helper()
	for _, unit := range goUnits {
		for _, value := range []string{"1" + unit, "1.5" + unit, "-2" + unit, "1h2" + unit + "3ns"} {
			if _, err := time.ParseDuration(value); err != nil {
				t.Fatalf("Go does not read %q: %v", value, err)
			}
			if !pattern.MatchString(value) {
				t.Errorf("%q (unit %+q), which Go reads, is refused by the pattern %s", value, unit, pattern)
			}
		}
	}
	for _, unit := range notGoUnits {
		value := "1" + unit
		if _, err := time.ParseDuration(value); err == nil {
			t.Fatalf("Go reads %q", value)
		}
		if pattern.MatchString(value) {
			t.Errorf("%q (unit %+q), which Go does not read, is taken by the pattern %s", value, unit, pattern)
		}
	}
}

// durationFields are the JSON names of PoolSpec's durations.
func durationFields() []string {
	var names []string
	typ := reflect.TypeFor[ferryv1.PoolSpec]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type == reflect.TypeFor[*metav1.Duration]() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

// schemaAt is the schema of a dotted path of properties in a CRD's one
// version.
func schemaAt(t *testing.T, def *apiextensionsv1.CustomResourceDefinition, path string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	if len(def.Spec.Versions) != 1 {
		t.Fatalf("%s has %d versions, want one", def.Name, len(def.Spec.Versions))
	}
	schema := *def.Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, key := range strings.Split(path, ".") {
		next, ok := schema.Properties[key]
		if !ok {
			t.Fatalf("%s has no %s (at %s)", def.Name, path, key)
		}
		schema = next
	}
	return schema
}
