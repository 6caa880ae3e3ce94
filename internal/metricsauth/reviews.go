package metricsauth

import (
	"context"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Reviews are the API server's two answers the filter needs.
type Reviews interface {
	// Authenticate returns the user the API server says token is, or
	// ok false when it rejects the token; err is for a review that failed.
	Authenticate(ctx context.Context, token string) (user authenticationv1.UserInfo, ok bool, err error)
	// MayGetMetrics tells whether user may get the non-resource URL /metrics.
	MayGetMetrics(ctx context.Context, user authenticationv1.UserInfo) (bool, error)
}

// APIReviews asks the API server, with client-go's typed clients.
type APIReviews struct {
	tokens authenticationclient.TokenReviewInterface
	access authorizationclient.SubjectAccessReviewInterface
}

// NewAPIReviews makes the reviews with cfg's credentials over httpClient
// (rest.HTTPClientFor(cfg) if nil), without client-go's rate limiter: the
// Filter bounds the reviews of new tokens itself, and a client-side queue
// shared by all tokens would hold a known scraper's behind a flood.
func NewAPIReviews(cfg *rest.Config, httpClient *http.Client) (*APIReviews, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	if httpClient == nil {
		var err error
		if httpClient, err = rest.HTTPClientFor(cfg); err != nil {
			return nil, err
		}
	}
	authn, err := authenticationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	authz, err := authorizationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return &APIReviews{tokens: authn.TokenReviews(), access: authz.SubjectAccessReviews()}, nil
}

// Authenticate makes a TokenReview for the API server's own audiences.
func (r *APIReviews) Authenticate(ctx context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	tr, err := r.tokens.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}},
		metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, false, err
	}
	// A rejected token comes back unauthenticated with Status.Error saying
	// why ("invalid bearer token"): an answer, not a failure.
	return tr.Status.User, tr.Status.Authenticated, nil
}

// MayGetMetrics makes a SubjectAccessReview of get on /metrics.
func (r *APIReviews) MayGetMetrics(ctx context.Context, user authenticationv1.UserInfo) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := r.access.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, Groups: user.Groups, UID: user.UID, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: MetricsPath, Verb: "get"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}
