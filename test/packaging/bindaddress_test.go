package packaging_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestChartBindAddressRegexIsTheSchemas: under --skip-schema-validation
// validate.yaml judges the health and metrics addresses by a host:port
// regex of its own, which must be the schema's bindAddress pattern: one
// changed alone would have the chart accept what the schema refuses, or
// refuse what it accepts, only when the schema is skipped.
func TestChartBindAddressRegexIsTheSchemas(t *testing.T) {
	want := schemaPattern(t, "bindAddress")
	tmpl := validateTemplate(t)
	// Each $hostPort's regexMatch, its pattern a quoted template string.
	found := regexp.MustCompile(`\$hostPort := and \(kindIs "string" \$v\) \(regexMatch ("(?:[^"\\]|\\.)*") \$v\)`).
		FindAllSubmatch(tmpl, -1)
	if len(found) != 2 {
		t.Fatalf("validate.yaml: %d $hostPort regexes, want 2 (the health and the metrics addresses)", len(found))
	}
	for _, m := range found {
		got, err := strconv.Unquote(string(m[1]))
		if err != nil {
			t.Fatalf("validate.yaml: %s: %v", m[1], err)
		}
		if got != want {
			t.Errorf("validate.yaml's host:port regex\n %s\nis not the schema's bindAddress pattern\n %s", got, want)
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
