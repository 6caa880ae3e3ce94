package deployargs

import (
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"NODE_NAME": "node-1", "HOST_IP": "127.0.0.2"}
	got := Expand([]string{"--node-name=$(NODE_NAME)", "--bind=$(HOST_IP):9441", "$(UNSET)", "$$(HOST_IP)", "plain"}, env)
	want := []string{"--node-name=node-1", "--bind=127.0.0.2:9441", "$(UNSET)", "$(HOST_IP)", "plain"}
	if !slices.Equal(got, want) {
		t.Fatalf("Expand = %q, want %q", got, want)
	}
}

func TestLocalAgentBindsItsNodeAddress(t *testing.T) {
	args := Expand(AgentArgs(LocalAgent("/tmp/s")), LocalAgentEnv("node-2", "127.0.0.3"))
	for _, want := range []string{"--node-name=node-2", "--bind-address=127.0.0.3", "--advertise-address=127.0.0.3",
		"--metrics-bind-address=127.0.0.3:9441", "--state-dir=/tmp/s"} {
		if !slices.Contains(args, want) {
			t.Errorf("local agent args lack %s: %q", want, args)
		}
	}
}

// TestMetricsArgsFollowTheEndpoint: --metrics-secure only for metrics that
// are on, --metrics-cert-path only for secure ones, as the chart renders
// them (and as the binaries take them: a certificate for plain HTTP is
// refused).
func TestMetricsArgsFollowTheEndpoint(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		secure bool
		want   []string
	}{
		{":8080", true, []string{"--metrics-secure=true", "--metrics-cert-path=" + MetricsCertMountPath}},
		{":8080", false, []string{"--metrics-secure=false"}},
		{"0", true, nil},
		{"", true, nil},
	} {
		m := DefaultManager()
		m.MetricsBindAddress, m.MetricsSecure, m.MetricsCertPath = tt.addr, tt.secure, MetricsCertMountPath
		a := DefaultAgent()
		a.MetricsBindAddress, a.MetricsSecure, a.MetricsCertPath = tt.addr, tt.secure, MetricsCertMountPath
		for what, args := range map[string][]string{"manager": ManagerArgs(m), "agent": AgentArgs(a)} {
			var got []string
			for _, arg := range args {
				if strings.HasPrefix(arg, "--metrics-secure") || strings.HasPrefix(arg, "--metrics-cert-path") {
					got = append(got, arg)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s metrics at %q, secure %t: %q, want %q", what, tt.addr, tt.secure, got, tt.want)
			}
		}
	}
}
