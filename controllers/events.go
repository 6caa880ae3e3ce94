package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Reasons of the events the manager records on an AppGroup.
const (
	// EventRolloutStarted: the target revision changed (or was first set);
	// its rollout begins.
	EventRolloutStarted = "RolloutStarted"
	// EventNodeRolledOut: one more node runs the target on every process (not
	// the last: EventRolloutComplete says so), and the target is proven
	// (a node's new processes of it lived the crash window).
	EventNodeRolledOut = "NodeRolledOut"
	// EventRolloutComplete: every node runs the target.
	EventRolloutComplete = "RolloutComplete"
	// EventRolloutHalted: a pool resists the target; no further node gets
	// it (Warning).
	EventRolloutHalted = "RolloutHalted"
	// EventRolloutIncomplete: the rollout ended with processes on some
	// nodes that could not be replaced (resistDeploymentErrors false), and
	// why (Warning).
	EventRolloutIncomplete = "RolloutIncomplete"
	// EventResistingDeploymentError: a pool entered deployment error
	// resistance (Warning).
	EventResistingDeploymentError = "ResistingDeploymentError"
	// EventDeploymentErrorResolved: no pool resists any more.
	EventDeploymentErrorResolved = "DeploymentErrorResolved"
	// EventInvalidRevision: the revision annotation is invalid (Warning).
	EventInvalidRevision = "InvalidRevision"
	// EventUnknownAnnotation: the AppGroup has an annotation under
	// ferry.dev that Ferry does not read (a misspelled ferry.dev/revision),
	// so it changes nothing; the note names the closest one Ferry reads
	// (Warning). Once per annotation and value, as far as this manager
	// remembers.
	EventUnknownAnnotation = "UnknownAnnotation"
	// EventNodeReturned: the manager returned a node's pool from the target
	// it cannot spawn with no older process to serve (or whose processes
	// died soon after they were ready: the note says which), to an older
	// revision (Warning): the code that runs there changed.
	EventNodeReturned = "NodeReturned"
	// EventPortConflict: another AppGroup has listen.port on some selected
	// nodes; this one gets no pool there (Warning).
	EventPortConflict = "PortConflict"
	// EventPortConflictResolved: no other AppGroup holds listen.port on
	// the selected nodes any more; pools are created there.
	EventPortConflictResolved = "PortConflictResolved"
	// EventNameTaken: the AppGroup's Service has a name taken by an object
	// that is not the AppGroup's, or a node's pool both of its names
	// (Warning): Ready reads NameTaken, or says so after a reason that
	// ranks above it (namesTaken). Also, with the object in the way as
	// its related object, when an EndpointSlice's name is taken: its
	// endpoints went into another slice, so nothing is lost; Ready does
	// not move, and no EventNameTakenResolved follows (warnSliceMoved).
	EventNameTaken = "NameTaken"
	// EventNameTakenResolved: after EventNameTaken of the Service or a
	// pool, the names are the AppGroup's again.
	EventNameTakenResolved = "NameTakenResolved"
	// EventNoNodes: the AppGroup came to select no node: its nodeSelector
	// matches none (Warning).
	EventNoNodes = "NoNodes"
	// EventNodesSelected: after EventNoNodes, the nodeSelector matches
	// nodes again.
	EventNodesSelected = "NodesSelected"
	// EventAgentNotReporting: a node's agent went silent (Warning).
	EventAgentNotReporting = "AgentNotReporting"
	// EventAgentReporting: no selected node's agent is silent any more
	// (after EventAgentNotReporting).
	EventAgentReporting = "AgentReporting"
	// EventListenFailed: on some selected nodes the proxy cannot listen on
	// listen.port (the agent's ListenFailed), so no request reaches the
	// processes there (Warning).
	EventListenFailed = "ListenFailed"
	// EventListenRecovered: after EventListenFailed, no selected node's
	// proxy fails to listen any more.
	EventListenRecovered = "ListenRecovered"
	// EventWriteFailed: the manager could not create or update an object
	// the AppGroup needs (a pool, its Service, its EndpointSlice); the
	// note says which and the API server's answer (Warning). The pass is
	// retried with backoff; nothing already running is touched.
	EventWriteFailed = "WriteFailed"
)

// writeFailure is a pass's failed write of an object the AppGroup needs:
// unlike a conflict or a lost race, one the user may have to act on (a
// name taken by someone else's object, an exhausted Service IP range, a
// quota), so it is also recorded as a Warning event.
type writeFailure struct {
	what string
	err  error
}

func writeFailed(what string, err error) error { return &writeFailure{what: what, err: err} }

func (e *writeFailure) Error() string { return "could not " + e.what + ": " + e.err.Error() }
func (e *writeFailure) Unwrap() error { return e.err }

// writeFailureEvents is the Warning event a pass's error deserves: the
// pass's failed writes, one after another in one note (the recorder
// would keep only the first of several events: statusEvent.Related),
// except those a retry settles by itself (conflicts, objects gone
// meanwhile, the pass cancelled). None when there are none.
func writeFailureEvents(err error) []statusEvent {
	var notes []string
	for _, e := range flatten(err) {
		var wf *writeFailure
		if !errors.As(e, &wf) || apierrors.IsConflict(e) || apierrors.IsNotFound(e) ||
			errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) {
			continue
		}
		notes = append(notes, wf.Error())
	}
	if len(notes) == 0 {
		return nil
	}
	return []statusEvent{{Type: corev1.EventTypeWarning, Reason: EventWriteFailed, Action: "Write", Note: strings.Join(notes, "; ")}}
}

// statusEvent is an event to record because the status moved.
type statusEvent struct {
	Type, Reason, Action, Note string
	// Again: it says more fully what an event recorded already said (a
	// halt that spread to another node), so it moves no counter
	// (countEvent): that rollout halted once.
	Again bool
	// Related is the object the event is about besides the AppGroup (a
	// node's pool), or nil. The event recorder folds the events of one
	// pass that share their AppGroup (at one resourceVersion), reason and
	// related object into one, keeping the first one's note: events of a
	// reason that a pass may record for several objects name each one
	// here (NodeReturned; a halt that spread, relateSpread), or are
	// recorded as one (WriteFailed).
	Related runtime.Object
}

// statusEvents are the events that the move of an AppGroup's status from
// old to cur deserves. It compares the two only, so an event is recorded
// once per transition however often the AppGroup is reconciled.
//
// silence is what the manager knows of its agents' silences (silenceSeen):
// Ready names one reason, and a silence goes on behind a reason of higher
// rank (a process not ready elsewhere), so Ready alone cannot pair the
// silence events.
func statusEvents(ag *ferryv1.AppGroup, old, cur *ferryv1.AppGroupStatus, silence silenceSeen) []statusEvent {
	evs := rolloutEvents(ag, old, cur)
	evs = append(evs, resistEvents(old, cur)...)
	if inv, ok := invalidRevision(cur); ok {
		if was, wasOK := invalidRevision(old); !wasOK || was != inv {
			evs.add(corev1.EventTypeWarning, EventInvalidRevision, "Validate", inv)
		}
	}
	evs = append(evs, readyWarnings(old, cur, silence)...)
	// A warning that ends says so, or `kubectl describe` leaves it standing
	// as the last word. Deleting ends both without resolving either.
	if condition(cur, ferryv1.ConditionReady).Reason != ferryv1.ReasonDeleting {
		evs = append(evs, readyResolutions(ag, old, cur, silence)...)
	}
	return evs
}

// eventList gathers the events of a move of the status.
type eventList []statusEvent

func (l *eventList) add(typ, reason, action, note string) {
	*l = append(*l, statusEvent{Type: typ, Reason: reason, Action: action, Note: note})
}

// rolloutEvents are the events of the rollout that the move from old to
// cur deserves: started, a node rolled out, complete, halted, incomplete.
func rolloutEvents(ag *ferryv1.AppGroup, old, cur *ferryv1.AppGroupStatus) eventList {
	var evs eventList
	oldRR, curRR := condition(old, ferryv1.ConditionRollingRestart), condition(cur, ferryv1.ConditionRollingRestart)
	started := cur.Revision != "" && cur.Revision != old.Revision && cur.Nodes.Total > 0
	complete := rolloutCompleted(old, cur, started)
	// A new AppGroup whose first status already shows its revision on every
	// node gets RolloutComplete alone: nothing was seen rolling, and at a
	// thousand AppGroups every event is a request the API server serves.
	// A revision bump seen complete at once keeps both: RolloutStarted
	// says which revision it replaced.
	if started && (!complete || old.Revision != "") {
		evs.add(corev1.EventTypeNormal, EventRolloutStarted, "Rollout", rolloutStartedNote(ag, old, cur))
	}
	// The node that completes the rollout gets no event of its own:
	// RolloutComplete says the same, and at a thousand AppGroups every
	// event is a request the API server serves. Nor does one before the
	// target is proven (rolledOutNodes): the nodes updated until then are
	// news at the write that proves it.
	proven := cur.ProvenRevision == cur.Revision
	provenNow := proven && old.ProvenRevision != cur.Revision
	if cur.Revision == old.Revision && proven && (cur.Nodes.Updated > old.Nodes.Updated || provenNow && cur.Nodes.Updated > 0) &&
		oldRR.Status == metav1.ConditionTrue && !complete {
		evs.add(corev1.EventTypeNormal, EventNodeRolledOut, "Rollout",
			fmt.Sprintf("%d/%d nodes run revision %s", cur.Nodes.Updated, cur.Nodes.Total, cur.Revision))
	}
	if complete {
		evs.add(corev1.EventTypeNormal, EventRolloutComplete, "Rollout", curRR.Message)
	}
	if curRR.Reason == ferryv1.ReasonRolloutHalted && (oldRR.Reason != ferryv1.ReasonRolloutHalted || cur.Revision != old.Revision) {
		evs.add(corev1.EventTypeWarning, EventRolloutHalted, "Rollout", curRR.Message)
	}
	if curRR.Reason == ferryv1.ReasonRolloutIncomplete && (oldRR.Reason != ferryv1.ReasonRolloutIncomplete || cur.Revision != old.Revision) {
		evs.add(corev1.EventTypeWarning, EventRolloutIncomplete, "Rollout", curRR.Message)
	}
	return evs
}

// rolloutCompleted: the rollout is seen complete for the first time, after
// a status that showed it rolling, or on a revision the manager first sees
// already rolled out everywhere (it was behind while the agents reported;
// started: cur's revision is new).
//
// Also when the status before showed it halted or Unknown (the halting
// node was unselected, the last node's agent was briefly silent): the
// revision is rolled out everywhere for the first time (lastRolledOut).
// RollingRestart may show RolloutComplete before lastRolledOut moves (a
// node runs the target everywhere, a process not ready yet): the move into
// RolloutComplete from halted or Unknown is then the completion, while the
// revision had not been seen rolled out everywhere before; the later move
// of lastRolledOut, from a status already complete, is no second one.
func rolloutCompleted(old, cur *ferryv1.AppGroupStatus, started bool) bool {
	oldRR, curRR := condition(old, ferryv1.ConditionRollingRestart), condition(cur, ferryv1.ConditionRollingRestart)
	oldComplete := oldRR.Status == metav1.ConditionFalse && oldRR.Reason == ferryv1.ReasonRolloutComplete
	firstRolledOut := cur.LastRolledOut != nil && cur.LastRolledOut.Revision == cur.Revision &&
		(old.LastRolledOut == nil || old.LastRolledOut.Revision != cur.Revision)
	resumed := (oldRR.Reason == ferryv1.ReasonRolloutHalted || oldRR.Status == metav1.ConditionUnknown) &&
		(old.LastRolledOut == nil || old.LastRolledOut.Revision != cur.Revision)
	// With no node selected, or listen.port taken on every one, nothing
	// rolled out: no completion (RollingRestart reads NoNodes or
	// PortConflict then; its event would also count as recorded, and the
	// real one be dropped, once nodes are selected again: rolloutSeen).
	return curRR.Status == metav1.ConditionFalse && curRR.Reason == ferryv1.ReasonRolloutComplete && cur.Nodes.Total > 0 &&
		(oldRR.Status == metav1.ConditionTrue || started || resumed || firstRolledOut && !oldComplete)
}

// rolloutStartedNote is RolloutStarted's note: the revision, how many
// nodes, and for a revision bump how many at a time and what it replaced.
func rolloutStartedNote(ag *ferryv1.AppGroup, old, cur *ferryv1.AppGroupStatus) string {
	// A new AppGroup's pools are created on every node at once; only a
	// revision bump goes maxConcurrentNodes at a time.
	note := fmt.Sprintf("Rolling out revision %s to %d %s", cur.Revision, cur.Nodes.Total, plural(int(cur.Nodes.Total), "node", "nodes"))
	if old.Revision == "" {
		return note
	}
	// The previous target may never have rolled out (a halted one, or one
	// superseded mid-rollout): say what did last.
	was := old.Revision
	if lro := old.LastRolledOut; lro != nil && lro.Revision != old.Revision {
		was += ", last rolled out " + lro.Revision
	}
	return note + fmt.Sprintf(", %d at a time (was %s)", max(ag.Spec.Restart.MaxConcurrentNodes, 1), was)
}

// resistEvents: a pool started resisting a deployment error, or none
// resists any more.
func resistEvents(old, cur *ferryv1.AppGroupStatus) eventList {
	var evs eventList
	oldRes, curRes := condition(old, ferryv1.ConditionResistingDeploymentError), condition(cur, ferryv1.ConditionResistingDeploymentError)
	if curRes.Status == metav1.ConditionTrue && oldRes.Status != metav1.ConditionTrue {
		evs.add(corev1.EventTypeWarning, EventResistingDeploymentError, "Resist", curRes.Message)
	}
	if oldRes.Status == metav1.ConditionTrue && curRes.Status == metav1.ConditionFalse {
		evs.add(corev1.EventTypeNormal, EventDeploymentErrorResolved, "Resist", "No pool resists a deployment error any more")
	}
	return evs
}

// readyWarnings are the warnings Ready's move deserves: a port conflict,
// names taken, no nodes, a silent agent.
func readyWarnings(old, cur *ferryv1.AppGroupStatus, silence silenceSeen) eventList {
	var evs eventList
	oldReady, curReady := condition(old, ferryv1.ConditionReady), condition(cur, ferryv1.ConditionReady)
	// Ready's message may also say which names are taken (splitTaken):
	// that is no news of the reason's own.
	oldOwn, _ := splitTaken(oldReady)
	curOwn, curTaken := splitTaken(curReady)
	if curReady.Reason == ferryv1.ReasonPortConflict && (oldReady.Reason != ferryv1.ReasonPortConflict || oldOwn != curOwn) {
		evs.add(corev1.EventTypeWarning, EventPortConflict, "Schedule", curOwn)
	}
	// Whatever reason Ready shows, the names are in the status.
	if namesTaken(cur) && !namesTaken(old) {
		note := curReady.Message
		if curTaken != "" {
			note = curTaken
		}
		evs.add(corev1.EventTypeWarning, EventNameTaken, "Write", note)
	}
	if curReady.Reason == ferryv1.ReasonNoNodes && oldReady.Reason != ferryv1.ReasonNoNodes {
		evs.add(corev1.EventTypeWarning, EventNoNodes, "Schedule", curOwn)
	}
	if curReady.Reason == ferryv1.ReasonAgentNotReporting && !silence.standing(old) {
		evs.add(corev1.EventTypeWarning, EventAgentNotReporting, "Monitor", curReady.Message)
	}
	return evs
}

// readyResolutions say that the warnings readyWarnings recorded ended.
func readyResolutions(ag *ferryv1.AppGroup, old, cur *ferryv1.AppGroupStatus, silence silenceSeen) eventList {
	var evs eventList
	oldReady, curReady := condition(old, ferryv1.ConditionReady), condition(cur, ferryv1.ConditionReady)
	if oldReady.Reason == ferryv1.ReasonPortConflict && curReady.Reason != ferryv1.ReasonPortConflict {
		evs.add(corev1.EventTypeNormal, EventPortConflictResolved, "Schedule",
			fmt.Sprintf("No other AppGroup holds listen.port %d on the selected nodes any more", ag.Spec.Listen.Port))
	}
	if namesTaken(old) && !namesTaken(cur) {
		evs.add(corev1.EventTypeNormal, EventNameTakenResolved, "Write", nameTakenResolvedNote(ag, old))
	}
	// Selected nodes where listen.port is taken are left out of the
	// count: PortConflict says so.
	if oldReady.Reason == ferryv1.ReasonNoNodes && cur.Nodes.Total > 0 {
		evs.add(corev1.EventTypeNormal, EventNodesSelected, "Schedule", fmt.Sprintf("spec.nodeSelector matches %d %s now",
			cur.Nodes.Total, plural(int(cur.Nodes.Total), "node", "nodes")))
	}
	if silence.standing(old) && !silence.silent {
		evs.add(corev1.EventTypeNormal, EventAgentReporting, "Monitor", "No selected node's agent is silent any more")
	}
	return evs
}

// nameTakenResolvedNote is NameTakenResolved's note after old, whose
// Ready said which names were taken (takenMessage): what the names of
// each kind it named (takenKinds) are now. The Service's is the
// AppGroup's own (a pass that leaves it out of the status wrote it); of
// the pools', only that no selected node's is kept from being made: a
// node no longer selected needs none, and the ProcessPools in the way may
// still have its names. (It said the Service, EndpointSlices and pools
// had names of their own, also when the objects in the way were still
// there; and it found the kinds by words of the message alone, so a
// Service taken beside a node with no pool for want of a revision, "No
// pool on node-b: no node serves ...", said the pools' names were freed.)
func nameTakenResolvedNote(ag *ferryv1.AppGroup, old *ferryv1.AppGroupStatus) string {
	service, pools := takenKinds(ag, condition(old, ferryv1.ConditionReady))
	var parts []string
	if service {
		parts = append(parts, "Service "+contract.ServiceName(ag.Name)+" is the AppGroup's own now")
	}
	if pools {
		parts = append(parts, "no selected node's pool is kept from being made by other ProcessPools any more "+
			"(those in the way were renamed or deleted, or their node is no longer selected and needs no pool)")
	}
	if len(parts) == 0 {
		// A status of an older manager's, that named an EndpointSlice.
		return "No name the AppGroup needs is another object's any more"
	}
	note := strings.Join(parts, "; ")
	return strings.ToUpper(note[:1]) + note[1:]
}

// silenceSeen is what the manager knows of an AppGroup's agents' silences
// at a status write: whether an AgentNotReporting warning stands (warned:
// one was recorded, and no AgentReporting since, as far as this manager
// saw), whether it knows that (known: it has passed over the AppGroup
// since it started), and whether the pass found any selected node's agent
// silent.
type silenceSeen struct{ warned, known, silent bool }

// standing: a warning stands before the write, recorded by this manager,
// or, for a manager that does not know yet (one that just started), shown
// by the status it starts from. Once the manager knows, a warning the
// status shows that it did not record is another writer's (a status the
// pass puts back): putting it back is no news of an agent.
func (s silenceSeen) standing(old *ferryv1.AppGroupStatus) bool {
	return s.warned || !s.known && condition(old, ferryv1.ConditionReady).Reason == ferryv1.ReasonAgentNotReporting
}

// warnedAfter: a warning stands after the write of cur (statusEvents
// recorded one, or one stood and the silence goes on).
func (s silenceSeen) warnedAfter(old, cur *ferryv1.AppGroupStatus) bool {
	return s.silent && (s.standing(old) || condition(cur, ferryv1.ConditionReady).Reason == ferryv1.ReasonAgentNotReporting)
}

// rolloutSeen is what the manager remembers of the events of an
// AppGroup's rollout of one revision: the nodes it has seen running it
// (updated), and whether it recorded its completion. A node that drops
// back and comes back records no NodeRolledOut or RolloutComplete a second
// time: while the revision is not proven, its processes crashed in the
// crash window, or its agent restarted (unstarted); at any time, its agent
// was silent for a while. A node that joins, or replaces another, is news.
// A halt starts them over. A RolloutHalted is recorded once for the nodes
// it names, until a node is seen updated anew (and again, naming them
// all, when it spreads to a node it did not name): one of them whose agent
// falls silent and is heard again, still halting it, is the same halt
// (while silent, its failure is not known, and RollingRestart may say
// another thing). A manager that just started takes what the status it
// finds shows to be recorded (seedRollout). A RolloutIncomplete is
// recorded once for the revision (until a halt starts them over): a node
// of the incomplete rollout whose agent falls silent (RollingRestart
// reads Unknown) and is heard again still leaves it incomplete.
type rolloutSeen struct {
	revision string
	nodes    map[string]bool
	complete bool
	// incomplete: a RolloutIncomplete was recorded of the revision.
	incomplete bool
	// halted are the nodes the last RolloutHalted recorded named.
	halted []string
	// floor, seeded from a status, is how many nodes were seen updated
	// though not which (the status counts them, it does not name them):
	// a node not in nodes is news only once more than floor are updated.
	floor int
	// haltSeen, seeded from a status: a RolloutHalted was recorded, of
	// nodes not known; any halt is that one until a node is news.
	haltSeen bool
}

// seedRollout is what a manager that remembers nothing of an AppGroup's
// rollout (it just started: a new leader, or one back from a crash) takes
// to have been recorded of it: what old, the status it finds, shows. The
// manager that wrote old recorded the events of its move to it: as many
// nodes updated as it counts, its completion, its halt. Without it, a node
// back from a silence after the restart was recorded rolled out again,
// and a halt back from its node's silence halted again.
//
// The halt old shows named the nodes that halt the rollout at the pass
// (halting) that RollingRestart's message in old names (namedIn): a halt
// that spreads to another node later, or spread while no manager ran (the
// pass moves the message), is then recorded again, naming them all, as
// the manager before would have (before, a new leader said nothing of
// either). Past maxListedNodes the message does not name them all ("and N
// more"): the nodes halting are then all taken as named, also one that
// took the place of an unnamed one, or joined them, while no manager ran;
// no RolloutHalted of it. From then on the nodes halting are compared
// (filter), not the message. When the pass moves RollingRestart off the
// halt, or to another revision, or no node halts it, the nodes named are
// not known: any halt is the one recorded until a node is news
// (haltSeen).
func seedRollout(old, cur *ferryv1.AppGroupStatus, halting []string) rolloutSeen {
	rr := condition(old, ferryv1.ConditionRollingRestart)
	seen := rolloutSeen{
		revision:   old.Revision,
		floor:      seededFloor(old),
		complete:   rr.Status == metav1.ConditionFalse && rr.Reason == ferryv1.ReasonRolloutComplete && old.Nodes.Total > 0,
		haltSeen:   rr.Reason == ferryv1.ReasonRolloutHalted,
		incomplete: rr.Reason == ferryv1.ReasonRolloutIncomplete,
	}
	if curRR := condition(cur, ferryv1.ConditionRollingRestart); seen.haltSeen && len(halting) > 0 &&
		cur.Revision == old.Revision && curRR.Reason == rr.Reason {
		seen.halted, seen.haltSeen = namedIn(rr.Message, halting), false
	}
	return seen
}

// namedIn are the nodes of halting (not empty) that msg, RollingRestart's
// message of a halt, names: those in the lists of nodes it is built from
// (haltedLists: those resisting, and each clause of how the target
// failed, a young death's and a failed spawn's), and in no other word of
// it: a node named "on" or "a", or as a word of the agent's reason it
// quotes, is not named by those. All of halting when msg may leave some
// out: a list past maxListedNodes ("and N more"), a message cut to
// maxMessage inside a list or before a clause that may follow, or one of
// another form (an older manager's). Not nil: a halt now on none of the
// nodes msg named is still a halt recorded, and its nodes are news
// (filter).
func namedIn(msg string, halting []string) []string {
	lists, ok := haltedLists(msg)
	if !ok {
		return slices.Clone(halting)
	}
	named := []string{}
	for _, n := range halting {
		if slices.ContainsFunc(lists, func(l []string) bool { return slices.Contains(l, n) }) {
			named = append(named, n)
		}
	}
	return named
}

// haltedLists are the lists of nodes in msg, a message of
// haltedCondition's or of the halt remembered: "... nodes updated: "
// then the nodes resisting (a nodeList before haltResisting), then, after
// "; " or alone, a clause per kind of failure (byFailure): "it " and what
// became of the spawns on a nodeList (contract.FailedHow, before the
// reason in parentheses), a young death's then a failed spawn's. Each
// list is read where the builder writes it, and only if nodeList writes
// it so again (nodeNames), so what the message quotes is never read as
// names. Not ok when msg is of no such form, or when a list is not all
// there: past maxListedNodes, or cut, or cut before the failed spawn's
// clause that may follow a young death's. (It read the first clause
// alone: a node named only in the second was taken, by a manager that
// had just started, as news of a spread, and RolloutHalted recorded
// again.)
func haltedLists(msg string) ([][]string, bool) {
	// A revision has no space: the first is the one the builder wrote.
	_, rest, ok := strings.Cut(msg, " nodes updated: ")
	if !ok {
		return nil, false
	}
	var lists [][]string
	// A list that is not one (nodeNames) is no list of those resisting:
	// words before haltResisting in the reason quoted.
	if list, after, ok := strings.Cut(rest, haltResisting); ok {
		if nodes, ok := nodeNames(list); ok {
			lists = append(lists, nodes)
			if rest, ok = strings.CutPrefix(after, "; "); !ok || !strings.HasPrefix(rest, spawnsFailed) {
				return lists, true
			}
		}
	}
	rest, ok = strings.CutPrefix(rest, spawnsFailed)
	if !ok {
		return nil, false
	}
	died, quoted, ok := failedList(rest, true)
	if ok {
		if died == nil {
			return nil, false
		}
		lists = append(lists, died)
		// A young death's reason is the agent's own words, which hold no
		// clause: the first failed spawn's after it is the next one.
		lead, _ := failedAround(false)
		at := strings.Index(quoted, "; "+spawnsFailed+lead)
		if at < 0 {
			return lists, !cutShort(msg)
		}
		// Unless the reason is an app's own words, which only an older
		// manager's message quotes here (one that read any reason saying
		// "after it was ready" as a young death; this one quotes the
		// agent's words alone, contract.YoungDeathReason): what it quotes
		// may hold such a clause, and then what follows its ")" up to it
		// is no note olderNote writes.
		if !endsClause(quoted[:at]) {
			return nil, false
		}
		rest = quoted[at+len("; "+spawnsFailed):]
	}
	failed, _, ok := failedList(rest, false)
	if !ok || failed == nil {
		return nil, false
	}
	return append(lists, failed), true
}

// endsClause: s, what follows a young death's clause's opening
// parenthesis up to the failed spawn's clause after it, is the reason,
// its closing parenthesis, then nothing or a note olderNote writes
// (isOlderNote), which holds no ")". (What an app's exception text quoted
// held, "after it was ready; it failed to spawn on node-x (y)", read as
// the second clause, node-x as named.)
func endsClause(s string) bool {
	at := strings.LastIndex(s, ")")
	return at >= 0 && isOlderNote(s[at+1:])
}

// isOlderNote: note is "" or one of olderNote's forms, each list of
// nodes in it one as nodeList writes it (nodeNames).
func isOlderNote(note string) bool {
	isList := func(list string) bool { _, ok := nodeNames(list); return ok }
	for _, none := range []string{noOlderServing, noOlderBetweenDeaths} {
		if rest, ok := strings.CutPrefix(note, none); ok {
			list, named := strings.CutPrefix(rest, " on ")
			return rest == "" || named && isList(list)
		}
	}
	if rest, ok := strings.CutPrefix(note, olderServingOn); ok {
		serving, none, both := strings.Cut(rest, olderNoneOn)
		return isList(serving) && (!both || isList(none))
	}
	return note == "" || note == olderServingThere
}

// failedList reads the list of a clause of how the target failed
// (contract.FailedHowIf(diedYoung, " on "+list), then " (" and the
// reason) at the start of clause: the nodes, nil if the list is not all
// there (nodeNames), and what follows its opening parenthesis. Not ok
// when clause is no clause of that kind.
func failedList(clause string, diedYoung bool) (nodes []string, quoted string, ok bool) {
	lead, tail := failedAround(diedYoung)
	after, ok := strings.CutPrefix(clause, lead)
	if !ok {
		return nil, "", false
	}
	list, quoted, ok := strings.Cut(after, tail+" (")
	if !ok {
		return nil, "", true
	}
	nodes, ok = nodeNames(list)
	if !ok {
		return nil, "", true
	}
	return nodes, quoted, true
}

// failedAround are the words of a clause of how the target failed
// (contract.FailedHowIf(diedYoung, " on "+list): "died on ", " soon after
// it was ready"; "failed to spawn on ", ""), either side of its list of
// nodes.
func failedAround(diedYoung bool) (lead, tail string) {
	lead, tail, _ = strings.Cut(contract.FailedHowIf(diedYoung, " on \x00"), "\x00")
	return lead, tail
}

// cutShort: msg was cut to maxMessage (truncate), so what followed is
// not there.
func cutShort(msg string) bool {
	return strings.HasSuffix(msg, "...") && len(msg) > maxMessage-len("...")-utf8.UTFMax
}

// The words of haltedCondition's message either side of its lists of
// nodes (haltedLists): those resisting come before haltResisting, and
// spawnsFailed comes before contract.FailedHow's words.
const (
	haltResisting = " resisting a deployment error"
	spawnsFailed  = "it "
)

// nodeNames are the names of list, as nodeList writes them, if it does:
// names have no space or comma, and nodeList writes them as list is.
// Not ok past maxListedNodes ("and N more"): the names it left out are
// not in list.
func nodeNames(list string) ([]string, bool) {
	names := strings.Split(list, ", ")
	if i := len(names) - 1; i >= 0 {
		if head, last, ok := strings.Cut(names[i], " and "); ok {
			names = append(names[:i], head, last)
		}
	}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " ,") {
			return nil, false
		}
	}
	return names, nodeList(names) == list
}

// seededFloor is how many nodes the manager that wrote old recorded
// rolled out: as many as old counts updated, once the target is proven;
// none before (rolledOutNodes).
func seededFloor(old *ferryv1.AppGroupStatus) int {
	if old.Revision == "" || old.ProvenRevision != old.Revision {
		return 0
	}
	return int(old.Nodes.Updated)
}

// alsoHalting names, for a halt past maxListedNodes nodes, those halting
// that the recorded event did not name: RollingRestart's message then ends
// "and N more", the same for another sixth node, and a note that said
// only that message would read as (and be counted by the recorder as) the
// event before it.
func alsoHalting(halting, named []string) string {
	if len(halting) <= maxListedNodes {
		return ""
	}
	return "; now also on " + nodeList(haltingAnew(halting, named))
}

// haltRecorded: cur's RollingRestart shows a halt of the revision s
// remembers, whose nodes s knows (a RolloutHalted recorded, or seeded
// from the message): the one case in which filter, given no event, can
// record one (a spread to a node not in s.halted).
func (s rolloutSeen) haltRecorded(cur *ferryv1.AppGroupStatus) bool {
	return s.halted != nil && s.revision == cur.Revision &&
		condition(cur, ferryv1.ConditionRollingRestart).Reason == ferryv1.ReasonRolloutHalted
}

// spreadOnly is what a pass whose status stands (cur, computed from in)
// records: the RolloutHalted of a halt that spread to a node not named
// (past maxListedNodes, a node that stops halting the rollout as another
// starts, seen in one pass, leaves RollingRestart's message, and the
// status, as they were: "and N more"), related to that node's pool
// (relateSpread), with what s moves to; no event and s as it is
// otherwise. Given no event, filter can record only that spread, so it
// runs only where one can be (haltRecorded, a node halting anew): most
// passes of most AppGroups end before, and filter (and the nodes
// halting) costs a pass through the reports and a copy of what s
// remembers.
func (s rolloutSeen) spreadOnly(cur *ferryv1.AppGroupStatus, in rollupInput) ([]statusEvent, rolloutSeen) {
	if !s.haltRecorded(cur) {
		return nil, s
	}
	halting := haltingNodes(in)
	if len(haltingAnew(halting, s.halted)) == 0 {
		return nil, s
	}
	evs, next := s.filter(cur, rolledOutNodes(in), halting, nil)
	if len(evs) == 0 {
		return nil, s
	}
	return relateSpread(evs, s.halted, halting, in.Reports), next
}

// haltingAnew are the nodes of halting that named does not hold.
func haltingAnew(halting, named []string) []string {
	return slices.DeleteFunc(slices.Clone(halting), func(n string) bool { return slices.Contains(named, n) })
}

// relateSpread gives the RolloutHalted of evs that records a halt spread
// (Again) the pool of the first node it names anew (halting, not named)
// as its related object. The recorder folds an event into the one before
// of the same AppGroup resourceVersion, reason and related object,
// keeping that one's note (statusEvent.Related): a spread recorded while
// the status stands (past maxListedNodes, a node that takes the place of
// another in one pass) has the resourceVersion of the RolloutHalted
// before it, and the node it names was lost.
func relateSpread(evs []statusEvent, named, halting []string, reports map[string]poolReport) []statusEvent {
	anew := haltingAnew(halting, named)
	if len(anew) == 0 {
		return evs
	}
	r, ok := reports[anew[0]]
	if !ok || r.Pool == nil {
		return evs
	}
	evs = slices.Clone(evs)
	for i, ev := range evs {
		if ev.Reason == EventRolloutHalted && ev.Again {
			evs[i].Related = r.Pool
		}
	}
	return evs
}

// filter drops from evs the NodeRolledOut, RolloutComplete,
// RolloutHalted and RolloutIncomplete events of the rollout that s has
// recorded already, and
// returns what to remember after the move of the status to cur; updated
// are the nodes cur counts rolled out (rolledOutNodes: those
// nodes.updated counts, once the target is proven), halting those its
// RollingRestart names as halting the rollout (haltingNodes). A move in
// which no node is updated that s has not seen already records neither of
// the first two. (By counts alone, a node updated whose agent fell silent,
// and was heard again, was recorded again: found by review.)
func (s rolloutSeen) filter(cur *ferryv1.AppGroupStatus, updated, halting []string, evs []statusEvent) ([]statusEvent, rolloutSeen) {
	if s.revision != cur.Revision {
		s = rolloutSeen{revision: cur.Revision}
	}
	s.nodes = maps.Clone(s.nodes)
	if s.nodes == nil {
		s.nodes = map[string]bool{}
	}
	news := slices.ContainsFunc(updated, func(n string) bool { return !s.nodes[n] }) && len(updated) > s.floor
	unnamed := slices.ContainsFunc(halting, func(n string) bool { return !slices.Contains(s.halted, n) })
	// A halt that spreads to nodes the recorded one did not name is
	// recorded again, naming them all: RollingRestart stayed halted, so
	// statusEvents saw no move (a new AppGroup's nodes report their failed
	// first spawns one by one, and the one event named the first node
	// alone). Not after a restart that found the halt moving (haltSeen):
	// the nodes named are not known.
	widened := false
	if rr := condition(cur, ferryv1.ConditionRollingRestart); rr.Reason == ferryv1.ReasonRolloutHalted && s.halted != nil && unnamed &&
		!slices.ContainsFunc(evs, func(ev statusEvent) bool { return ev.Reason == EventRolloutHalted }) {
		evs = append(slices.Clone(evs), statusEvent{Type: corev1.EventTypeWarning, Reason: EventRolloutHalted, Action: "Rollout",
			Note: rr.Message + alsoHalting(halting, s.halted), Again: true})
		widened = true
	}
	var out []statusEvent
	for _, ev := range evs {
		switch ev.Reason {
		case EventRolloutHalted:
			if s.haltSeen || s.halted != nil && !unnamed {
				continue // the same halt, back from a silence
			}
			clear(s.nodes) // those updated now were named
			s.complete, s.incomplete, s.floor = false, false, 0
			news = false
			if widened {
				// Still the same halt: a node of it that falls silent
				// and is heard again is no news.
				s.halted = slices.Concat(s.halted, slices.DeleteFunc(slices.Clone(halting), func(n string) bool { return slices.Contains(s.halted, n) }))
			} else {
				s.halted = slices.Clone(halting)
			}
		case EventNodeRolledOut:
			if !news {
				continue
			}
		case EventRolloutComplete:
			if s.complete && !news {
				continue
			}
			s.complete = true
		case EventRolloutIncomplete:
			if s.incomplete {
				continue
			}
			s.incomplete = true
		}
		out = append(out, ev)
	}
	if news {
		s.halted, s.haltSeen = nil, false // the rollout went on: a halt now is another
	}
	for _, n := range updated {
		s.nodes[n] = true
	}
	return out, s
}

// listenSeen is what the manager knows, at a status write, of the selected
// nodes whose proxy cannot listen: those it has warned of (warned, kept in
// memory from its last write), those the pass found (failing), and the
// selected nodes whose agent's word the pass could not take (unheard: no
// report, or a stale one), whose failure may go on unseen.
type listenSeen struct {
	warned  []string
	failing []listenFailure
	unheard []string
}

// listenEvents are the events cur's write deserves for the nodes whose
// proxy cannot listen: one ListenFailed naming the nodes newly failing,
// and one ListenRecovered once none fails after a warning (a warned node
// whose agent went silent is not taken to have recovered). A node's
// failure gets no status condition of the AppGroup's own (Ready shows the
// agent's words among other reasons), so the manager pairs the events
// from its memory, as it does silences.
func listenEvents(ag *ferryv1.AppGroup, cur *ferryv1.AppGroupStatus, l listenSeen) []statusEvent {
	if condition(cur, ferryv1.ConditionReady).Reason == ferryv1.ReasonDeleting {
		return nil
	}
	var fresh []listenFailure
	for _, f := range l.failing {
		if !slices.Contains(l.warned, f.node) {
			fresh = append(fresh, f)
		}
	}
	port := ag.Spec.Listen.Port
	switch {
	case len(fresh) > 0:
		return []statusEvent{{Type: corev1.EventTypeWarning, Reason: EventListenFailed, Action: "Listen",
			Note: listenFailedNote(port, fresh)}}
	case len(l.warned) > 0 && len(l.failing) == 0 && len(l.silentWarned()) == 0:
		// The port now, not the one warned of: listen.port may have moved
		// off the port that was taken.
		return []statusEvent{{Type: corev1.EventTypeNormal, Reason: EventListenRecovered, Action: "Listen",
			Note: fmt.Sprintf("No selected node reports its proxy unable to listen on listen.port %d any more", port)}}
	}
	return nil
}

// listenFailedNote names the nodes newly failing to listen on port, those
// that serve nothing apart from those that still serve on their old port,
// and quotes the first one's agent.
func listenFailedNote(port int32, fresh []listenFailure) string {
	deaf, moved := splitListenFailures(fresh)
	var parts []string
	if len(deaf) > 0 {
		parts = append(parts, fmt.Sprintf("%s cannot listen on listen.port %d, so no request reaches %s", proxiesOn(failingNodes(deaf)),
			port, plural(len(deaf), "its processes", "their processes")))
	}
	if len(moved) > 0 {
		serves := fmt.Sprintf("serves on its old port %d until it can", moved[0].servesOn)
		if len(moved) > 1 {
			serves = fmt.Sprintf("serve on their old port %d until they can", moved[0].servesOn)
		}
		for _, f := range moved {
			if f.servesOn != moved[0].servesOn {
				// Moved from different ports: each node's Ready says which.
				serves = "serve on their old ports until they can"
			}
		}
		parts = append(parts, fmt.Sprintf("%s cannot listen on listen.port %d and %s", proxiesOn(failingNodes(moved)), port, serves))
	}
	why := strings.TrimPrefix(fresh[0].message, "the proxy cannot listen: ")
	note := strings.Join(parts, "; ")
	return fmt.Sprintf("%s%s (%s: %s)", strings.ToUpper(note[:1]), note[1:], fresh[0].node, why)
}

// silentWarned are the warned nodes still selected whose agent the pass
// could not hear: their warning stands.
func (l listenSeen) silentWarned() []string {
	var nodes []string
	for _, n := range l.warned {
		if slices.Contains(l.unheard, n) {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// warnedAfter are the nodes warned of after the write of cur: those
// failing, and the warned ones not heard from.
func (l listenSeen) warnedAfter(cur *ferryv1.AppGroupStatus) []string {
	if condition(cur, ferryv1.ConditionReady).Reason == ferryv1.ReasonDeleting {
		return nil
	}
	return append(l.silentWarned(), failingNodes(l.failing)...)
}

// condition is a status's condition of type typ, or an empty one.
func condition(st *ferryv1.AppGroupStatus, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(st.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{Type: typ}
}

// flatten lists the errors joined (errors.Join, at any depth) into err.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// invalidRevision is the message of the condition that says the revision
// annotation is invalid (RollingRestart, or Ready when it never was
// valid), if one does.
func invalidRevision(st *ferryv1.AppGroupStatus) (string, bool) {
	for _, typ := range []string{ferryv1.ConditionRollingRestart, ferryv1.ConditionReady} {
		if c := meta.FindStatusCondition(st.Conditions, typ); c != nil && c.Reason == ferryv1.ReasonInvalidRevision {
			return c.Message, true
		}
	}
	return "", false
}
