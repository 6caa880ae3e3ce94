package appfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ferry-dev/ferry/api/v1alpha1"
)

const (
	kindAppGroup = "AppGroup"

	// DefaultNamespace is the namespace of an AppGroup whose file sets none.
	DefaultNamespace = "default"
)

// Load reads one or more AppGroups (YAML documents separated by ---; JSON
// also fine) from path, and returns them defaulted and validated, with a
// relative spec.app.root resolved against the file's directory. Errors name
// path as given.
func Load(path string) ([]v1alpha1.AppGroup, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return Parse(data, dir, path)
}

// Parse is Load for data already read: baseDir is the directory a relative
// spec.app.root is resolved against (made absolute if it is not; "" leaves
// relative roots to be rejected), and source names the input in errors.
//
// It returns every AppGroup of data, in order, or none and an *Error listing
// every problem.
func Parse(data []byte, baseDir string, source string) ([]v1alpha1.AppGroup, error) {
	if source == "" {
		source = "<input>"
	}
	s, err := appGroupSchema()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if baseDir != "" && !filepath.IsAbs(baseDir) {
		if baseDir, err = filepath.Abs(baseDir); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
	}

	var docs []*document
	for _, c := range split(data) {
		d := &document{index: len(docs) + 1, line: c.contentLine}
		docs = append(docs, d)
		obj, err := decode(c)
		if err != nil {
			d.errs = append(d.errs, err)
			continue
		}
		s.load(d, obj, baseDir)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no AppGroup found", source)
	}
	checkUnique(docs)

	var errs []error
	groups := make([]v1alpha1.AppGroup, 0, len(docs))
	for _, d := range docs {
		for _, e := range d.errs {
			errs = append(errs, fmt.Errorf("%s: %w", d.label(), e))
		}
		if d.group != nil {
			groups = append(groups, *d.group)
		}
	}
	if err := Problems(source, errs); err != nil {
		return nil, err
	}
	return groups, nil
}

// Error lists what is wrong with an input (or with serving it): one
// problem reads as one line, "SOURCE: PROBLEM"; several as one error, a
// line "SOURCE: N problems:" and each problem on a line of its own,
// indented, so that every line printed after a "ferry-agent: " prefix reads
// as part of the one error. errors.Is and errors.As see each problem.
type Error struct {
	Source   string
	Problems []error
}

// Problems returns errs (nil ones dropped) as an *Error about source, or
// nil if none is left.
func Problems(source string, errs []error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return &Error{Source: source, Problems: kept}
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Source + ": " + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", e.Source, len(e.Problems))
	for _, p := range e.Problems {
		// A problem of several lines (YAML's list of duplicate keys)
		// keeps its own lines under it, indented further.
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(p.Error(), "\n", "\n  "))
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// document is one YAML document of the input and what became of it.
type document struct {
	index int // 1-based, counting non-empty documents only
	line  int // the line of its first content in the input

	kindOK    bool   // apiVersion and kind say AppGroup
	name      string // metadata.name, once known to be a string
	nameTaken bool   // an earlier document has the same name
	port      int64  // spec.listen.port, once known to be a valid port

	group *v1alpha1.AppGroup // set if the document is valid
	errs  []error
}

// label names the document in errors: by its name if it is an AppGroup with
// a name of its own, else by its position.
func (d *document) label() string {
	if d.kindOK && d.name != "" && !d.nameTaken {
		return fmt.Sprintf("%s %q", kindAppGroup, d.name)
	}
	return d.position()
}

func (d *document) position() string {
	return fmt.Sprintf("document %d (line %d)", d.index, d.line)
}

// load takes one decoded document through the API server's create path:
// type check, prune, default, validate; then converts it to an AppGroup. It
// records every problem in d.errs.
func (s *crdSchema) load(d *document, obj map[string]any, baseDir string) {
	if errs := validateTypeMeta(obj); len(errs) > 0 {
		d.errs = append(d.errs, toErrors(errs)...)
		return
	}
	d.kindOK = true
	if md, ok := obj["metadata"].(map[string]any); ok {
		d.name, _ = md["name"].(string)
	}

	// Decoding, as the server's unstructuredSchemaCoercer does it:
	// metadata through ObjectMeta, everything else pruned by the schema,
	// unknown fields reported.
	meta, found, unknown, err := schemaobjectmeta.GetObjectMetaWithOptions(obj, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		d.errs = append(d.errs, field.Invalid(field.NewPath("metadata"), obj["metadata"], err.Error()))
		return
	}
	if !found {
		meta = &metav1.ObjectMeta{}
	}
	// A create may not set status: the server drops it.
	delete(obj, "status")
	unknown = append(unknown, structuralpruning.PruneWithOptions(obj, s.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, s.structural)
	if meta.Namespace == "" {
		meta.Namespace = DefaultNamespace
	}
	if err := schemaobjectmeta.SetObjectMeta(obj, meta); err != nil {
		d.errs = append(d.errs, field.InternalError(field.NewPath("metadata"), err))
		return
	}
	sort.Strings(unknown)
	for _, p := range unknown {
		d.errs = append(d.errs, fmt.Errorf("unknown field %q", p))
	}

	resolveRoot(obj, baseDir)
	structuraldefaulting.Default(obj, s.structural)
	if port, ok, _ := unstructured.NestedFieldNoCopy(obj, "spec", "listen", "port"); ok {
		if p, ok := port.(int64); ok && p >= 1 && p <= 65535 {
			d.port = p
		}
	}

	errs, skipped := s.validate(meta, obj)
	d.errs = append(d.errs, toErrors(errs)...)
	if skipped != nil {
		d.errs = append(d.errs, skipped)
	}
	if len(d.errs) > 0 {
		return
	}
	var group v1alpha1.AppGroup
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &group); err != nil {
		d.errs = append(d.errs, fmt.Errorf("converting to AppGroup: %w", err))
		return
	}
	if errs := standaloneRefusals(&group); len(errs) > 0 {
		d.errs = append(d.errs, toErrors(errs)...)
		return
	}
	d.group = &group
}

// standaloneRefusals are what the API server accepts and the standalone
// agent cannot serve: an env valueFrom, which reads a Secret or ConfigMap
// from an API server it has none of.
func standaloneRefusals(g *v1alpha1.AppGroup) field.ErrorList {
	var errs field.ErrorList
	for i, e := range g.Spec.App.Env {
		if e.ValueFrom == nil {
			continue
		}
		kind, ref := e.ValueFrom.Ref()
		errs = append(errs, field.Forbidden(field.NewPath("spec", "app", "env").Index(i).Child("valueFrom"), fmt.Sprintf(
			"%s: the standalone agent has no API server to read %s %q from: set value instead, in a file others may not read",
			e.Name, kind, ref.Name)))
	}
	return errs
}

// validateTypeMeta checks apiVersion and kind, in the words of the server's
// customResourceValidator.ValidateTypeMeta.
func validateTypeMeta(obj map[string]any) field.ErrorList {
	var errs field.ErrorList
	check := func(name, want string) {
		p := field.NewPath(name)
		switch v, ok := obj[name]; {
		case !ok || v == nil || v == "":
			errs = append(errs, field.Required(p, "must be "+want))
		case v != want:
			errs = append(errs, field.Invalid(p, v, "must be "+want))
		}
	}
	check("apiVersion", v1alpha1.GroupVersion.String())
	check("kind", kindAppGroup)
	return errs
}

// validate runs the server's create validation on a pruned, defaulted
// object: metadata, OpenAPI schema, list types, then CEL rules (see
// customResourceStrategy.Validate). Errors come sorted by field; skipped
// is errCELSkipped if they kept the CEL rules from running.
//
// Unlike the server, a metadata error does not stop the CEL rules: none
// of them reads metadata, and a file's author wants every error at once.
func (s *crdSchema) validate(meta *metav1.ObjectMeta, obj map[string]any) (errs field.ErrorList, skipped error) {
	var metaErrs field.ErrorList
	if meta.GenerateName != "" {
		// The server would generate a name; a file has nobody to tell it to.
		metaErrs = append(metaErrs, field.Forbidden(field.NewPath("metadata", "generateName"), "not supported in a file: set metadata.name"))
		meta = meta.DeepCopy()
		meta.GenerateName = ""
	}
	metaErrs = append(metaErrs, metavalidation.ValidateObjectMetaAccessor(meta, true, metavalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)

	errs = append(errs, typesInWords(notInBody(apiservervalidation.ValidateCustomResource(nil, obj, s.openAPI)), obj)...)
	errs = append(errs, schemaobjectmeta.Validate(context.Background(), nil, obj, s.structural, false)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
	skipCEL := blocking(errs)
	errs = append(metaErrs, errs...)
	sortByField(errs)

	if s.cel == nil {
		return errs, nil
	}
	if skipCEL {
		return errs, errCELSkipped
	}
	celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	sortByField(celErrs)
	return append(errs, celErrs...), nil
}

// notInBody drops what the OpenAPI validator puts first in a detail,
// "spec.pool.minProcesses in body should be greater than or equal to 1":
// the error names its field already, and a file is no request's body
// (the phrase is the API server's). The detail is then "should be greater
// than or equal to 1".
func notInBody(errs field.ErrorList) field.ErrorList {
	for _, e := range errs {
		if path, rest, ok := strings.Cut(e.Detail, " in body "); ok && !strings.Contains(path, " ") {
			e.Detail = rest
		}
	}
	return errs
}

var (
	// typeDetail is a type error's detail, less notInBody's part: the type
	// (or format) the schema wants, then the Go type of the value.
	typeDetail = regexp.MustCompile(`^must be of type (\w+): "\w*"$`)
	// formatDetail is the format check's, on no field ("<nil>: Invalid
	// value: \"\": Checked value must be of type integer with format int32
	// in spec.listen.port"), for a number that is no integer.
	formatDetail = regexp.MustCompile(`^Checked value must be of type (\w+) with format \w+ in (\S+)$`)
)

// typeWords are what a value of a schema type (or format) is, in a file's
// words.
var typeWords = map[string]string{
	"integer": "an integer", "int32": "an integer", "int64": "an integer",
	"number": "a number", "string": "a string", "boolean": "a boolean (true or false)",
	"object": "a mapping", "array": "a list",
}

// typesInWords words the OpenAPI validator's type errors as the package's
// other field errors: the value the file has and what it must be
// ("spec.listen.port: Invalid value: \"abc\": must be an integer"), not the
// Go type of the value twice ("Invalid value: \"string\": must be of type
// integer: \"string\""). The format check's error on no field names its
// field in its detail: it goes onto that field, or, as the type error of
// that field says the same, goes.
func typesInWords(errs field.ErrorList, obj map[string]any) field.ErrorList {
	named := map[string]bool{}
	for _, e := range errs {
		m := typeDetail.FindStringSubmatch(e.Detail)
		if e.Type != field.ErrorTypeTypeInvalid || m == nil || typeWords[m[1]] == "" {
			continue
		}
		if v, ok := valueAt(obj, e.Field); ok {
			e.BadValue, e.Detail = v, "must be "+typeWords[m[1]]
			named[e.Field] = true
		}
	}
	out := errs[:0]
	for _, e := range errs {
		if m := formatDetail.FindStringSubmatch(e.Detail); noField(e.Field) && m != nil && typeWords[m[1]] != "" {
			v, ok := valueAt(obj, m[2])
			if named[m[2]] || !ok {
				continue
			}
			e.Field, e.BadValue, e.Detail = m[2], v, "must be "+typeWords[m[1]]
		}
		out = append(out, e)
	}
	return out
}

// valueAt is the value at a field error's path in obj ("spec.app.env[0].name").
func valueAt(obj map[string]any, path string) (any, bool) {
	var v any = obj
	for part := range strings.SplitSeq(path, ".") {
		name, index, _ := strings.Cut(part, "[")
		m, _ := v.(map[string]any) // nil when v is no mapping: no name in it
		next, ok := m[name]
		if !ok {
			return nil, false
		}
		v = next
		for index != "" {
			var i string
			i, index, _ = strings.Cut(index, "]")
			index = strings.TrimPrefix(index, "[")
			n, err := strconv.Atoi(i)
			l, ok := v.([]any)
			if err != nil || !ok || n < 0 || n >= len(l) {
				return nil, false
			}
			v = l[n]
		}
	}
	return v, true
}

// errCELSkipped says that the CEL rules were not run, in the server's words
// (hasBlockingErr). The server makes it a field error on no field, which
// prints as "<nil>: Invalid value: null: ..."; here it is a plain line.
var errCELSkipped = errors.New("some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")

// sortByField orders errs by field path, errors on no field last, so that
// the output does not depend on map iteration in the validators.
func sortByField(errs field.ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Field, errs[j].Field
		if noField(a) != noField(b) {
			return noField(b)
		}
		return a < b
	})
}

// noField reports whether a field.Error's Field names no field: a nil
// *field.Path prints as "<nil>".
func noField(f string) bool { return f == "" || f == "<nil>" }

// blocking reports whether errs hold an error after which the server does
// not run CEL rules.
func blocking(errs field.ErrorList) bool {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong,
			field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}

// resolveRoot makes a relative spec.app.root absolute against baseDir; the
// schema then checks the result.
func resolveRoot(obj map[string]any, baseDir string) {
	if baseDir == "" {
		return
	}
	root, ok, _ := unstructured.NestedFieldNoCopy(obj, "spec", "app", "root")
	if r, isString := root.(string); ok && isString && r != "" && !filepath.IsAbs(r) {
		_ = unstructured.SetNestedField(obj, filepath.Join(baseDir, r), "spec", "app", "root")
	}
}

// checkUnique rejects a second AppGroup with the name or the port of an
// earlier one: the standalone agent serves them all on one host.
func checkUnique(docs []*document) {
	names := map[string]*document{}
	ports := map[int64]*document{}
	for _, d := range docs {
		if !d.kindOK {
			continue
		}
		if d.name != "" {
			if first, ok := names[d.name]; ok {
				d.errs = append(d.errs, &field.Error{
					Type: field.ErrorTypeDuplicate, Field: "metadata.name", BadValue: d.name,
					Detail: fmt.Sprintf("%s has the same name", first.position()),
				})
				d.nameTaken = true
			} else {
				names[d.name] = d
			}
		}
		if d.port != 0 {
			if first, ok := ports[d.port]; ok {
				d.errs = append(d.errs, &field.Error{
					Type: field.ErrorTypeDuplicate, Field: "spec.listen.port", BadValue: d.port,
					Detail: fmt.Sprintf("%s listens on it too; AppGroups served by one agent need different ports", first.label()),
				})
			} else {
				ports[d.port] = d
			}
		}
	}
}

func toErrors(errs field.ErrorList) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// chunk is one YAML document of the input.
type chunk struct {
	data        []byte
	firstLine   int // the input line of data's first line
	contentLine int // the input line of the first line that is not blank or a comment
}

// split cuts data into YAML documents at `---` lines, as
// k8s.io/apimachinery/pkg/util/yaml's YAMLReader does, keeping line numbers.
// Documents holding only blanks and comments are dropped.
func split(data []byte) []chunk {
	var chunks []chunk
	cur := chunk{firstLine: 1}
	flush := func() {
		if cur.contentLine != 0 {
			chunks = append(chunks, cur)
		}
	}
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		n := i + 1
		if isSeparator(line) {
			flush()
			cur = chunk{firstLine: n + 1}
			continue
		}
		cur.data = append(cur.data, line...)
		if t := bytes.TrimSpace(line); cur.contentLine == 0 && len(t) > 0 && t[0] != '#' {
			cur.contentLine = n
		}
	}
	flush()
	return chunks
}

func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// yamlLine matches the line numbers in go-yaml's errors: "yaml: line 3: ..."
// and, after "yaml: unmarshal errors:", one "  line 3: ..." per error.
var yamlLine = regexp.MustCompile(`(?m)(yaml: |^\s+)line (\d+):`)

// decode converts one document to the JSON data model, with integers as
// int64 like the server's decoder. A syntax error or a duplicate key is
// reported with the line in the input, not in the document.
func decode(c chunk) (map[string]any, error) {
	j, err := yaml.YAMLToJSONStrict(c.data)
	if err != nil {
		msg := yamlLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
			sub := yamlLine.FindStringSubmatch(m)
			n, _ := strconv.Atoi(sub[2])
			return sub[1] + "line " + strconv.Itoa(n+c.firstLine-1) + ":"
		})
		return nil, errors.New(msg)
	}
	var v any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &v); err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not an object: an AppGroup is a mapping with apiVersion, kind, metadata and spec")
	}
	return obj, nil
}
