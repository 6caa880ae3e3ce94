package contract

import "testing"

// TestNodeListOf: a list names at most MaxListedNodes nodes, and "N more"
// counts every node left out, those past the list given too (a
// status.crashLoop cut at 64 names, nodeCount counting all).
func TestNodeListOf(t *testing.T) {
	seven := []string{"a", "b", "c", "d", "e", "f", "g"}
	tests := []struct {
		name  string
		nodes []string
		total int
		want  string
	}{
		{name: "none", want: ""},
		{name: "one", nodes: []string{"a"}, total: 1, want: "a"},
		{name: "three", nodes: seven[:3], total: 3, want: "a, b and c"},
		{name: "as many as listed", nodes: seven[:5], total: 5, want: "a, b, c, d and e"},
		{name: "more than listed", nodes: seven, total: 7, want: "a, b, c, d, e and 2 more"},
		{name: "a list cut short", nodes: seven[:2], total: 4, want: "a, b and 2 more"},
		{name: "one of many", nodes: seven[:1], total: 70, want: "a and 69 more"},
		{name: "a cut list, more than listed", nodes: seven, total: 70, want: "a, b, c, d, e and 65 more"},
		{name: "a total short of the list", nodes: seven[:3], total: 1, want: "a, b and c"},
	}
	for _, tt := range tests {
		if got := NodeListOf(tt.nodes, tt.total); got != tt.want {
			t.Errorf("%s: NodeListOf = %q, want %q", tt.name, got, tt.want)
		}
		if tt.total == len(tt.nodes) {
			if got := NodeList(tt.nodes); got != tt.want {
				t.Errorf("%s: NodeList = %q, want %q", tt.name, got, tt.want)
			}
		}
	}
}
