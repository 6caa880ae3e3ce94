package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ScrapeTokens are bearer tokens for the tests of secure metrics: Reader's
// ServiceAccount is bound to a ClusterRole that may get /metrics (as the
// chart's metrics-reader), Stranger's to nothing, and Forged is Reader's
// with another signature, which the API server rejects (as an expired
// token or another cluster's); OtherAudience is a genuine token of
// Reader's for another audience than the API server's (as a pod gets for
// a vault), which a scraper must not be let in with.
type ScrapeTokens struct{ Reader, Stranger, Forged, OtherAudience string }

// MetricsTokens makes the namespace ns unless it exists, the
// ServiceAccounts reader and stranger in it, and the ClusterRole
// <ns>-metrics-reader with its binding to reader, and asks for their
// tokens (TokenRequest), as a pod of theirs would get them.
func (e *Env) MetricsTokens(ctx context.Context, ns string) (ScrapeTokens, error) {
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return ScrapeTokens{}, err
	}
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return ScrapeTokens{}, err
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return ScrapeTokens{}, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return ScrapeTokens{}, err
	}
	var tokens [2]string
	for i, name := range []string{"reader", "stranger"} {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			return ScrapeTokens{}, err
		}
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			return ScrapeTokens{}, err
		}
		tokens[i] = tr.Status.Token
	}
	other, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"ferry-test-other-audience"}}}, metav1.CreateOptions{})
	if err != nil {
		return ScrapeTokens{}, err
	}
	return ScrapeTokens{Reader: tokens[0], Stranger: tokens[1], Forged: Forge(tokens[0]), OtherAudience: other.Status.Token}, nil
}

// Forge is token (a JWT) with its signature replaced: a token of the right
// shape and claims that the API server rejects.
func Forge(token string) string {
	return token[:strings.LastIndexByte(token, '.')+1] + "c2lnbmVkIGJ5IG5vYm9keQ"
}

// SpeaksHTTP2 tells whether the TLS server at addr agrees to HTTP/2 with
// a client offering only that (ALPN), as a flood of HTTP/2 streams would.
func SpeaksHTTP2(addr string) bool {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) // self-signed
	if err != nil {
		return false // refused: no protocol in common
	}
	defer conn.Close()
	return conn.ConnectionState().NegotiatedProtocol == "h2"
}

// GetWithToken GETs url with token as its bearer token (none if empty),
// trusting any certificate, as secure metrics' are self-signed, and
// returns the status code and body.
func GetWithToken(url, token string) (int, string, error) {
	code, body, _, err := GetWithTokenOver(url, token, &tls.Config{InsecureSkipVerify: true}) // self-signed
	return code, body, err
}

// GetWithTokenOver GETs url with token as its bearer token (none if
// empty), over TLS as tlsConfig says when url is https, and returns the
// status code, the body and the TLS connection's state (nil over plain
// HTTP), whose certificates tell what the server served.
func GetWithTokenOver(url, token string, tlsConfig *tls.Config) (int, string, *tls.ConnectionState, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	tr := &http.Transport{TLSClientConfig: tlsConfig}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.TLS, err
}

// Refusals asks url (https://host:port/metrics) with every token but the
// reader's, and returns an error for each answer other than the one due
// (401, or 403 for the stranger's token), and one if the server agrees to
// HTTP/2 (its floods reach a server before any token is checked).
func (s ScrapeTokens) Refusals(url string) []error {
	var errs []error
	for _, c := range []struct {
		who   string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a token the API server rejects", s.Forged, http.StatusUnauthorized},
		{"the reader's token for another audience", s.OtherAudience, http.StatusUnauthorized},
		{"a token not bound to the reader role", s.Stranger, http.StatusForbidden},
	} {
		switch code, body, err := GetWithToken(url, c.token); {
		case err != nil:
			errs = append(errs, fmt.Errorf("GET %s with %s: %w", url, c.who, err))
		case code != c.want:
			errs = append(errs, fmt.Errorf("GET %s with %s: %d %q, want %d", url, c.who, code, body, c.want))
		}
	}
	if SpeaksHTTP2(strings.TrimSuffix(strings.TrimPrefix(url, "https://"), "/metrics")) {
		errs = append(errs, fmt.Errorf("%s agrees to HTTP/2", url))
	}
	return errs
}
