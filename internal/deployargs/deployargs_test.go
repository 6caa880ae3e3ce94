package deployargs

import (
	"slices"
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
