package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/agent/cluster"
)

// agentState is a readiness as the agent reports it.
type agentState struct{ ready, crdOutdated bool }

func (s agentState) Ready() bool       { return s.ready }
func (s agentState) CRDOutdated() bool { return s.crdOutdated }

// TestReadyz: /readyz answers ok when the agent is Ready, else 503 with
// why: against a ProcessPool CRD without the selectable field
// spec.nodeName, that and the fix in the words the agent logs
// (cluster.CRDOutdatedReason); else that it knows nothing to run yet.
// /healthz answers ok whatever.
func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state agentState
		code  int
		body  []string // each in the body
		not   []string // none in it
	}{
		{"ready", agentState{ready: true}, http.StatusOK, []string{"ok"}, []string{"CRD"}},
		{"not synced, nothing saved", agentState{}, http.StatusServiceUnavailable,
			[]string{"not synced with the API server and nothing saved to resume"}, []string{"CRD"}},
		{"the CRD outdated", agentState{crdOutdated: true}, http.StatusServiceUnavailable,
			[]string{cluster.CRDOutdatedReason}, // the agent's own words, as it logs them
			[]string{"nothing saved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := probes(tc.state)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.code {
				t.Errorf("/readyz answered %d, want %d", rec.Code, tc.code)
			}
			body := rec.Body.String()
			for _, s := range tc.body {
				if !strings.Contains(body, s) {
					t.Errorf("/readyz said %q, want %q in it", body, s)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(body, s) {
					t.Errorf("/readyz said %q, want no %q in it", body, s)
				}
			}
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("/healthz answered %d, want 200", rec.Code)
			}
		})
	}
}
