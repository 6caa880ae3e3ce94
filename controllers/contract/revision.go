package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// DefaultRevision is the revision an AppGroup has when it carries no
// ferry.dev/revision annotation.
const DefaultRevision = "0"

// MaxRevisionAnnotationLength bounds the ferry.dev/revision annotation.
const MaxRevisionAnnotationLength = 63

var revisionPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidateRevision reports what is wrong with a ferry.dev/revision
// annotation value, or nil when it is fine: it must be 1 to 63 characters
// out of letters, digits, '.', '_' and '-'. Its length is counted in
// characters (code points), as CEL's size() counts them; a value of the
// allowed characters has as many bytes.
//
// The admission policy config/admission/revision_policy.yaml (the chart's
// <fullname>-revision is a copy) repeats this rule and these words in CEL,
// to refuse such a value at apply: change both together.
// test/packaging's TestRevisionPolicy runs the same values through the
// policy on a real API server and through this function, and fails where
// they accept differently or word a refusal differently.
func ValidateRevision(value string) error {
	switch n := utf8.RuneCountInString(value); {
	case value == "":
		return fmt.Errorf("annotation %s is empty; set it to a counter or a commit id, or remove it", ferryv1.RevisionAnnotation)
	case n > MaxRevisionAnnotationLength:
		return fmt.Errorf("annotation %s is %d characters long; at most %d are allowed",
			ferryv1.RevisionAnnotation, n, MaxRevisionAnnotationLength)
	case !revisionPattern.MatchString(value):
		if !quotedAlike(value) {
			return fmt.Errorf("annotation %s value has a character that is not printable, so it is not shown; "+
				"it may only contain letters, digits, '.', '_' and '-'", ferryv1.RevisionAnnotation)
		}
		return fmt.Errorf("annotation %s value %q may only contain letters, digits, '.', '_' and '-'",
			ferryv1.RevisionAnnotation, value)
	}
	return nil
}

// quotedAlike: %q quotes value as the policy's CEL strings.quote does, so
// both may show it. Both escape '\\', '"' and \a \b \t \n \v \f \r, and
// leave a printable character (strconv.IsPrint: a letter, mark, number,
// punctuation, symbol or ' ') as it is; any other character %q escapes
// and strings.quote does not (a terminal would act on an escape sequence
// shown raw), so neither shows such a value. The policy's message
// expression has the same test as a regular expression.
func quotedAlike(value string) bool {
	for _, r := range value {
		if !strconv.IsPrint(r) && (r < '\a' || r > '\r') {
			return false
		}
	}
	return true
}

// TargetRevision is the revision every pool of ag should run:
// "<annotation>-<hash>", where annotation is the ferry.dev/revision
// annotation ("0" when absent) and hash is AppHash(ag.Spec.App). It fails,
// with ValidateRevision's error, when the annotation is invalid.
//
// Only spec.app goes into the hash: it is all that changes how a process is
// spawned. The listen, pool and restart settings reach every pool at once
// and never restart a process.
func TargetRevision(ag *ferryv1.AppGroup) (string, error) {
	value, ok := ag.Annotations[ferryv1.RevisionAnnotation]
	if !ok {
		value = DefaultRevision
	}
	if err := ValidateRevision(value); err != nil {
		return "", err
	}
	hash, err := AppHash(&ag.Spec.App)
	if err != nil {
		return "", err
	}
	return value + "-" + hash, nil
}

// AppHash is the first 10 hex characters of the SHA-256 of app's canonical
// JSON: its JSON encoding with object keys sorted, so the hash depends on
// the values alone, not on the order of the Go struct's fields.
func AppHash(app *ferryv1.AppSpec) (string, error) {
	raw, err := json.Marshal(app)
	if err != nil {
		return "", err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return "", err
	}
	// encoding/json writes map keys sorted.
	canonical, err := json.Marshal(generic)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])[:hashLen], nil
}
