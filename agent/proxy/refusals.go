package proxy

import (
	"sync/atomic"

	"github.com/go-logr/logr"
)

// refusals counts requests refused for one reason, and logs them at most
// once a minute: the first at once, then, at the first refusal a minute
// after, how many came since the line before. An overloaded pool refuses
// many a second; its log says so without a line per request (the metrics
// count each).
type refusals struct {
	at atomic.Int64 // UnixNano of the last line
	n  atomic.Int64 // refusals not yet in a line
}

func (r *refusals) note(log logr.Logger, msg string) {
	r.n.Add(1)
	if onceAMinute(&r.at) {
		log.Info(msg+" (logged at most once a minute)", "refused", r.n.Swap(0))
	}
}
