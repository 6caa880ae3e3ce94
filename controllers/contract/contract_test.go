package contract

import (
	"net"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestPoolName(t *testing.T) {
	long := func(prefix string, n int) string {
		s := prefix + strings.Repeat("x", n)
		return s[:n]
	}
	dotted := strings.Repeat("abcdefghi.", 25) + "node" // 254 chars, dots everywhere
	tests := []struct {
		name, appGroup, node string
		want                 string // "" = only check validity
	}{
		{name: "short names are joined", appGroup: "blog", node: "node-a", want: "blog-node-a"},
		{name: "dotted node", appGroup: "blog", node: "ip-10-0-0-1.ec2.internal", want: "blog-ip-10-0-0-1.ec2.internal"},
		{name: "exactly 253", appGroup: long("a", 126), node: long("n", 126), want: long("a", 126) + "-" + long("n", 126)},
		{name: "long appgroup", appGroup: long("a", 253), node: "node-a"},
		{name: "long node", appGroup: "blog", node: long("n", 253)},
		{name: "both long", appGroup: long("a", 253), node: long("n", 253)},
		{name: "cut lands on a dot", appGroup: "blog", node: dotted[:253]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PoolName(tt.appGroup, tt.node)
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Fatalf("PoolName(%q, %q) = %q, not a DNS subdomain: %v", tt.appGroup, tt.node, got, errs)
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("PoolName = %q, want %q", got, tt.want)
			}
			if got != PoolName(tt.appGroup, tt.node) {
				t.Fatal("PoolName is not deterministic")
			}
		})
	}

	// Long names that share a prefix still get distinct pools.
	a, b := PoolName(long("a", 253), "node-a"), PoolName(long("a", 253), "node-b")
	if a == b {
		t.Fatalf("two nodes share pool name %q", a)
	}
	// The fallback for joins that collide differs between the two pairs.
	if PoolName("a-b", "c") != PoolName("a", "b-c") {
		t.Fatal("expected the plain names to collide")
	}
	if HashedPoolName("a-b", "c") == HashedPoolName("a", "b-c") {
		t.Fatal("hashed names collide")
	}
	for _, n := range []string{HashedPoolName("a-b", "c"), HashedPoolName(long("a", 253), long("n", 253))} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("HashedPoolName %q invalid: %v", n, errs)
		}
	}
}

func TestLabelValue(t *testing.T) {
	for _, name := range []string{
		"blog",
		strings.Repeat("a", 63),
		strings.Repeat("a", 64),
		strings.Repeat("a", 253),
		strings.Repeat("a", 52) + ".-b" + strings.Repeat("c", 20), // cut lands on ".-"
		strings.Repeat("abc.", 60),
	} {
		got := LabelValue(name)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q, invalid: %v", name, got, errs)
		}
		if len(name) <= 63 && got != name {
			t.Errorf("LabelValue(%q) = %q, want it unchanged", name, got)
		}
	}
	if LabelValue(strings.Repeat("a", 64)) == LabelValue(strings.Repeat("a", 65)) {
		t.Error("distinct long names share a label value")
	}
	sel := NodeSelector(strings.Repeat("n", 100))
	if !sel.Matches(labels.Set(PoolLabels("blog", strings.Repeat("n", 100)))) {
		t.Error("NodeSelector does not match the node's pool labels")
	}
}

func TestValidateRevision(t *testing.T) {
	tests := []struct {
		value   string
		wantErr string
	}{
		{"1", ""},
		{"v1.2.3_rc-1", ""},
		{strings.Repeat("a", 63), ""},
		{"0123456789abcdef0123456789abcdef01234567", ""}, // a commit id
		{"", "is empty"},
		{strings.Repeat("a", 64), "64 characters long; at most 63"},
		{"bad value", "may only contain"},
		{"a/b", "may only contain"},
		{"é", `value "é" may only contain`},
		{"two\nlines", `value "two\nlines" may only contain`},
		// Counted in characters: not too long, only not allowed.
		{strings.Repeat("é", 40), "may only contain"},
		{strings.Repeat("é", 64), "64 characters long; at most 63"},
		// Not shown: %q and the policy's strings.quote would differ.
		{"esc\x1b[0m", "value has a character that is not printable, so it is not shown; it may only contain"},
		{"nb\u00a0sp", "not printable"},
		{"zero\u200bwidth", "not printable"},
		{"del\x7f", "not printable"},
	}
	for _, tt := range tests {
		err := ValidateRevision(tt.value)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateRevision(%q) = %v, want nil", tt.value, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidateRevision(%q) = %v, want an error containing %q", tt.value, err, tt.wantErr)
		}
	}
}

func TestTargetRevision(t *testing.T) {
	base := func() *ferryv1.AppGroup {
		return &ferryv1.AppGroup{
			ObjectMeta: metav1.ObjectMeta{Name: "blog", Annotations: map[string]string{ferryv1.RevisionAnnotation: "7"}},
			Spec: ferryv1.AppGroupSpec{AppTemplate: ferryv1.AppTemplate{
				App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/blog", StartupFile: "passenger_wsgi.py", Concurrency: 1},
				Listen: ferryv1.ListenSpec{Port: 8080},
				Pool:   ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 6},
			}},
		}
	}
	rev := func(ag *ferryv1.AppGroup) string {
		t.Helper()
		r, err := TargetRevision(ag)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	r0 := rev(base())
	prefix, hash, ok := strings.Cut(r0, "-")
	if !ok || prefix != "7" || len(hash) != 10 || strings.Trim(hash, "0123456789abcdef") != "" {
		t.Fatalf("TargetRevision = %q, want 7-<10 hex>", r0)
	}
	if rev(base()) != r0 {
		t.Fatal("TargetRevision is not deterministic")
	}

	noAnnotation := base()
	noAnnotation.Annotations = nil
	if got := rev(noAnnotation); got != "0-"+hash {
		t.Errorf("without the annotation: %q, want 0-%s", got, hash)
	}

	bumped := base()
	bumped.Annotations[ferryv1.RevisionAnnotation] = "8"
	if got := rev(bumped); got != "8-"+hash {
		t.Errorf("annotation bump: %q, want 8-%s", got, hash)
	}

	// Pool, listen, restart and node selection do not change the revision.
	other := base()
	other.Spec.Pool.MaxProcesses = 12
	other.Spec.Listen.Port = 9090
	other.Spec.Restart.MaxConcurrentNodes = 3
	other.Spec.NodeSelector = map[string]ferryv1.LabelValue{"web": "true"}
	if got := rev(other); got != r0 {
		t.Errorf("non-app change moved the revision: %q, want %q", got, r0)
	}

	// Every app field does.
	for name, mutate := range map[string]func(*ferryv1.AppSpec){
		"root":        func(a *ferryv1.AppSpec) { a.Root = "/srv/blog2" },
		"startupFile": func(a *ferryv1.AppSpec) { a.StartupFile = "wsgi.py" },
		"env":         func(a *ferryv1.AppSpec) { a.Env = []ferryv1.EnvVar{{Name: "A", Value: "1"}} },
		"user":        func(a *ferryv1.AppSpec) { a.User = "www-data" },
		"python":      func(a *ferryv1.AppSpec) { a.Python = "/venv/bin/python" },
	} {
		ag := base()
		mutate(&ag.Spec.App)
		if got := rev(ag); got == r0 || !strings.HasPrefix(got, "7-") {
			t.Errorf("changing app.%s: revision %q, want a new hash after 7-", name, got)
		}
	}

	invalid := base()
	invalid.Annotations[ferryv1.RevisionAnnotation] = ""
	if _, err := TargetRevision(invalid); err == nil {
		t.Error("empty annotation accepted")
	}
}

func TestServiceName(t *testing.T) {
	for _, tt := range []struct{ appGroup, want string }{
		{"blog", "blog"},
		{strings.Repeat("b", 63), strings.Repeat("b", 63)},
		{"blog.v2", ""},
		{"1blog", ""},
		{strings.Repeat("b", 64), ""},
		{strings.Repeat("b.", 100) + "b", ""},
	} {
		got := ServiceName(tt.appGroup)
		if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
			t.Errorf("ServiceName(%q) = %q, invalid: %v", tt.appGroup, got, errs)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("ServiceName(%q) = %q, want %q", tt.appGroup, got, tt.want)
		}
	}
	if ServiceName("blog.v2") == ServiceName("blog-v2") {
		t.Error("a dotted name collides with its dashed twin")
	}
}

func TestAgentLeaseName(t *testing.T) {
	if got := AgentLeaseName("node-1"); got != "ferry-agent-node-1" {
		t.Errorf("AgentLeaseName(node-1) = %q", got)
	}
	long := strings.Repeat("n", 250)
	got := AgentLeaseName(long)
	if len(got) > 253 || len(validation.IsDNS1123Subdomain(got)) != 0 || got == AgentLeaseName(long+"x") {
		t.Errorf("AgentLeaseName(250 chars) = %q (%d): want a valid, distinct name", got, len(got))
	}
}

func TestUnlistedAddress(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.9", ""},
		{"10.0.0.7", ""},
		{"", "not an IP address"},
		{"node-1.example.com", "not an IP address"},
		{"2001:db8::9", "an IPv6 address"},
		{"::", "an IPv6 address"},
		{"0.0.0.0", "the unspecified address"},
		{"127.0.0.2", "a loopback address"},
		{"169.254.1.1", "a link-local address"},
		{"224.0.0.1", "a link-local address"},
	} {
		if got := UnlistedAddress(net.ParseIP(tc.addr)); got != tc.want {
			t.Errorf("UnlistedAddress(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 5, ""},
		{"one\n", 5, "one"},
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 3, "a\nb\nc"},
		{"a\n\nc\n\n\n", 2, "\nc"},
	} {
		if got := LastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
