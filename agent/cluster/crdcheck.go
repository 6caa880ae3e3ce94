package cluster

import (
	"context"
	"net/http"
	"path"
	"strings"
	"sync/atomic"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	toolscache "k8s.io/client-go/tools/cache"
)

// crdCheck notices an API server whose ProcessPool CRD lacks the
// selectable field spec.nodeName the agent's cache selects its pools by
// (CRDs managed apart from the chart and not upgraded, or a CRD
// downgraded, or its selectableFields taken out, while the agent runs):
// every list and watch then fails, the cache follows no change, and an
// agent Ready meanwhile would let a DaemonSet rollout go on to every node
// while no pool is followed or reported. The reflector's own "Failed to
// watch" repeats without saying what to do; crdCheck says it once, and
// keeps the agent not Ready (Agent.Ready) until the API server answers a
// list or watch by the field again.
//
// The reflector has no hook for a list that worked, and after its first
// sync the informer's HasSynced stays true through any later failure: so
// crdCheck sees the cache's own requests (wrap) and takes the API
// server's answer to one by the field as the CRD declaring it again. The
// reflector retries in turn (a refusal, its handler, a back-off, the next
// request), so an answer always follows the refusal it clears.
type crdCheck struct {
	log logr.Logger
	// outdated is set at the refusal, cleared by the next answer.
	outdated atomic.Bool
}

// CRDOutdatedReason is why the agent is not Ready while the API server
// refuses its list and watch of its pools by the field, and the fix: the
// error it logs once (crdCheck), and its /readyz answer meanwhile. Until
// then the cache follows nothing: a synced agent runs, and reports, the
// pools it had; one that has not synced runs its saved pools, reports
// them read by name (runningPool.readByName), and stops one that read
// finds deleted, or replaced by another pool of its name, at a write of
// its status (runningPool.noticeDeletion); a new pool, a spec change,
// and the deletion of a synced agent's pool wait. So the message says a
// deletion is seen late or not at all, not never.
const CRDOutdatedReason = "The ProcessPool CRD lacks the selectable field " + nodeNameField +
	" this agent selects its pools by; upgrade the CRDs to this release's" +
	" (config/crd, or the chart with crds.enabled): until then this agent sees no new pool or spec change," +
	" a deletion late or not at all, and is not Ready"

// crdFixedMsg is said once the API server lists the pools by the field
// after CRDOutdatedReason.
const crdFixedMsg = "The ProcessPool CRD declares the selectable field " + nodeNameField +
	" again; this agent follows its pools"

// handle is the cache's watch error handler: client-go's, then observe.
func (c *crdCheck) handle(ctx context.Context, r *toolscache.Reflector, err error) {
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
	c.observe(err)
}

// observe sets outdated on the API server's refusal of the field
// selector, and logs the first time it is set since it was last cleared.
func (c *crdCheck) observe(err error) {
	if !fieldUnsupported(err) {
		return
	}
	if c.outdated.CompareAndSwap(false, true) {
		c.log.Error(err, CRDOutdatedReason, "field", nodeNameField)
	}
}

// answered clears outdated: the API server answered a list or watch by
// the field, which its CRD declares then.
func (c *crdCheck) answered() {
	if c.outdated.CompareAndSwap(true, false) {
		c.log.Info(crdFixedMsg, "field", nodeNameField)
	}
}

// wrap is the cache's transport: rt, and answered at each answer (200) to
// a list or watch of ProcessPools by the field.
func (c *crdCheck) wrap(rt http.RoundTripper) http.RoundTripper {
	return &answerWatcher{rt: rt, crd: c}
}

// answerWatcher is crdCheck's transport (wrap).
type answerWatcher struct {
	rt  http.RoundTripper
	crd *crdCheck
}

func (w *answerWatcher) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.rt.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && selectsByNodeName(req) {
		w.crd.answered()
	}
	return resp, err
}

// WrappedRoundTripper is the transport w wraps: client-go's helpers that
// look through wrappers (utilnet.TLSClientConfig, DialerFor,
// CloseIdleConnectionsFor) reach it by this, as through client-go's own.
func (w *answerWatcher) WrappedRoundTripper() http.RoundTripper { return w.rt }

var _ utilnet.RoundTripperWrapper = (*answerWatcher)(nil)

// selectsByNodeName is whether req lists or watches ProcessPools by the
// field (one namespace's or all).
func selectsByNodeName(req *http.Request) bool {
	return req.Method == http.MethodGet && path.Base(req.URL.Path) == "processpools" &&
		strings.Contains(req.URL.Query().Get("fieldSelector"), nodeNameField+"=")
}

// fieldUnsupported is whether err is the API server's BadRequest for a
// field selector on a field the CRD does not declare selectable
// (`field label not supported: spec.nodeName`).
func fieldUnsupported(err error) bool {
	return err != nil && apierrors.IsBadRequest(err) &&
		strings.Contains(err.Error(), "field label not supported")
}
