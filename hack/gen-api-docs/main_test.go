package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
)

// TestValidationRendersItemAndValueBounds: the validation column says the
// bounds of a list's items and of a map's values, and what makes a list's
// items unique, not only the list's or map's own bounds.
func TestValidationRendersItemAndValueBounds(t *testing.T) {
	label := &apiextensionsv1.JSONSchemaProps{Type: "string", MaxLength: ptr.To[int64](63),
		XValidations: apiextensionsv1.ValidationRules{{Rule: "self.matches('^[a-z]*$')", Message: "values must be label values"}}}
	for _, tt := range []struct {
		name   string
		schema apiextensionsv1.JSONSchemaProps
		want   string
	}{
		{"list of bounded strings", apiextensionsv1.JSONSchemaProps{Type: "array", MinItems: ptr.To[int64](1), MaxItems: ptr.To[int64](64),
			XListType: ptr.To("atomic"),
			Items:     &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", MaxLength: ptr.To[int64](4096)}}},
			"items >= 1; items <= 64; each item: length <= 4096"},
		{"list of unbounded strings", apiextensionsv1.JSONSchemaProps{Type: "array",
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}}, ""},
		{"list keyed by name", apiextensionsv1.JSONSchemaProps{Type: "array", MaxItems: ptr.To[int64](128),
			XListType: ptr.To("map"), XListMapKeys: []string{"name"},
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
				Properties:   map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}},
				XValidations: apiextensionsv1.ValidationRules{{Rule: "true", Message: "an object rule, in its own row"}}}}},
			"items <= 128; keyed by `name`: no two items with the same name"},
		{"list keyed by two keys", apiextensionsv1.JSONSchemaProps{Type: "array", XListType: ptr.To("map"), XListMapKeys: []string{"port", "protocol"}},
			"keyed by `port`, `protocol`: no two items with the same port and protocol"},
		{"set", apiextensionsv1.JSONSchemaProps{Type: "array", XListType: ptr.To("set"),
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "integer", Minimum: ptr.To(1.0)}}},
			"no two items equal; each item: >= 1"},
		{"map of label values", apiextensionsv1.JSONSchemaProps{Type: "object", MaxProperties: ptr.To[int64](64),
			AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: label}},
			"entries <= 64; each value: (length <= 63; values must be label values)"},
		{"map with a key rule", apiextensionsv1.JSONSchemaProps{Type: "object",
			XValidations:         apiextensionsv1.ValidationRules{{Rule: "true", Message: "keys must be label keys"}},
			AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
			"keys must be label keys"},
		{"list of maps", apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{
			Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: label}}}},
			"each item: each value: (length <= 63; values must be label values)"},
		{"list of lists", apiextensionsv1.JSONSchemaProps{Type: "array", MaxItems: ptr.To[int64](8), Items: &apiextensionsv1.JSONSchemaPropsOrArray{
			Schema: &apiextensionsv1.JSONSchemaProps{Type: "array", MinItems: ptr.To[int64](1), Items: &apiextensionsv1.JSONSchemaPropsOrArray{
				Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", MinLength: ptr.To[int64](1), MaxLength: ptr.To[int64](8)}}}}},
			"items <= 8; each item: (items >= 1; each item: (length >= 1; length <= 8))"},
		{"set of bounded, ruled strings", apiextensionsv1.JSONSchemaProps{Type: "array", XListType: ptr.To("set"),
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: label}},
			"no two items equal; each item: (length <= 63; values must be label values)"},
	} {
		if got := strings.Join(validation(&tt.schema), "; "); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestWriteFieldsRefusesWhatItCannotRender: gen-api-docs fails on a field
// whose fields it would leave out of the reference (a map of objects, a
// list of lists, or of maps, of objects), and renders what it lets
// through: the rows of an object's fields, and of a list's items' (but
// not of a list of metav1.Condition, which Kubernetes documents: one of
// objects with a field more, or with a reason and a time only, is ours,
// and gets its rows).
func TestWriteFieldsRefusesWhatItCannotRender(t *testing.T) {
	obj := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}}}
	condition := conditionSchema()
	withExtra := conditionSchema()
	withExtra.Properties["extra"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
	reasonAndTime := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"reason": {Type: "string"}, "lastTransitionTime": {Type: "string", Format: "date-time"}}}
	listOf := func(s apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &s}}
	}
	mapOf := func(s apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &s}}
	}
	for _, tt := range []struct {
		name  string
		field apiextensionsv1.JSONSchemaProps
		want  string // the error; empty: none
		rows  []string
	}{
		{"object", obj, "", []string{"spec.f[].f", "spec.f[].f.name"}},
		{"list of objects", listOf(obj), "", []string{"spec.f[].f", "spec.f[].f[].name"}},
		{"list of conditions", listOf(condition), "", []string{"spec.f[].f"}},
		{"condition-like with an extra field", listOf(withExtra), "", []string{"spec.f[].f", "spec.f[].f[].extra",
			"spec.f[].f[].lastTransitionTime", "spec.f[].f[].message", "spec.f[].f[].observedGeneration",
			"spec.f[].f[].reason", "spec.f[].f[].status", "spec.f[].f[].type"}},
		{"a reason and a time", listOf(reasonAndTime), "", []string{"spec.f[].f", "spec.f[].f[].lastTransitionTime",
			"spec.f[].f[].reason"}},
		{"map of strings", mapOf(apiextensionsv1.JSONSchemaProps{Type: "string"}), "", []string{"spec.f[].f"}},
		{"list of lists of strings", listOf(listOf(apiextensionsv1.JSONSchemaProps{Type: "string"})), "", []string{"spec.f[].f"}},
		{"map of objects", mapOf(obj),
			"spec.f[].f is a map[string]object holding objects with fields, which gen-api-docs cannot render: teach writeChildFields this shape", nil},
		{"list of lists of objects", listOf(listOf(obj)),
			"spec.f[].f is a [][]object holding objects with fields, which gen-api-docs cannot render: teach writeChildFields this shape", nil},
		{"list of maps of objects", listOf(mapOf(obj)),
			"spec.f[].f is a []map[string]object holding objects with fields, which gen-api-docs cannot render: teach writeChildFields this shape", nil},
	} {
		// Nested under an object and a list of objects, as writeFields
		// walks them.
		inner := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"f": tt.field}}
		spec := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"f": listOf(inner)}}
		var b bytes.Buffer
		got := ""
		if err := writeFields(&b, "spec", &spec); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		if tt.want != "" {
			continue
		}
		if rows, want := fieldRows(b.String()), append([]string{"spec.f"}, tt.rows...); !slices.Equal(rows, want) {
			t.Errorf("%s: rows for %q, want %q", tt.name, rows, want)
		}
	}
}

// conditionSchema is metav1.Condition's schema as controller-gen emits it
// (config/crd/bases, status.conditions' items).
func conditionSchema() apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "object",
		Required: []string{"lastTransitionTime", "message", "reason", "status", "type"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"lastTransitionTime": {Type: "string", Format: "date-time"},
			"message":            {Type: "string", MaxLength: ptr.To[int64](32768)},
			"observedGeneration": {Type: "integer", Format: "int64", Minimum: ptr.To(0.0)},
			"reason": {Type: "string", MinLength: ptr.To[int64](1), MaxLength: ptr.To[int64](1024),
				Pattern: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`},
			"status": {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"True"`)}, {Raw: []byte(`"False"`)},
				{Raw: []byte(`"Unknown"`)}}},
			"type": {Type: "string", MaxLength: ptr.To[int64](316)},
		}}
}

// fieldRows are the fields that rendered rows name, in order.
func fieldRows(md string) []string {
	var fields []string
	for line := range strings.Lines(md) {
		if f, ok := strings.CutPrefix(line, "| `"); ok {
			field, _, _ := strings.Cut(f, "`")
			fields = append(fields, field)
		}
	}
	return fields
}

// widgetCRD is a CRD of kind Widget whose spec is specYAML, indented as
// the spec's own lines ("type: object", ...).
func widgetCRD(specYAML string) string {
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
`
	for line := range strings.Lines(specYAML) {
		crd += "            " + line
	}
	return crd
}

// TestRunRefusesBeforeWriting: a CRD with a shape writeChildFields refuses,
// in a field or in the spec itself, fails the run, named by its kind, and
// leaves the reference as it was, not cut short at the refused field (nor
// a spec's table left empty).
func TestRunRefusesBeforeWriting(t *testing.T) {
	for _, tt := range []struct {
		name, spec, want string
	}{
		{"a field that is a map of objects", `type: object
properties:
  parts:
    type: object
    additionalProperties:
      type: object
      properties:
        name: {type: string}
`, "Widget: spec.parts is a map[string]object holding objects with fields"},
		{"a spec that is a map of objects", `type: object
additionalProperties:
  type: object
  properties:
    name: {type: string}
`, "Widget: spec is a map[string]object holding objects with fields"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte(widgetCRD(tt.spec)), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "api.md")
		if err := os.WriteFile(out, []byte("the reference as it was\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := run(dir, out)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: run: %v, want an error starting %q", tt.name, err, tt.want)
		}
		if data, err := os.ReadFile(out); err != nil || string(data) != "the reference as it was\n" {
			t.Errorf("%s: the reference after the refusal: %q (%v), want it as it was", tt.name, data, err)
		}
	}
}

// TestRunReplacesTheReference: a run writes the reference beside the old
// one and renames it over it, leaving no file of its own behind.
func TestRunReplacesTheReference(t *testing.T) {
	dir := t.TempDir()
	spec := "type: object\nproperties:\n  size: {type: integer}\n"
	if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte(widgetCRD(spec)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "api.md")
	if err := os.WriteFile(out, []byte("the reference as it was\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, out); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(out); err != nil || !strings.Contains(string(data), "| `spec.size` | integer |") {
		t.Errorf("the reference after the run: %q (%v), want spec.size's row", data, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"api.md", "widgets.yaml"}; !slices.Equal(names, want) {
		t.Errorf("files after the run: %q, want %q", names, want)
	}
}

// TestRunRendersASpecWithoutFields: a spec or status without fields (an
// object kept whole, a map, or not an object) gets a row of its own, as a
// field has: its type, whether the kind requires it, default, bounds and
// rules (a map's values' too) and description, which no field's row
// shows.
func TestRunRendersASpecWithoutFields(t *testing.T) {
	for _, tt := range []struct {
		name, spec, row string
		required        bool // the kind requires its spec
	}{
		{"an object kept whole", `type: object
description: A widget, kept whole.
x-kubernetes-preserve-unknown-fields: true
x-kubernetes-validations:
- rule: "has(self.size)"
  message: a widget needs a size
`, "| `spec` | object |  |  | a widget needs a size | A widget, kept whole. |\n", false},
		{"a map", `type: object
description: A widget's parts, by name.
maxProperties: 8
additionalProperties: {type: string, maxLength: 63}
x-kubernetes-validations:
- rule: "has(self.size)"
  message: a widget needs a size
`, "| `spec` | map[string]string | yes |  | entries <= 8; a widget needs a size; each value: length <= 63 | A widget's parts, by name. |\n", true},
		{"a string", `type: string
description: A widget's size.
default: small
maxLength: 16
x-kubernetes-validations:
- rule: "self != ''"
  message: a widget needs a size
`, "| `spec` | string |  | `\"small\"` | length <= 16; a widget needs a size | A widget's size. |\n", false},
	} {
		crd := widgetCRD(tt.spec)
		if tt.required {
			crd += "        required: [spec]\n"
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte(crd), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "api.md")
		if err := run(dir, out); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if rows := fieldRows(string(data)); !slices.Equal(rows, []string{"spec"}) || !strings.Contains(string(data), tt.row) {
			t.Errorf("%s: the reference's rows are of %q, want one, the spec's, %q:\n%s", tt.name, rows, tt.row, data)
		}
	}
}

// TestRunRendersASpecWithFields: a spec or status with fields gets a row
// of its own too, before its fields' and its rules' (an "object rules"
// row, as a field holding an object has): its type, whether the kind
// requires it, and its description, which no other row shows.
func TestRunRendersASpecWithFields(t *testing.T) {
	crd := widgetCRD(`type: object
description: A widget, as its owner wants it.
properties:
  size: {type: integer, description: The widget's size.}
x-kubernetes-validations:
- rule: "has(self.size)"
  message: a widget needs a size
`) + `          status:
            type: object
            description: What the widget is.
            properties:
              ready: {type: boolean, description: Whether it is ready.}
        required: [spec]
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte(crd), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "api.md")
	if err := run(dir, out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "| `") {
			rows = append(rows, line)
		}
	}
	want := []string{
		"| `spec` | object | yes |  |  | A widget, as its owner wants it. |\n",
		"| `spec` | object rules | | | a widget needs a size | |\n",
		"| `spec.size` | integer |  |  |  | The widget's size. |\n",
		"| `status` | object |  |  |  | What the widget is. |\n",
		"| `status.ready` | boolean |  |  |  | Whether it is ready. |\n",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("the reference's rows:\n%s\nwant:\n%s", strings.Join(rows, ""), strings.Join(want, ""))
	}
}

// TestRunRendersTheServedVersion: a CRD's reference is its served
// version's, named in its kind's line and in the header, a version kept
// with served: false (retired) left out. A CRD serving two versions
// fails the run, named by its kind and the versions, leaving the
// reference as it was: the reference renders one version a kind, and the
// first listed may be neither the one users write nor the one stored. One
// serving none, of no versions, or whose served version has no schema,
// is refused too, not a panic.
func TestRunRendersTheServedVersion(t *testing.T) {
	version := func(name string, served bool) string {
		return `  - name: ` + name + `
    served: ` + strconv.FormatBool(served) + `
    storage: false
    schema:
      openAPIV3Schema:
        type: object
`
	}
	crd := widgetCRD("type: object\n")
	withV2 := func(crd string, served bool) string {
		return strings.Replace(crd, "  versions:\n", "  versions:\n"+version("v2", served), 1)
	}
	v1Retired := strings.Replace(crd, "    served: true\n", "    served: false\n", 1)
	// upTo cuts crd before marker: the same string the index is taken on.
	upTo := func(marker string) string {
		before, _, found := strings.Cut(crd, marker)
		if !found {
			t.Fatalf("the CRD has no %q", marker)
		}
		return before
	}
	for _, tt := range []struct {
		name, crd string
		want      string // the error; empty: none
		rendered  string // the version rendered
	}{
		{"one version", crd, "", "v1"},
		{"v2 served, v1 retired", withV2(v1Retired, true), "", "v2"},
		{"v1 served, v2 not yet", withV2(crd, false), "", "v1"},
		{"two versions served", withV2(crd, true),
			"Widget: 2 versions served (v2, v1), of which the reference renders one: teach writeCRD to render each", ""},
		{"none served", withV2(v1Retired, false), "Widget: no version served of 2 (v2, v1): none to render", ""},
		{"no versions", upTo("  - name: v1"), "Widget: no version to render", ""},
		{"a version without a schema", upTo("    schema:"), "Widget: version v1 has no schema to render", ""},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte(tt.crd), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "api.md")
		if err := os.WriteFile(out, []byte("the reference as it was\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := run(dir, out); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: run: %q, want %q", tt.name, got, tt.want)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if tt.want != "" {
			if string(data) != "the reference as it was\n" {
				t.Errorf("%s: the reference after the refusal: %q, want it as it was", tt.name, data)
			}
			continue
		}
		for _, line := range []string{"Ferry's API is group `example.com`, version `" + tt.rendered + "`.",
			"`example.com/" + tt.rendered + "`, namespaced"} {
			if !strings.Contains(string(data), line) {
				t.Errorf("%s: the reference does not say %q:\n%s", tt.name, line, data)
			}
		}
	}
}

// TestRunRefusesCRDsOfTwoVersions: CRDs whose rendered versions are of
// more than one group or version fail the run, each named, as does a
// directory of none: the header names the one group and version.
func TestRunRefusesCRDsOfTwoVersions(t *testing.T) {
	gadget := strings.NewReplacer("Widget", "Gadget", "widgets", "gadgets", "name: v1", "name: v2").Replace(widgetCRD("type: object\n"))
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"two versions", map[string]string{"widgets.yaml": widgetCRD("type: object\n"), "gadgets.yaml": gadget},
			": CRDs of more than one group or version (Gadget example.com/v2, Widget example.com/v1), where the header" +
				" names one: teach header to name each"},
		{"none", nil, ": no CRD to render"},
	} {
		dir := t.TempDir()
		for name, crd := range tt.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(crd), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(t.TempDir(), "api.md")
		if err := run(dir, out); err == nil || err.Error() != dir+tt.want {
			t.Errorf("%s: run: %v, want %q", tt.name, err, dir+tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the reference after the refusal: %v, want none written", tt.name, err)
		}
	}
}
