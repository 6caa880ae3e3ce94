package packaging_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestChartRegexesAreTheSchemas: under --skip-schema-validation
// validate.yaml judges some values by regexes of its own, hand copies of
// values.schema.json's patterns, which must stay equal to them: one
// changed alone would have the chart accept what the schema refuses, or
// refuse what it accepts, or say "the schema, skipped here, refuses it"
// of a value the schema takes, only when the schema is skipped.
func TestChartRegexesAreTheSchemas(t *testing.T) {
	tmpl := validateTemplate(t)
	for _, tt := range []struct {
		definition string         // the schema's definition
		copies     *regexp.Regexp // validate.yaml's copies, the pattern a quoted template string
		count      int            // how many there are
		what       string         // what they judge
	}{
		{"bindAddress", regexp.MustCompile(`\$hostPort := and \(kindIs "string" \$v\) \(regexMatch ("(?:[^"\\]|\\.)*") \$v\)`),
			2, "the health and the metrics addresses' $hostPort"},
		{"duration", regexp.MustCompile(`if not \(and \(kindIs "string" \$v\) \(regexMatch ("(?:[^"\\]|\\.)*") \$v\)\) \}\}\n` +
			`\{\{- \$skipped = "; the schema, skipped here, refuses it" \}\}`),
			1, "the durations' \"the schema, skipped here, refuses it\""},
	} {
		want := schemaPattern(t, tt.definition)
		found := tt.copies.FindAllSubmatch(tmpl, -1)
		if len(found) != tt.count {
			t.Errorf("validate.yaml: %d regexes for %s, want %d", len(found), tt.what, tt.count)
		}
		for _, m := range found {
			got, err := strconv.Unquote(string(m[1]))
			if err != nil {
				t.Fatalf("validate.yaml: %s: %v", m[1], err)
			}
			if got != want {
				t.Errorf("validate.yaml's regex for %s\n %s\nis not the schema's %s pattern\n %s", tt.what, got, tt.definition, want)
			}
		}
	}
}

// schemaPattern is the pattern of values.schema.json's definition name.
func schemaPattern(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Definitions map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	pattern := schema.Definitions[name].Pattern
	if pattern == "" {
		t.Fatalf("values.schema.json: definitions.%s has no pattern", name)
	}
	return pattern
}

// validateTemplate is templates/validate.yaml's text.
func validateTemplate(t *testing.T) []byte {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(chartDir, "templates", "validate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}
