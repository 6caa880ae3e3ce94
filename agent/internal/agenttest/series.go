package agenttest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolSeries counts g's series labelled pool=name, by family.
func PoolSeries(t *testing.T, g prometheus.Gatherer, name string) map[string]int {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "pool" && l.GetValue() == name {
					out[f.GetName()]++
				}
			}
		}
	}
	return out
}
