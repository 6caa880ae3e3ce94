package kubectlferry

import (
	"strings"
	"sync"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

func TestNextRevision(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	for _, tt := range []struct {
		current string
		present bool
		want    string
	}{
		{"", false, "1"},
		{"", true, "1"},
		{"0", true, "1"},
		{"7", true, "8"},
		{"9", true, "10"},
		{"009", true, "010"},
		{"18446744073709551615", true, "18446744073709551616"}, // past uint64
		{"v1.2", true, "v1.2_1"},
		{"v1.2_1", true, "v1.2_2"},
		{"v1.2_9", true, "v1.2_10"},
		{"3f2a9c1", true, "3f2a9c1_1"},
		{"release-9", true, "release-9_1"},
		{"a_b", true, "a_b_1"},
		{"_1", true, "_1_1"},
		{strings.Repeat("9", 63), true, "r1790000000"},                          // 64 digits would be too long
		{strings.Repeat("a", 62), true, "r1790000000"},                          // so would the suffix
		{strings.Repeat("a", 60) + "_9", true, strings.Repeat("a", 60) + "_10"}, // exactly 63
		{"bad value", true, "r1790000000"},
	} {
		got := NextRevision(tt.current, tt.present, now)
		if got != tt.want {
			t.Errorf("NextRevision(%q, %v) = %q, want %q", tt.current, tt.present, got, tt.want)
		}
		if err := contract.ValidateRevision(got); err != nil {
			t.Errorf("NextRevision(%q, %v) = %q: %v", tt.current, tt.present, got, err)
		}
		if got == tt.current {
			t.Errorf("NextRevision(%q, %v) did not change it", tt.current, tt.present)
		}
	}
}

func TestOnRevision(t *testing.T) {
	for _, tt := range []struct {
		status, annotation string
		want               bool
	}{
		{"8-" + hash, "8", true},
		{"8-x-" + hash, "8-x", true},
		{"8-x-" + hash, "8", false}, // from annotation "8-x"
		{"18-" + hash, "8", false},
		{"8.1-" + hash, "8", false},
		{"8-", "8", false},
		{"", "8", false},
		{"7-" + hash, "8", false},
	} {
		if got := onRevision(tt.status, tt.annotation); got != tt.want {
			t.Errorf("onRevision(%q, %q) = %v, want %v", tt.status, tt.annotation, got, tt.want)
		}
	}
}

// restarted runs restart on a fresh AppGroup with the annotation given
// ("" for none) and returns the output and the AppGroup before and after.
func restarted(t *testing.T, annotation string, args ...string) (result, *ferryv1.AppGroup, *ferryv1.AppGroup) {
	t.Helper()
	ns := newNamespace(t)
	before := newAppGroup(t, ns, "app", annotation)
	r := run(t, append([]string{"restart", "app", "-n", ns}, args...)...)
	return r, before, getAppGroup(t, ns, "app")
}

func TestRestartBumpsTheAnnotation(t *testing.T) {
	for _, tt := range []struct {
		name, annotation string
		args             []string
		want, wantOut    string
	}{
		{name: "counter", annotation: "7", want: "8", wantOut: "to revision 8 (was 7)"},
		{name: "missing", annotation: "", want: "1", wantOut: "to revision 1\n"},
		{name: "version", annotation: "v1.2", want: "v1.2_1", wantOut: "to revision v1.2_1 (was v1.2)"},
		{name: "explicit", annotation: "7", args: []string{"--revision", "3f2a9c1"}, want: "3f2a9c1",
			wantOut: "to revision 3f2a9c1 (was 7)"},
		{name: "explicit, the current value", annotation: "7", args: []string{"--revision", "7"}, want: "7",
			wantOut: "is already at revision 7: nothing new to roll"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, before, after := restarted(t, tt.annotation, tt.args...)
			if r.code != ExitOK || !strings.Contains(r.out, tt.wantOut) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			if got := after.Annotations[ferryv1.RevisionAnnotation]; got != tt.want {
				t.Errorf("annotation %q, want %q", got, tt.want)
			}
			if err := contract.ValidateRevision(after.Annotations[ferryv1.RevisionAnnotation]); err != nil {
				t.Error(err)
			}
			// An annotation-only change: generation stays, so the manager
			// must roll on the annotation; other annotations stay too.
			if after.Generation != before.Generation {
				t.Errorf("generation moved from %d to %d", before.Generation, after.Generation)
			}
			if after.Annotations["team"] != "web" {
				t.Errorf("other annotations lost: %v", after.Annotations)
			}
		})
	}
}

func TestRestartRejectsAnInvalidRevision(t *testing.T) {
	r, _, after := restarted(t, "7", "--revision", "v1/2")
	if r.code != ExitUsage || !strings.Contains(r.err, `annotation ferry.dev/revision value "v1/2" may only contain`) {
		t.Errorf("exit %d, stderr %q", r.code, r.err)
	}
	if got := after.Annotations[ferryv1.RevisionAnnotation]; got != "7" {
		t.Errorf("annotation changed to %q", got)
	}
}

// Two restarts at once give two revisions: the patch carries the
// resourceVersion it was computed from, and a conflict is retried.
func TestConcurrentRestartsBothCount(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "7")
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Go(func() { results[i] = run(t, "restart", "app", "-n", ns) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range results {
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.err)
		}
		seen[r.out] = true
	}
	if got := getAppGroup(t, ns, "app").Annotations[ferryv1.RevisionAnnotation]; got != "11" || len(seen) != 4 {
		t.Errorf("annotation %q after 4 restarts from 7, outputs %v; want 11 and 4 distinct outputs", got, seen)
	}
}
