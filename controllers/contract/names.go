package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// DrainFinalizer is on every ProcessPool the manager creates, and on every
// AppGroup while it has pools. On a pool, the node's agent removes it once
// the pool's processes have drained and exited after the pool was deleted;
// the manager removes it itself only when the pool's Node is gone (no agent
// is left to drain). On an AppGroup, the manager removes it once every pool
// of the AppGroup is gone.
const DrainFinalizer = "ferry.dev/drain"

// ReturnedFromAnnotation marks a pool the manager returned from the target
// revision it could not spawn to an older one; its value is that target.
// It is the pool's own evidence of the halt, should the AppGroup's status
// lose it, and is removed when the pool gets a target again.
const ReturnedFromAnnotation = "ferry.dev/returned-from"

// ProvenAnnotation marks a pool whose revision the manager holds proven
// (the AppGroup's status.provenRevision: it ran, rolled out, past the
// crash window on a node); its value is that revision. The manager keeps
// a node whose processes of a proven revision die young on it, and
// returns one from a revision not proven (returnsFromTarget): the agent
// holds the spawns of a revision whose processes die young while it
// awaits that return, and only then.
const ProvenAnnotation = "ferry.dev/proven"

// hashLen is how many hex characters of a SHA-256 suffix a shortened name.
const hashLen = 10

// shortHash is the first hashLen hex characters of the SHA-256 of the parts
// joined by "/", a byte no object name contains.
func shortHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "/")))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// PoolName is the name of the ProcessPool of AppGroup appGroup on node
// node: "<appGroup>-<node>" when that is at most 253 characters (both are
// DNS subdomains, so their join with "-" is one too), else the join cut to
// fit, followed by "-" and a hash of both names.
//
// Distinct pairs can join to the same string ("a-b"+"c" and "a"+"b-c"); the
// manager then falls back to HashedPoolName for the second pool to arrive.
func PoolName(appGroup, node string) string {
	name := appGroup + "-" + node
	if len(name) <= validation.DNS1123SubdomainMaxLength {
		return name
	}
	return HashedPoolName(appGroup, node)
}

// HashedPoolName is a pool name that no other (appGroup, node) pair has:
// "<appGroup>-<node>" cut to fit and suffixed with "-" and a hash of both.
func HashedPoolName(appGroup, node string) string {
	return truncateWithHash(appGroup+"-"+node, validation.DNS1123SubdomainMaxLength, shortHash(appGroup, node))
}

// LabelValue is name when it is a valid label value (at most 63
// characters), else name cut to fit and suffixed with "-" and a hash of
// name. Object names are DNS subdomains, so only their length can make them
// invalid label values.
func LabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	return truncateWithHash(name, validation.LabelValueMaxLength, shortHash(name))
}

// PoolLabels are the labels on the pool of appGroup on node.
func PoolLabels(appGroup, node string) map[string]string {
	return map[string]string{
		ferryv1.AppGroupLabel: LabelValue(appGroup),
		ferryv1.NodeLabel:     LabelValue(node),
	}
}

// NodeSelector selects every pool on node, of any AppGroup, by the label
// the manager keeps on them (the node's agent selects by spec.nodeName, so
// that a pool whose label was removed or changed is still its own).
func NodeSelector(node string) labels.Selector {
	return labels.SelectorFromSet(NodeSelectorSet(node))
}

// NodeSelectorSet is NodeSelector's label set.
func NodeSelectorSet(node string) labels.Set {
	return labels.Set{ferryv1.NodeLabel: LabelValue(node)}
}

// truncateWithHash cuts s so that s + "-" + hash fits in max characters,
// dropping any trailing characters that may not end a name or label value
// (dots and dashes), and appends "-" + hash.
func truncateWithHash(s string, max int, hash string) string {
	keep := max - 1 - len(hash)
	if len(s) > keep {
		s = s[:keep]
	}
	s = strings.TrimRight(s, "-._")
	if s == "" {
		return hash
	}
	return s + "-" + hash
}

// ServiceName is the name of the Service (and EndpointSlice) of an
// AppGroup: the AppGroup's own name when it is a valid Service name (a
// DNS-1035 label: at most 63 characters, lowercase letters, digits and '-',
// starting with a letter), else the name with dots turned into dashes,
// prefixed with "ag-" when it does not start with a letter, cut to fit and
// suffixed with "-" and a hash of the AppGroup's name.
func ServiceName(appGroup string) string {
	if len(validation.IsDNS1035Label(appGroup)) == 0 {
		return appGroup
	}
	s := strings.ReplaceAll(appGroup, ".", "-")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "ag-" + s
	}
	return truncateWithHash(s, validation.DNS1035LabelMaxLength, shortHash(appGroup))
}
