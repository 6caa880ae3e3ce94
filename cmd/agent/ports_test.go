package main

import (
	"maps"
	"testing"
)

// TestAgentPorts: the ports of the agent's own endpoints, as the flags
// give them; an endpoint turned off has none.
func TestAgentPorts(t *testing.T) {
	metrics := "metrics endpoint (--metrics-bind-address, agent.metricsBindAddress in the chart)"
	probes := "health probe endpoint (--health-probe-bind-address, agent.healthProbeBindAddress in the chart)"
	for _, tt := range []struct {
		metrics, probes string
		want            map[int32]string
	}{
		{":9441", ":9442", map[int32]string{9441: metrics, 9442: probes}},
		{"127.0.0.2:9441", "[::1]:9442", map[int32]string{9441: metrics, 9442: probes}},
		{"0", "", map[int32]string{}},
		{":0", "0", map[int32]string{}},
	} {
		if got := agentPorts(tt.metrics, tt.probes); !maps.Equal(got, tt.want) {
			t.Errorf("agentPorts(%q, %q) = %v, want %v", tt.metrics, tt.probes, got, tt.want)
		}
	}
}
