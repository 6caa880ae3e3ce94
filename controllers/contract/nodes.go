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
func NodeList(nodes []string) string {
	switch {
	case len(nodes) == 0:
		return ""
	case len(nodes) > MaxListedNodes:
		return strings.Join(nodes[:MaxListedNodes], ", ") + fmt.Sprintf(" and %d more", len(nodes)-MaxListedNodes)
	case len(nodes) == 1:
		return nodes[0]
	}
	return strings.Join(nodes[:len(nodes)-1], ", ") + " and " + nodes[len(nodes)-1]
}
