package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Ferry's own metrics, served next to controller-runtime's on the
// manager's metrics endpoint.
var (
	rolloutsStarted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ferry_rollouts_started_total",
		Help: "Rollouts of a new target revision the manager started, over every AppGroup.",
	})
	rolloutsCompleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ferry_rollouts_completed_total",
		Help: "Rollouts that reached every selected node.",
	})
	rolloutsHalted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ferry_rollouts_halted_total",
		Help: "Rollouts halted because a pool resisted a deployment error.",
	})
	appGroupsResisting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ferry_appgroups_resisting",
		Help: "AppGroups whose ResistingDeploymentError condition is True now.",
	})
)

func init() {
	metrics.Registry.MustRegister(rolloutsStarted, rolloutsCompleted, rolloutsHalted, appGroupsResisting)
}

// countEvent moves the rollout counters for a recorded event.
func countEvent(reason string) {
	switch reason {
	case EventRolloutStarted:
		rolloutsStarted.Inc()
	case EventRolloutComplete:
		rolloutsCompleted.Inc()
	case EventRolloutHalted:
		rolloutsHalted.Inc()
	}
}

// resistingSet tracks which AppGroups resist, for the gauge.
type resistingSet struct {
	mu  sync.Mutex
	set map[types.NamespacedName]struct{}
}

// Set records whether ag resists and updates the gauge.
func (s *resistingSet) Set(ag types.NamespacedName, resisting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[types.NamespacedName]struct{}{}
	}
	if resisting {
		s.set[ag] = struct{}{}
	} else {
		delete(s.set, ag)
	}
	appGroupsResisting.Set(float64(len(s.set)))
}
