package metricsauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
)

// fakeReviews answers as an API server knowing users (token to user) and
// readers (users allowed to get /metrics) would, or fails with err; it
// counts the reviews.
type fakeReviews struct {
	mu           sync.Mutex
	users        map[string]authenticationv1.UserInfo
	readers      map[string]bool
	err          error
	tokenReviews int
	accessChecks int
}

func (f *fakeReviews) Authenticate(_ context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenReviews++
	if f.err != nil {
		return authenticationv1.UserInfo{}, false, f.err
	}
	u, ok := f.users[token]
	return u, ok, nil
}

func (f *fakeReviews) MayGetMetrics(_ context.Context, u authenticationv1.UserInfo) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accessChecks++
	if f.err != nil {
		return false, f.err
	}
	return f.readers[u.Username], nil
}

func (f *fakeReviews) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenReviews, f.accessChecks
}

func newFake() *fakeReviews {
	return &fakeReviews{
		users: map[string]authenticationv1.UserInfo{
			"reader-token":   {Username: "system:serviceaccount:monitoring:prometheus"},
			"stranger-token": {Username: "system:serviceaccount:default:stranger"},
		},
		readers: map[string]bool{"system:serviceaccount:monitoring:prometheus": true},
	}
}

// clock is a settable time for the filter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// testFilter is a filter over reviews at a set time, wrapping a handler
// that answers "metrics", logging into lines.
func testFilter(reviews Reviews) (http.Handler, *clock, *[]string) {
	f := New(reviews)
	c := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	f.now = c.now
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 1})
	h := f.Wrap(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") }))
	return h, c, &lines
}

func scrape(h http.Handler, method, authorization string) *http.Response {
	req := httptest.NewRequest(method, "/metrics", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestStatusOfEachCaller(t *testing.T) {
	for _, c := range []struct {
		who, method, authorization string
		fail                       error
		want                       int
		reviews                    int // TokenReviews made
	}{
		{"reader", http.MethodGet, "Bearer reader-token", nil, http.StatusOK, 1},
		{"reader, HEAD", http.MethodHead, "Bearer reader-token", nil, http.StatusOK, 1},
		{"reader, scheme in lower case", http.MethodGet, "bearer reader-token", nil, http.StatusOK, 1},
		{"no header", http.MethodGet, "", nil, http.StatusUnauthorized, 0},
		{"empty bearer", http.MethodGet, "Bearer ", nil, http.StatusUnauthorized, 0},
		{"basic auth", http.MethodGet, "Basic cmVhZGVyOnB3", nil, http.StatusUnauthorized, 0},
		{"a token the API server rejects", http.MethodGet, "Bearer forged-token", nil, http.StatusUnauthorized, 1},
		{"a user not allowed", http.MethodGet, "Bearer stranger-token", nil, http.StatusForbidden, 1},
		{"a failed review", http.MethodGet, "Bearer reader-token", errors.New("connection refused"), http.StatusInternalServerError, 1},
		{"POST", http.MethodPost, "Bearer reader-token", nil, http.StatusMethodNotAllowed, 0},
	} {
		t.Run(c.who, func(t *testing.T) {
			reviews := newFake()
			reviews.err = c.fail
			h, _, _ := testFilter(reviews)
			resp := scrape(h, c.method, c.authorization)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want {
				t.Errorf("%d %q, want %d", resp.StatusCode, body, c.want)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (got == "Bearer") != (c.want == http.StatusUnauthorized) {
				t.Errorf("WWW-Authenticate %q with %d", got, resp.StatusCode)
			}
			if (string(body) == "metrics") != (c.want == http.StatusOK) {
				t.Errorf("body %q with %d", body, resp.StatusCode)
			}
			if n, _ := reviews.counts(); n != c.reviews {
				t.Errorf("%d TokenReviews, want %d", n, c.reviews)
			}
		})
	}
}

// TestUserOfTheTokenIsReviewed: the SubjectAccessReview is of the user the
// TokenReview named, with their groups, UID and extra.
func TestUserOfTheTokenIsReviewed(t *testing.T) {
	want := authenticationv1.UserInfo{Username: "u", UID: "1", Groups: []string{"g"},
		Extra: map[string]authenticationv1.ExtraValue{"k": {"v"}}}
	var got authenticationv1.UserInfo
	reviews := &recordingReviews{user: want, seen: &got}
	h, _, _ := testFilter(reviews)
	if resp := scrape(h, http.MethodGet, "Bearer t"); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d", resp.StatusCode)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reviewed %+v, want %+v", got, want)
	}
}

type recordingReviews struct {
	user authenticationv1.UserInfo
	seen *authenticationv1.UserInfo
}

func (r *recordingReviews) Authenticate(context.Context, string) (authenticationv1.UserInfo, bool, error) {
	return r.user, true, nil
}

func (r *recordingReviews) MayGetMetrics(_ context.Context, u authenticationv1.UserInfo) (bool, error) {
	*r.seen = u
	return true, nil
}

// TestDecisionsAreCached: a scraper's token is reviewed once a minute, not
// at each scrape; refusals are kept for 10 s; failures not at all.
func TestDecisionsAreCached(t *testing.T) {
	reviews := newFake()
	h, clk, _ := testFilter(reviews)
	for _, step := range []struct {
		after                  time.Duration
		authorization          string
		want                   int
		tokenReviews, accesses int // in all, so far
	}{
		{0, "Bearer reader-token", http.StatusOK, 1, 1},
		{15 * time.Second, "Bearer reader-token", http.StatusOK, 1, 1},
		{30 * time.Second, "Bearer reader-token", http.StatusOK, 1, 1},
		{0, "Bearer stranger-token", http.StatusForbidden, 2, 2},
		{5 * time.Second, "Bearer stranger-token", http.StatusForbidden, 2, 2},
		{0, "Bearer forged-token", http.StatusUnauthorized, 3, 2},
		{5 * time.Second, "Bearer forged-token", http.StatusUnauthorized, 3, 2},
		{5 * time.Second, "Bearer stranger-token", http.StatusForbidden, 4, 3}, // 15 s on
		{0, "Bearer forged-token", http.StatusUnauthorized, 5, 3},              // 10 s on
		{0, "Bearer reader-token", http.StatusOK, 6, 4},                        // a minute on
	} {
		clk.t = clk.t.Add(step.after)
		resp := scrape(h, http.MethodGet, step.authorization)
		n, m := reviews.counts()
		if resp.StatusCode != step.want || n != step.tokenReviews || m != step.accesses {
			t.Fatalf("%s at %s: %d after %d TokenReviews and %d SubjectAccessReviews, want %d after %d and %d",
				step.authorization, clk.t.Format(time.TimeOnly), resp.StatusCode, n, m, step.want, step.tokenReviews, step.accesses)
		}
	}

	// A failure is not cached: the next scrape asks again.
	reviews.err = errors.New("the API server is away")
	for i := range 2 {
		if resp := scrape(h, http.MethodGet, "Bearer new-token"); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%d", resp.StatusCode)
		}
		if n, _ := reviews.counts(); n != 7+i {
			t.Fatalf("%d TokenReviews after %d failures", n, i+1)
		}
	}
	reviews.err = nil
	if resp := scrape(h, http.MethodGet, "Bearer new-token"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the failures: %d", resp.StatusCode)
	}
	if n, _ := reviews.counts(); n != 9 {
		t.Fatalf("%d TokenReviews, want 9", n)
	}
}

// TestCacheIsBounded: made-up tokens fill the cache to its bound and no
// further; once theirs expire, new decisions are kept again.
func TestCacheIsBounded(t *testing.T) {
	reviews := newFake()
	f := New(reviews)
	f.turns = rate.NewLimiter(rate.Inf, 0) // the cache alone
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	f.now = clk.now
	h := f.Wrap(logr.Discard(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for i := range 3 * maxDecisions {
		if resp := scrape(h, http.MethodGet, fmt.Sprintf("Bearer made-up-%d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	if n := f.decisions.len(); n != maxDecisions {
		t.Fatalf("%d decisions cached, want %d", n, maxDecisions)
	}
	// Full: the reader is still answered, though reviewed at each scrape.
	for range 2 {
		if resp := scrape(h, http.MethodGet, "Bearer reader-token"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	if n, _ := reviews.counts(); n != 3*maxDecisions+2 {
		t.Fatalf("%d TokenReviews", n)
	}
	clk.t = clk.t.Add(refusedFor)
	for range 2 {
		_ = scrape(h, http.MethodGet, "Bearer reader-token")
	}
	if n, _ := reviews.counts(); n != 3*maxDecisions+3 {
		t.Fatalf("%d TokenReviews once the made-up tokens' decisions expired, want one more", n)
	}
	if n := f.decisions.len(); n != 1 {
		t.Fatalf("%d decisions cached, want the reader's", n)
	}
}

// TestFailuresAreLoggedOncePerInterval: a failing API server, or a flood
// of tokens past the reviews' rate, makes one log line a minute, without
// the token.
func TestFailuresAreLoggedOncePerInterval(t *testing.T) {
	reviews := newFake()
	reviews.err = errors.New("tokenreviews.authentication.k8s.io is forbidden")
	h, clk, lines := testFilter(reviews)
	for i := range 100 {
		clk.t = clk.t.Add(time.Second) // 100 s
		if resp := scrape(h, http.MethodGet, fmt.Sprintf("Bearer secret-%d", i)); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	if len(*lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(*lines), strings.Join(*lines, "\n"))
	}
	for _, l := range *lines {
		if strings.Contains(l, "secret-") || !strings.Contains(l, "is forbidden") {
			t.Errorf("log line %s", l)
		}
	}
	if !strings.Contains((*lines)[1], `"failuresSinceLastLogged"=59`) {
		t.Errorf("second line does not count the 59 failures not logged: %s", (*lines)[1])
	}
}

// TestAFloodDoesNotKeepAScraperOut: made-up tokens past the reviews' rate
// get 500 at once, and a scraper whose decision expired meanwhile is
// reviewed again without waiting a turn, even once the made-up tokens
// filled the cache; a token not allowed before waits its turn.
func TestAFloodDoesNotKeepAScraperOut(t *testing.T) {
	reviews := newFake()
	f := New(reviews)
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	f.now = clk.now
	h := f.Wrap(logr.Discard(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	flood := func(n int) (refused, failed int) {
		for i := range n {
			switch scrape(h, http.MethodGet, fmt.Sprintf("Bearer made-up-%d-%d", clk.t.Unix(), i)).StatusCode {
			case http.StatusUnauthorized:
				refused++
			case http.StatusInternalServerError:
				failed++
			}
		}
		return refused, failed
	}
	if resp := scrape(h, http.MethodGet, "Bearer reader-token"); resp.StatusCode != http.StatusOK {
		t.Fatalf("reader: %d", resp.StatusCode)
	}

	clk.t = clk.t.Add(allowedFor) // the reader's decision expires
	if refused, failed := flood(100); refused != reviewBurst || failed != 100-refused {
		t.Fatalf("flood: %d refused, %d past the rate, want %d refused and the rest past the rate", refused, failed, reviewBurst)
	}
	if resp := scrape(h, http.MethodGet, "Bearer reader-token"); resp.StatusCode != http.StatusOK {
		t.Errorf("reader during the flood: %d, want 200", resp.StatusCode)
	}
	if resp := scrape(h, http.MethodGet, "Bearer stranger-token"); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("a new token during the flood: %d, want 500 (past the rate)", resp.StatusCode)
	}

	// The flood goes on until the cache is full, just after the reader's
	// decision expired again: it stays known all the same.
	clk.t = clk.t.Add(allowedFor)
	for f.decisions.len() < maxDecisions {
		clk.t = clk.t.Add(time.Second)
		flood(reviewRate)
	}
	flood(100) // full: each new decision makes room by dropping the stale ones
	if resp := scrape(h, http.MethodGet, "Bearer reader-token"); resp.StatusCode != http.StatusOK {
		t.Errorf("reader once the flood filled the cache: %d, want 200", resp.StatusCode)
	}
}
