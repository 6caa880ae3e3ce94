package benchdoc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/bench/harness"
)

// TestControlPlaneSection renders the page from a control-plane result
// alone: its section and its target row carry the figures and the verdict.
func TestControlPlaneSection(t *testing.T) {
	for _, tt := range []struct {
		name        string
		appgroups   int
		ready       time.Duration
		rss         int64
		wantVerdict string
	}{
		{"met", 1000, 21 * time.Second, 90 << 20, "| met |"},
		{"too slow", 1000, 75 * time.Second, 90 << 20, "| **missed** |"},
		{"too big", 1000, 21 * time.Second, 200 << 20, "| **missed** |"},
		{"too few (a smoke run)", 100, 5 * time.Second, 60 << 20, "| **missed** |"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page := renderControlPlane(t, &harness.ControlPlaneResult{
				AppGroups: tt.appgroups, Nodes: 3, SimulateStep: 20 * time.Millisecond,
				ManagerCmd: "bin/ferry-manager --x", AgentCmd: "bin/ferry-agent --y",
				Create: harness.Phase{Submit: 4 * time.Second, Converge: tt.ready, ManagerCPU: 9 * time.Second,
					ManagerRequests: map[string]int64{"POST": 3000, "PUT": 1000}, APIRequests: 12000},
				Rollout: harness.Phase{Submit: 2 * time.Second, Converge: 30 * time.Second,
					ManagerRequests: map[string]int64{"PUT": 6000}},
				ManagerPeakRSS: tt.rss,
			})
			for _, want := range []string{
				"## 4. Control-plane scale",
				"--simulate-workers=20ms",
				"| 4000 (POST 3000, PUT 1000) | 12000 |",
				"bin/ferry-manager --x",
				fmt.Sprintf("Ready after %.1f s", tt.ready.Seconds()),
			} {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			row := line(page, "AppGroups Ready in under 60 s")
			if !strings.Contains(row, tt.wantVerdict) {
				t.Errorf("target row %q, want verdict %q", row, tt.wantVerdict)
			}
		})
	}
}

// TestControlPlaneFailedRun: a failed run shows its error and no verdict.
func TestControlPlaneFailedRun(t *testing.T) {
	page := renderControlPlane(t, &harness.ControlPlaneResult{AppGroups: 1000, Nodes: 3,
		Error: "only 18 of 1000 AppGroups converged within 10 minutes"})
	if !strings.Contains(page, "**The run failed:** only 18 of 1000") {
		t.Error("the page does not say the run failed")
	}
	if row := line(page, "AppGroups Ready in under 60 s"); !strings.Contains(row, "not measured") {
		t.Errorf("target row %q, want not measured", row)
	}
}

func renderControlPlane(t *testing.T, cp *harness.ControlPlaneResult) string {
	t.Helper()
	dir := t.TempDir()
	sr := harness.ScenarioResult{Scenario: "controlplane", ControlPlane: cp}
	data, err := json.Marshal(sr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "results", "controlplane"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results", "controlplane", harness.ScenarioFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "benchmarks.md")
	if err := Write(filepath.Join(dir, "results"), out, filepath.Join(dir, "plots")); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(page)
}

func line(page, substr string) string {
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}
