package controllers

import (
	"maps"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestPortLosses(t *testing.T) {
	older, newer := t0, t0.Add(time.Minute)
	set := func(nodes ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range nodes {
			m[n] = true
		}
		return m
	}
	claim := func(name string, created time.Time, selects, holds map[string]bool) portClaim {
		return portClaim{Key: types.NamespacedName{Namespace: "ns", Name: name}, Created: created, Selects: selects, Holds: holds}
	}
	first := types.NamespacedName{Namespace: "ns", Name: "first"}
	tests := []struct {
		name   string
		self   portClaim
		others []portClaim
		want   map[string]types.NamespacedName
	}{
		{"no rival", claim("self", newer, set("a", "b"), nil), nil, map[string]types.NamespacedName{}},
		{
			"the older AppGroup wins where neither has a pool",
			claim("self", newer, set("a", "b"), nil),
			[]portClaim{claim("first", older, set("b", "c"), nil)},
			map[string]types.NamespacedName{"b": first},
		},
		{
			"the newer keeps the nodes where it holds the port",
			claim("self", newer, set("a", "b"), set("a", "b")),
			[]portClaim{claim("first", older, set("a", "b"), set("b"))},
			map[string]types.NamespacedName{"b": first},
		},
		{
			"a pool that holds the port beats an older AppGroup",
			claim("self", older, set("a"), nil),
			[]portClaim{claim("first", newer, set("a"), set("a"))},
			map[string]types.NamespacedName{"a": first},
		},
		{
			"a rival's draining pool keeps the node until it is gone",
			claim("self", older, set("a"), nil),
			[]portClaim{claim("first", newer, set(), set("a"))},
			map[string]types.NamespacedName{"a": first},
		},
		{
			"same age: by name",
			claim("self", older, set("a"), nil),
			[]portClaim{claim("first", older, set("a"), nil)},
			map[string]types.NamespacedName{"a": first},
		},
		{
			"the older AppGroup loses nothing",
			claim("first", older, set("a"), nil),
			[]portClaim{claim("self", newer, set("a"), nil)},
			map[string]types.NamespacedName{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := portLosses(tt.self, tt.others); !maps.Equal(got, tt.want) {
				t.Errorf("portLosses = %v, want %v", got, tt.want)
			}
		})
	}
}
