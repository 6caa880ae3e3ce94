package packaging_test

import (
	"regexp"
	"strconv"
	"testing"
)

// TestChartDurationRegexIsTheSchemas: under --skip-schema-validation
// validate.yaml says of a refused duration value whether the schema,
// skipped, refuses it too, judging by a regex of its own, which must be
// the schema's duration pattern: one changed alone would have the chart
// say "the schema, skipped here, refuses it" of a value the schema takes,
// or leave it unsaid of one it refuses.
func TestChartDurationRegexIsTheSchemas(t *testing.T) {
	want := schemaPattern(t, "duration")
	// The $skipped check's regexMatch, its pattern a quoted template string.
	found := regexp.MustCompile(`if not \(and \(kindIs "string" \$v\) \(regexMatch ("(?:[^"\\]|\\.)*") \$v\)\) \}\}\n`+
		`\{\{- \$skipped = "; the schema, skipped here, refuses it" \}\}`).
		FindAllSubmatch(validateTemplate(t), -1)
	if len(found) != 1 {
		t.Fatalf("validate.yaml: %d duration regexes before \"the schema, skipped here, refuses it\", want 1", len(found))
	}
	got, err := strconv.Unquote(string(found[0][1]))
	if err != nil {
		t.Fatalf("validate.yaml: %s: %v", found[0][1], err)
	}
	if got != want {
		t.Errorf("validate.yaml's duration regex\n %s\nis not the schema's duration pattern\n %s", got, want)
	}
}
