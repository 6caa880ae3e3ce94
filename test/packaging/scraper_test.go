package packaging_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-dev/ferry/internal/metricsauth"
)

// TestChartScraperMayReadMetrics: the ServiceMonitors' token is the
// chart's scraper's, a ServiceAccount in the ServiceMonitors' namespace,
// whose token Secret (filled by the cluster's token controller) is the one
// their credentials name; installed in the API server, that account's
// token gets through the filter the manager and the agents guard their
// metrics with (a TokenReview, then a SubjectAccessReview for /metrics).
func TestChartScraperMayReadMetrics(t *testing.T) {
	const release, ns, monitoring = "scrape", "scrape-system", "scrape-monitoring"
	objs := render(t, renderOpts{release: release, namespace: ns,
		sets: []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.namespace=" + monitoring}})
	sa := find(t, objs, "ServiceAccount", "metrics-scraper")
	secret := find(t, objs, "Secret", "metrics-scraper-token")
	if sa.GetNamespace() != monitoring || secret.GetNamespace() != monitoring {
		t.Errorf("scraper ServiceAccount in %q, its Secret in %q; want both in the ServiceMonitors' namespace %q",
			sa.GetNamespace(), secret.GetNamespace(), monitoring)
	}
	if typ, _, _ := unstructured.NestedString(secret.Object, "type"); typ != "kubernetes.io/service-account-token" ||
		secret.GetAnnotations()["kubernetes.io/service-account.name"] != sa.GetName() {
		t.Errorf("Secret %s: type %q, annotations %v; want a token of ServiceAccount %s", secret.GetName(), typ,
			secret.GetAnnotations(), sa.GetName())
	}
	for _, sm := range ofKind(objs, "ServiceMonitor") {
		ep := nested[[]any](t, sm.Object, "spec", "endpoints")[0].(map[string]any)
		name, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "name")
		key, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "key")
		if sm.GetNamespace() != monitoring || name != secret.GetName() || key != "token" {
			t.Errorf("ServiceMonitor %s/%s sends the token of %s/%s, want %s/token, in its namespace",
				sm.GetNamespace(), sm.GetName(), name, key, secret.GetName())
		}
	}

	ensureNamespace(t, ns, nil)
	ensureNamespace(t, monitoring, nil)
	installed := []*unstructured.Unstructured{find(t, objs, "ClusterRole", "metrics-reader"),
		find(t, objs, "ClusterRoleBinding", "metrics-scraper"), sa, secret}
	if _, err := kubectlIn(testContext(t), encode(t, installed), "apply", "--server-side",
		"--field-manager=ferry-packaging-test", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(monitoring).CreateToken(testContext(t), sa.GetName(),
		&authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	filter, err := metricsauth.ForConfig(env.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics := filter.Wrap(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ferry_metrics 1\n"))
	}))
	for _, c := range []struct {
		who, token string
		want       int
	}{{"the scraper's token", tr.Status.Token, http.StatusOK}, {"no token", "", http.StatusUnauthorized}} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		rec := httptest.NewRecorder()
		metrics.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("GET /metrics with %s: %d %s, want %d", c.who, rec.Code, rec.Body, c.want)
		}
	}
}
