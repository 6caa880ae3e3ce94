package contract

import (
	"fmt"
	"strings"
)

// MaxListedNodes is how many node names a message lists before "and N
// more": the manager's conditions and events and kubectl ferry's errors
// list nodes alike, so that one reads as the other.
const MaxListedNodes = 5

// NodeList is "a, b and c", listing at most MaxListedNodes names.
func NodeList(nodes []string) string { return NodeListOf(nodes, len(nodes)) }

// NodeListOf is NodeList of total nodes of which nodes are the first
// (a list cut short, as status.crashLoop's at 64 names with nodeCount
// counting all): "a, b and N more", N counting those left out of nodes
// too, so that the reader knows how many there are.
func NodeListOf(nodes []string, total int) string {
	listed := min(len(nodes), MaxListedNodes)
	total = max(total, len(nodes))
	switch {
	case listed == 0:
		return ""
	case total > listed:
		return strings.Join(nodes[:listed], ", ") + fmt.Sprintf(" and %d more", total-listed)
	case listed == 1:
		return nodes[0]
	}
	return strings.Join(nodes[:listed-1], ", ") + " and " + nodes[listed-1]
}
