package cluster

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
)

// crdCheck notices an API server whose ProcessPool CRD predates the
// selectable field spec.nodeName the agent's cache selects its pools by
// (CRDs managed apart from the chart and not upgraded): every list and
// watch then fails, the cache never syncs, and an agent Ready on the
// pools it saved would let a DaemonSet rollout go on to every node while
// no pool is followed or reported. The reflector's own "Failed to watch"
// repeats without saying what to do; crdCheck says it once, and keeps the
// agent not Ready (Agent.Ready) until the cache syncs.
type crdCheck struct {
	log logr.Logger
	// outdated is set at the error, cleared by the cache's sync.
	outdated atomic.Bool
}

// crdOutdatedMsg is the agent's error for a CRD without the field.
const crdOutdatedMsg = "The ProcessPool CRD lacks the selectable field " + nodeNameField +
	" this agent selects its pools by; upgrade the CRDs to this release's" +
	" (config/crd, or the chart with crds.enabled): until then this agent follows no pool and is not Ready"

// handle is the cache's watch error handler: client-go's, then observe.
func (c *crdCheck) handle(ctx context.Context, r *toolscache.Reflector, err error) {
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
	c.observe(err)
}

// observe sets outdated on the API server's refusal of the field
// selector, and logs the first time it is set since the last sync.
func (c *crdCheck) observe(err error) {
	if !fieldUnsupported(err) {
		return
	}
	if c.outdated.CompareAndSwap(false, true) {
		c.log.Error(err, crdOutdatedMsg, "field", nodeNameField)
	}
}

// synced clears outdated: a list by the field worked.
func (c *crdCheck) synced() { c.outdated.Store(false) }

// fieldUnsupported is whether err is the API server's BadRequest for a
// field selector on a field the CRD does not declare selectable
// (`field label not supported: spec.nodeName`).
func fieldUnsupported(err error) bool {
	return err != nil && apierrors.IsBadRequest(err) &&
		strings.Contains(err.Error(), "field label not supported")
}
