package contract

import (
	"net"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// ProxyServes: pool's report, taken as recent, shows its node taking
// requests: a process ready, from an agent that is not stopping (Ready
// False, AgentStopping: its proxy takes no new connection once its drain
// delay is over), with its proxy listening on listen.port or still on an
// old one (ServesOnOldPort). Whether the report is recent is the
// reader's to judge, each by its own clock: the manager by when it saw
// the agent's signs (its poolReport.Serving is this on a recent report,
// and its EndpointSlice goes by it), kubectl ferry by when the API server
// recorded them.
func ProxyServes(pool *ferryv1.ProcessPool) bool {
	if pool.Status.ProcessCounts.Ready == 0 {
		return false
	}
	ready := meta.FindStatusCondition(pool.Status.Conditions, ferryv1.ConditionReady)
	switch {
	case ready == nil:
		return true
	case ready.Reason == ferryv1.ReasonAgentStopping:
		return false
	case ready.Reason == ferryv1.ReasonListenFailed:
		return ServesOnOldPort(pool) != 0
	}
	return true
}

// ServesOnOldPort is the port pool's proxy still serves on while it
// cannot listen on listen.port (Ready False, ListenFailed): the old one
// of a move whose new port is taken, where its agent reports its address,
// with status.listenPort the spec's. 0 otherwise; and for a report
// written before listen.port moved (status.listenPort another), whose
// address is on what was then listen.port, which may be another
// program's.
func ServesOnOldPort(pool *ferryv1.ProcessPool) int32 {
	st, listen := &pool.Status, pool.Spec.Template.Listen.Port
	ready := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionReady)
	if ready == nil || ready.Reason != ferryv1.ReasonListenFailed || st.ListenPort != listen {
		return 0
	}
	return oldPort(st.Address, listen)
}

// oldPort is the port of address when it is not listen. 0 when address
// has no port or has listen's.
func oldPort(address string, listen int32) int32 {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return 0
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 || int32(port) == listen {
		return 0
	}
	return int32(port)
}

// Served says whose processes serve on a pool's node (WhatServes).
type Served struct {
	// Older: a ready process of another revision than the pool's
	// spec.revision: on a pool given the rollout's target, an older one.
	Older bool
	// Spec: a ready process of the pool's spec.revision.
	Spec bool
	// OlderUnknown: not Older, but a ready process may be older: the
	// pool has no process table, and its counts cannot tell which of
	// its processes are ready (one ready of two, one updated). Its
	// readers say nothing of older processes there, neither that they
	// serve nor that none does.
	OlderUnknown bool
}

// WhatServes says whose processes serve on pool's node: none unless the
// node serves (serves: ProxyServes on a report its reader takes as
// recent; a silent agent's figures tell nothing of now). Then by the
// pool's process table (at most 512 rows, more than a pool runs), its
// ready processes; without one, by its counts as far as they go
// (OlderUnknown where they cannot tell whether an older one is). Their
// updated are the processes of status.observedRevision, the revision the
// agent has taken up, not of spec.revision: while the agent has not
// caught up with spec.revision, none of its processes runs it, and every
// ready one is older (a spec.revision put back to one the agent ran
// before reads so too: the counts cannot tell). Once it has, of the
// ready processes at most updated run spec.revision and at most the
// others another. Not by the counts where the table tells: with one of
// each revision ready and a retry of spec.revision spawning, they cannot
// say which are ready. The manager's halt message (olderNote) and
// kubectl ferry status's halt header (olderOn) both say whether older
// processes serve on a halted node from this, so that they cannot
// disagree about them but where they judge the report's age. Not in
// their words where the target's processes die young and are retried:
// while a retry's process is ready, the plugin says it serves, and the
// manager, whose message must not change at each death, that no older
// process serves between the deaths.
func WhatServes(pool *ferryv1.ProcessPool, serves bool) Served {
	if !serves {
		return Served{}
	}
	st := &pool.Status
	if len(st.Processes) == 0 {
		return servedByCounts(st, pool.Spec.Revision)
	}
	var s Served
	for _, p := range st.Processes {
		if p.State != ferryv1.ProcessReady {
			continue
		}
		if p.Revision == pool.Spec.Revision {
			s.Spec = true
		} else {
			s.Older = true
		}
	}
	return s
}

// servedByCounts is WhatServes without a process table: by st's counts,
// whose updated run st.observedRevision. Of the ready processes, those
// beyond the updated are older, those beyond the others of spec.revision;
// where neither is beyond, an older one may or may not be ready
// (OlderUnknown), where there are older ones to be.
func servedByCounts(st *ferryv1.ProcessPoolStatus, spec string) Served {
	c := st.ProcessCounts
	if st.ObservedRevision != spec {
		return Served{Older: c.Ready > 0}
	}
	older := c.Ready > c.Updated
	return Served{Older: older, Spec: c.Ready > c.Total-c.Updated,
		OlderUnknown: !older && min(c.Ready, c.Total-c.Updated) > 0}
}
