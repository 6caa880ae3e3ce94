package metricsauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
)

// MetricsPath is the non-resource URL a caller must be allowed to get.
const MetricsPath = "/metrics"

const (
	// allowedFor is how long an allowed token stays allowed without a
	// review: longer than a scrape interval, so that a scraper costs about
	// two reviews a minute; a revoked binding takes effect within it.
	allowedFor = time.Minute
	// refusedFor is how long a refused token (401, 403) stays refused: a
	// fixed binding, or a new token, is seen within it.
	refusedFor = 10 * time.Second
	// maxDecisions bounds the cache: a few scrapers need a few entries.
	maxDecisions = 256
	// reviewRate and reviewBurst bound the reviews of tokens not allowed
	// before (a TokenReview each, and a SubjectAccessReview if
	// authenticated), per Filter: a scraper's token is reviewed about
	// once a minute, and a flood of made-up tokens gets 500 past them
	// rather than loading the API server.
	reviewRate  = 5
	reviewBurst = 10
	// reviewTimeout bounds a request's wait for its reviews.
	reviewTimeout = 10 * time.Second
	// failureLogInterval is how often at most a failed review is logged:
	// anyone who can reach the port can make reviews fail (by flooding
	// past their rate), and must not fill the log.
	failureLogInterval = time.Minute
)

// Filter lets through only the callers the API server authenticates and
// allows to get /metrics. One Filter may wrap several handlers, which then
// share its cache.
type Filter struct {
	reviews   Reviews
	decisions *cache
	turns     *rate.Limiter // of reviews of tokens not allowed before
	now       func() time.Time
	failures  failureLog
}

// New is a Filter asking reviews.
func New(reviews Reviews) *Filter {
	return &Filter{reviews: reviews, decisions: newCache(maxDecisions),
		turns: rate.NewLimiter(reviewRate, reviewBurst), now: time.Now}
}

// errTooManyReviews answers a token past the reviews' rate at once (500),
// rather than holding its request until a turn comes.
var errTooManyReviews = fmt.Errorf("more new tokens than the %d a second to review (a token allowed before does not wait)", reviewRate)

// ForConfig is a Filter asking the API server of cfg, over httpClient
// (made from cfg if nil).
func ForConfig(cfg *rest.Config, httpClient *http.Client) (*Filter, error) {
	reviews, err := NewAPIReviews(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return New(reviews), nil
}

// Wrap serves h to the callers the API server lets through, and answers the
// others 401 or 403 (500 when it could not be asked); log is for refusals
// (at V(1)) and failed reviews.
func (f *Filter) Wrap(log logr.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
			return
		}
		token := bearerToken(r.Header.Get("Authorization"))
		d, err := f.decide(r.Context(), token, log)
		if err != nil {
			f.failures.log(log, err, f.now())
			http.Error(w, "Could not check the token with the API server", http.StatusInternalServerError)
			return
		}
		switch d.verdict {
		case allowed:
			h.ServeHTTP(w, r)
		case forbidden:
			http.Error(w, "Authorization denied for user "+d.user, http.StatusForbidden)
		default:
			w.Header().Set("WWW-Authenticate", "Bearer")
			msg := "Unauthorized: the API server rejects the bearer token"
			if token == "" {
				msg = "Unauthorized: no bearer token"
			}
			http.Error(w, msg, http.StatusUnauthorized)
		}
	})
}

// bearerToken is the token of an Authorization header "Bearer <token>", or
// "" if it has none.
func bearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// decide returns the cached decision on token, or reviews it and caches
// the answer; a failed review is not cached, so the next request retries.
func (f *Filter) decide(ctx context.Context, token string, log logr.Logger) (decision, error) {
	if token == "" {
		return decision{verdict: unauthenticated}, nil
	}
	k, now := key(token), f.now()
	d, fresh := f.decisions.get(k, now)
	if fresh {
		return d, nil
	}
	// Only new tokens, and refused ones, take their turn: a token allowed
	// before is re-reviewed at once, so that a flood of made-up tokens,
	// which spends the turns, cannot keep a scraper out once its
	// decision expires (nobody without that token can ask for it).
	if d.verdict != allowed && !f.turns.AllowN(now, 1) {
		return decision{}, errTooManyReviews
	}
	d, err := f.review(ctx, token)
	if err != nil {
		return decision{}, err
	}
	switch d.verdict {
	case allowed:
		d.expires = now.Add(allowedFor)
	case forbidden:
		log.V(1).Info("Refused metrics to a user not allowed to get /metrics", "user", d.user)
		d.expires = now.Add(refusedFor)
	default:
		log.V(1).Info("Refused metrics to a token the API server rejects")
		d.expires = now.Add(refusedFor)
	}
	f.decisions.put(k, d, now)
	return d, nil
}

// review asks the API server who token is, then whether they may get
// /metrics.
func (f *Filter) review(ctx context.Context, token string) (decision, error) {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	user, ok, err := f.reviews.Authenticate(ctx, token)
	if err != nil || !ok {
		return decision{verdict: unauthenticated}, err
	}
	may, err := f.reviews.MayGetMetrics(ctx, user)
	if err != nil {
		return decision{}, err
	}
	if !may {
		return decision{verdict: forbidden, user: user.Username}, nil
	}
	return decision{verdict: allowed, user: user.Username}, nil
}

// failureLog logs a failed review at most once per failureLogInterval,
// with how many failed since the last line.
type failureLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (l *failureLog) log(log logr.Logger, err error, now time.Time) {
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < failureLogInterval {
		l.missed++
		l.mu.Unlock()
		return
	}
	missed := l.missed
	l.last, l.missed = now, 0
	l.mu.Unlock()
	log.Error(err, "Could not check a metrics scraper's token with the API server; answered 500",
		"failuresSinceLastLogged", missed)
}
