package controllers

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Bounds on what a condition message carries.
const (
	// maxListedNodes is how many node names a message lists before "and N
	// more".
	maxListedNodes = contract.MaxListedNodes
	// maxOutputExcerpt is how many bytes of a failed spawn's output the
	// ResistingDeploymentError message carries: the end, where a traceback
	// names the error.
	maxOutputExcerpt = 512
	// maxMessage bounds every condition message, in bytes.
	maxMessage = 1000
	// maxReason bounds an agent's error quoted inside a message, in bytes.
	maxReason = 256
)

// rollupInput is everything an AppGroup's status is computed from. The
// roll-up functions below are pure: no client, no clock, so they are
// table-tested without a cluster.
type rollupInput struct {
	// AppGroup supplies the spec, the generation and the current status,
	// whose conditions keep their lastTransitionTime when unchanged.
	AppGroup *ferryv1.AppGroup
	// Target is the target revision; while the annotation is invalid, the
	// last valid one (the current status.revision).
	Target string
	// RevisionErr says what is wrong with the revision annotation.
	RevisionErr error
	// Nodes are the selected nodes, sorted.
	Nodes []string
	// Reports are the selected nodes' pools, by node, assessed at Now
	// against Target. A selected node may have none yet.
	Reports map[string]poolReport
	// Now is the time of the pass.
	Now time.Time
	// StaleAfter is the staleness bound, for messages.
	StaleAfter time.Duration
	// Clean is true when every phase of the pass succeeded; only then is
	// observedGeneration stamped.
	Clean bool
	// PortLost are the selected nodes where another AppGroup has the
	// listen.port, with its key.
	PortLost map[string]types.NamespacedName
	// Halt, LastRolledOut and Proven are what the status remembers of the
	// rollout (haltRecord, lastRolledOut, scope.remember), kept as they
	// are.
	Halt          *ferryv1.HaltedRollout
	LastRolledOut *ferryv1.RolledOutRevision
	Proven        string
	// Older: an older revision runs to return a node to (olderRuns: the
	// fallback walk over Nodes, Reports, LastRolledOut and Target), as
	// nodeStaysWhy asks of each node on the target that cannot spawn it.
	// Derived, like CrashLoop, by whoever builds the input (scope.input)
	// and before CrashLoop, which reads it; a test input derives both
	// (looped).
	Older bool
	// CrashLoop is the target's crash loop nothing returns its nodes from
	// (crashLoopOf), nil when there is none: derived from the fields
	// above by whoever builds the input (scope.remember, which reads it
	// again from the halt it records), not by each reader, so that the
	// status field, RollingRestart's note and what halts or holds the
	// rollout (loopsOn) read one value.
	CrashLoop *ferryv1.CrashLoop
	// Unserved are the selected nodes left without a pool while the
	// revision annotation is invalid: servedRevision found nothing known
	// to work to start them on.
	Unserved []string
	// AwaitingDrain are the selected nodes without a pool because their
	// previous one still drains.
	AwaitingDrain []string
	// Undrained are the reports of those previous pools whose agent is
	// silent (Stale) or never reported them (Unheard): nothing may ever
	// drain them.
	Undrained []poolReport
	// Taken is the AppGroup's Service, when an object not its own has its
	// name (scope.taken).
	Taken []nameTaken
	// PoolTaken are the selected nodes whose pool cannot be made: other
	// ProcessPools have both its names.
	PoolTaken []poolNamesTaken
}

// computeStatus is the AppGroup's new status. It starts from a copy of the
// current one so that meta.SetStatusCondition keeps lastTransitionTime
// where a condition's status did not change.
func computeStatus(in rollupInput) ferryv1.AppGroupStatus {
	st := *in.AppGroup.Status.DeepCopy()
	st.Revision = in.Target
	setCounts(&st, in)
	st.HaltedRollout, st.LastRolledOut, st.ProvenRevision = in.Halt, in.LastRolledOut, in.Proven
	st.CrashLoop = publishedLoop(in.CrashLoop)
	setConditions(&st, in.AppGroup.Generation, in.Now, readyCondition(in), rollingRestartCondition(in), resistingCondition(in))
	if in.Clean {
		st.ObservedGeneration = in.AppGroup.Generation
	}
	return st
}

// setCounts sets st's process and node counts from in's reports.
func setCounts(st *ferryv1.AppGroupStatus, in rollupInput) {
	st.Processes, st.Nodes = processCounts(in), nodeCounts(in)
	st.ReadyProcesses = fmt.Sprintf("%d/%d", st.Processes.Ready, st.Processes.Total)
	st.ReadyNodes = fmt.Sprintf("%d/%d", st.Nodes.Ready, st.Nodes.Total)
}

// setConditions sets conds on st, observed at generation; a condition
// whose status did not move keeps its lastTransitionTime.
func setConditions(st *ferryv1.AppGroupStatus, generation int64, now time.Time, conds ...metav1.Condition) {
	for _, c := range conds {
		c.ObservedGeneration = generation
		c.LastTransitionTime = lastTransition(now)
		meta.SetStatusCondition(&st.Conditions, c)
	}
}

// processCounts sums the pools' process counts. Only the processes a
// request can reach count as ready: those of a node that serves (Serving,
// as the EndpointSlice goes by). A stale pool's processes, those of a pool
// whose agent stops, and those behind a proxy that cannot listen on
// listen.port (and serves on no old port) count in total but not as
// ready: READY said 4/4 while no request reached half of them. Only
// processes of pools that took up the target count as updated (a pool's
// own "updated" is relative to its spec.revision, which may be an earlier
// one). They count the processes that run: a death that leaves a pool of
// one process with none moves its total and updated to 0 until the
// replacement spawns, as it must (those counts say what runs, and the
// process is gone); nodes.updated, which says where the rollout stands,
// does not move with it in a crash loop (updatedNodes).
func processCounts(in rollupInput) ferryv1.ProcessCounts {
	var pc ferryv1.ProcessCounts
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		if !ok || !r.Reported {
			continue
		}
		c := r.Pool.Status.ProcessCounts
		pc.Total += c.Total
		if r.Serving {
			pc.Ready += c.Ready
		}
		if r.OnTarget && r.Pool.Status.ObservedRevision == in.Target {
			pc.Updated += c.Updated
		}
	}
	return pc
}

// nodeCounts counts the selected nodes, those whose pool is ready, and
// those whose every process runs the target.
func nodeCounts(in rollupInput) ferryv1.NodeCounts {
	nc := ferryv1.NodeCounts{Total: int32(len(in.Nodes)), Updated: int32(len(updatedNodes(in)))}
	for _, node := range in.Nodes {
		if r, ok := in.Reports[node]; ok && r.Ready {
			nc.Ready++
		}
	}
	return nc
}

// updatedNodes are the selected nodes whose every process runs the
// target: those nodes.updated counts. Also a node in a crash loop
// nothing returns it from (loopsOn), as RollingRestart counts it
// (sortRollout: a loop reads as between two deaths at every turn): a
// death that leaves none of the target running there (one process) is
// no spawn failure of a node whose restart is over, and not counting it
// then, and again once its replacement booted, moved nodes.updated (a
// status write, `kubectl ferry status`'s and `restart --wait`'s count)
// at each death, where RollingRestart's message did not move.
func updatedNodes(in rollupInput) []string {
	var nodes []string
	for _, node := range in.Nodes {
		if r, ok := in.Reports[node]; ok && r.OnTarget && (r.Updated || loopsOn(in.CrashLoop, r)) {
			nodes = append(nodes, node)
		}
	}
	return nodes
}

// rolledOutNodes are the nodes the rollout's events count rolled out
// (NodeRolledOut): the updated ones (updatedNodes) once the target is
// proven, none before. Until then the next nodes wait for the first ones'
// new processes to live the crash window (settle): an app that boots and
// then dies does so in it, and its node is returned to what worked
// (NodeReturned). Counted as it was updated, such a node was recorded
// rolled out a second or two before it was returned.
func rolledOutNodes(in rollupInput) []string {
	if in.Target == "" || in.Proven != in.Target {
		return nil
	}
	return updatedNodes(in)
}

// readyCondition is Ready, with three-valued logic: False when a selected
// node is known not to be ready (or has not reported yet), else Unknown when
// an agent went silent, else True.
func readyCondition(in rollupInput) metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionReady}
	if in.RevisionErr != nil && in.Target == "" {
		// Never a valid revision: nothing was rolled out to be ready. (An
		// invalid value after a valid one leaves what runs as it is, and
		// Ready says how that is: RollingRestart says the value is wrong.)
		return alsoTaken(withStatus(c, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision,
			in.RevisionErr.Error()+"; nothing is rolled out until it is fixed"), in.Taken, in.PoolTaken)
	}
	if len(in.PortLost) > 0 {
		return alsoTaken(withStatus(c, metav1.ConditionFalse, ferryv1.ReasonPortConflict,
			portConflictMessage(in.AppGroup.Spec.Listen.Port, in.PortLost)), in.Taken, in.PoolTaken)
	}
	pools := poolsReadyCondition(in, c)
	if pools.Reason == ferryv1.ReasonNoNodes {
		// No pool for the Service to reach: NoNodes is what to fix first.
		return alsoTaken(pools, in.Taken, in.PoolTaken)
	}
	pools.Message += unlistedMessage(in)
	if len(in.Taken) > 0 {
		// The pools run on, but no request reaches them through the
		// Service: say both.
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonNameTaken,
			nameTakenMessage(in.Taken)+thePools+pools.Message)
	}
	return pools
}

// takenAlso leads what Ready's message says of the names taken
// (takenMessage) after a reason that ranks above NameTaken
// (InvalidRevision, PortConflict, NoNodes): the names are still in the
// status while that reason shows, so their events pair (namesTaken), and
// a user who fixes that reason knows what comes next.
const takenAlso = ". Also: "

// alsoTaken adds to c's message, after takenAlso, which names are taken,
// if any: the Service's (taken), the pools' (poolTaken;
// only PortConflict has pools made beside it); c's own message is cut
// first if the two would not fit.
func alsoTaken(c metav1.Condition, taken []nameTaken, poolTaken []poolNamesTaken) metav1.Condition {
	words := takenMessage(taken, poolTaken)
	if words == "" {
		return c
	}
	also := takenAlso + words
	c.Message = truncate(truncate(c.Message, max(maxMessage-len(also), maxMessage/2))+also, maxMessage)
	return c
}

// takenMessage says which names of the AppGroup are taken, as NameTaken
// in Ready does: the Service's (nameTakenMessage),
// then the pools' (poolNamesTakenMessage, after "The pools: " when both
// are); "" when none is.
func takenMessage(taken []nameTaken, poolTaken []poolNamesTaken) string {
	switch {
	case len(poolTaken) == 0 && len(taken) == 0:
		return ""
	case len(poolTaken) == 0:
		return nameTakenMessage(taken)
	case len(taken) == 0:
		return poolNamesTakenMessage(poolTaken)
	}
	return nameTakenMessage(taken) + thePools + poolNamesTakenMessage(poolTaken)
}

// splitTaken parts Ready's message into what its reason says and what it
// says of the names taken after it (alsoTaken; "" when nothing).
func splitTaken(ready metav1.Condition) (own, taken string) {
	switch ready.Reason {
	case ferryv1.ReasonInvalidRevision, ferryv1.ReasonPortConflict, ferryv1.ReasonNoNodes:
		if i := strings.LastIndex(ready.Message, takenAlso); i >= 0 {
			return ready.Message[:i], ready.Message[i+len(takenAlso):]
		}
	}
	return ready.Message, ""
}

// namesTaken: st says that the name of the AppGroup's Service, or those
// of a node's pool, are taken, in Ready's reason or after a reason that
// ranks above it.
func namesTaken(st *ferryv1.AppGroupStatus) bool {
	ready := condition(st, ferryv1.ConditionReady)
	_, taken := splitTaken(ready)
	return ready.Reason == ferryv1.ReasonNameTaken || taken != ""
}

// takenKinds are the kinds of names that ready, as readyCondition writes
// it, says are taken: ag's Service's (service), and some node's pool's
// (pools). It reads back the words what it says of each begins with
// (takenLead, noPoolOn and poolsTakenWords), which the messages are built
// from, and nothing else: a change of the words changes both (and
// NameTakenResolved's note, which says what became of each kind, follows).
// A status of an older manager's that named an EndpointSlice names
// neither kind.
func takenKinds(ag *ferryv1.AppGroup, ready metav1.Condition) (service, pools bool) {
	_, taken := splitTaken(ready)
	if taken == "" && ready.Reason == ferryv1.ReasonNameTaken {
		taken = ready.Message
	}
	rest, service := strings.CutPrefix(taken, takenLead("Service", contract.ServiceName(ag.Name)))
	if service {
		// What follows says how the pools are (readyCondition), or which
		// pools' names are taken too (takenMessage): the same words
		// tell them apart.
		_, rest, _ = strings.Cut(rest, thePools)
	}
	for _, n := range []int{1, 2} {
		if nodes, ok := strings.CutPrefix(rest, noPoolOn(n)); ok {
			// A node's name holds no ": ", which ends the list of them.
			i := strings.Index(nodes, ": ")
			return service, i >= 0 && strings.HasPrefix(nodes[i:], poolsTakenWords(n))
		}
	}
	return service, false
}

// thePools leads how the pools are, after what Ready says of the Service
// taken (readyCondition, takenMessage).
const thePools = ". The pools: "

// takenLead is how nameTakenMessage begins: the object in the way.
func takenLead(kind, name string) string { return kind + " " + name + " is not this AppGroup's" }

// noPoolOn leads what is said of n nodes that get no pool: then their
// list, and, when poolNamesTakenMessage says it, poolsTakenWords.
func noPoolOn(n int) string { return plural(n, "No pool on ", "No pools on ") }

// poolsTakenWords follow the list of the n nodes poolNamesTakenMessage
// names: what tells it from another message that begins with noPoolOn
// (the InvalidRevision of nodes with no revision to start on).
func poolsTakenWords(n int) string {
	return plural(n, ": ProcessPools ", ": the names each would have are other ProcessPools' ")
}

// nameTakenMessage says which of the AppGroup's objects has a name taken
// by another, what it costs, and what to do: the Service, the one such
// object a pass leaves unwritten (scope.taken; an EndpointSlice's
// endpoints go into another), and with it every request through it.
func nameTakenMessage(taken []nameTaken) string {
	t := taken[0]
	return takenLead(t.kind, t.name) + " (the manager never takes over an object it did not make), " +
		"so no request reaches the pools through the AppGroup's Service: rename or delete that " + t.kind +
		", and the manager makes the AppGroup's own"
}

// poolNamesTakenMessage says which nodes get no pool because other
// ProcessPools have the names it would have, which ones (of the first
// node, when several), and what to do.
func poolNamesTakenMessage(taken []poolNamesTaken) string {
	nodes := make([]string, 0, len(taken))
	for _, t := range taken {
		nodes = append(nodes, t.node)
	}
	first := taken[0]
	names := first.names[0] + " and " + first.names[1]
	lead := noPoolOn(len(nodes)) + nodeList(nodes) + poolsTakenWords(len(nodes)) // takenKinds reads it back
	if len(taken) == 1 {
		return lead + names + ", the names it would have, are not this AppGroup's " +
			"(the manager never takes over an object it did not make): delete either, and the manager makes the AppGroup's own"
	}
	return lead + "(the manager never takes over an object it did not make), on " + first.node + " ProcessPools " + names +
		": delete either of each node's, and the manager makes the AppGroup's own"
}

// unlistedMessage names the selected nodes whose agents report an
// address desiredEndpoints leaves out of the Service
// (contract.UnlistedAddress), with the first one's address, why, and what
// to set: such pools run and are Ready, and without it a Service that
// routes nowhere said nothing (an agent run by hand reports its default
// --bind-address, 0.0.0.0). A pool with no address yet is not named.
func unlistedMessage(in rollupInput) string {
	var nodes []string
	var first string
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		if !ok || !r.Reported || r.Pool.Status.Address == "" {
			continue
		}
		if why := unlistedWhy(r.Pool.Status.Address); why != "" {
			if first == "" {
				first = why
			}
			nodes = append(nodes, node)
		}
	}
	if len(nodes) == 0 {
		return ""
	}
	if len(nodes) == 1 {
		return ". Not behind the Service: " + nodes[0] + " (its agent reports " + first +
			": set its --advertise-address, agent.advertiseAddress in the chart, to an IPv4 address of the node)"
	}
	return ". Not behind the Service: " + nodeList(nodes) + " (their agents report addresses it cannot list, " +
		nodes[0] + "'s " + first + ": set each agent's --advertise-address, agent.advertiseAddress in the chart, " +
		"to an IPv4 address of its node)"
}

// unlistedWhy says which address a pool reports and why the Service
// leaves it out ("0.0.0.0, the unspecified address; ..."), or "" when the
// Service lists it.
func unlistedWhy(addr string) string {
	ip := reportedIP(addr)
	what := contract.UnlistedAddress(ip)
	switch {
	case what == "":
		return ""
	case ip == nil:
		return strconv.Quote(addr) + ", " + what
	case ip.To4() == nil:
		return ip.String() + ", " + what + "; Ferry lists IPv4 addresses only in the Service's EndpointSlices"
	}
	return ip.String() + ", " + what + ", which the API server takes in no EndpointSlice"
}

// noNodesMessage is Ready's message when selector matches no node: it
// names the labels a node needs, so the user can label one or fix a typo
// in the selector.
func noNodesMessage(selector map[string]ferryv1.LabelValue) string {
	if len(selector) == 0 {
		return "No node matches spec.nodeSelector: it is empty and selects every node, and the cluster has none; " +
			"the app runs once a node joins"
	}
	pairs := make([]string, 0, len(selector))
	for _, k := range slices.Sorted(maps.Keys(selector)) {
		pairs = append(pairs, k+"="+string(selector[k]))
	}
	return fmt.Sprintf("No node matches spec.nodeSelector (%s): label the nodes to run the app on "+
		"(kubectl label node NODE %s), or change spec.nodeSelector",
		strings.Join(pairs, ","), strings.Join(pairs, " "))
}

// poolsReadyCondition is Ready as the pools make it: NoNodes, or how the
// selected nodes' pools are.
func poolsReadyCondition(in rollupInput, c metav1.Condition) metav1.Condition {
	if len(in.Nodes) == 0 {
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonNoNodes, noNodesMessage(in.AppGroup.Spec.NodeSelector))
	}
	var pending, poolless, notReady, stale []string
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		switch {
		case !ok && slices.Contains(in.Unserved, node): // only while RevisionErr
			poolless = append(poolless, node)
		case !ok || !r.Reported:
			pending = append(pending, node)
		case r.Stale:
			stale = append(stale, node)
		case !r.Ready:
			notReady = append(notReady, node)
		}
	}
	switch {
	case len(in.PoolTaken) > 0:
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonNameTaken, poolNamesTakenMessage(in.PoolTaken))
	case len(poolless) > 0:
		// servedRevision found nothing known to work to start them on.
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision,
			plural(len(poolless), "No pool on ", "No pools on ")+nodeList(poolless)+
				": no node serves a revision to start "+plural(len(poolless), "it", "them")+" on, and "+
				in.RevisionErr.Error())
	case len(pending) > 0:
		msg := pendingMessage(pending, in.AwaitingDrain)
		if unheard := unheardOf(in, pending); len(unheard) > 0 {
			msg += ". " + unheardMessage(in, unheard)
		}
		msg += undrainedMessage(in)
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonPoolsPending, msg)
	case len(notReady) > 0:
		msg := fmt.Sprintf("%d/%d nodes ready; not ready: %s%s",
			len(in.Nodes)-len(notReady)-len(stale), len(in.Nodes), nodeList(notReady), notReadyDetail(in, notReady))
		if len(stale) > 0 {
			// Counted among those not ready: say which, and why.
			msg += ". " + staleMessage(in, stale)
		}
		return withStatus(c, metav1.ConditionFalse, notReadyReason(in, notReady), msg)
	case len(stale) > 0:
		return withStatus(c, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, staleMessage(in, stale))
	}
	pc := processCounts(in)
	return withStatus(c, metav1.ConditionTrue, ferryv1.ReasonProcessesReady,
		fmt.Sprintf("%d/%d nodes ready, %d/%d processes ready", len(in.Nodes), len(in.Nodes), pc.Ready, pc.Total))
}

// notReadyReason is Ready's reason while nodes are not ready: ListenFailed
// when on every one of them it is only that the proxy cannot listen (as
// many processes as minProcesses are ready there), else ProcessesNotReady.
func notReadyReason(in rollupInput, notReady []string) string {
	deaf := listenFailed(in)
	for _, node := range notReady {
		p := in.Reports[node].Pool
		if !slices.Contains(deaf, node) || p.Status.ProcessCounts.Ready < max(p.Spec.Template.Pool.MinProcesses, 1) {
			return ferryv1.ReasonProcessesNotReady
		}
	}
	return ferryv1.ReasonListenFailed
}

// notReadyDetail is why the first of the nodes not ready is not, in
// parentheses, led by its name when several are not ready.
func notReadyDetail(in rollupInput, notReady []string) string {
	why := poolNotReadyDetail(in.Reports[notReady[0]])
	if len(notReady) == 1 {
		return " (" + why + ")"
	}
	return " (" + notReady[0] + ": " + why + ")"
}

// poolNotReadyDetail says why a pool is not ready: its agent's own word
// when it gave one (the proxy cannot listen, spawns fail and why), else
// its counts.
func poolNotReadyDetail(r poolReport) string {
	if c := meta.FindStatusCondition(r.Pool.Status.Conditions, ferryv1.ConditionReady); c != nil &&
		c.Status != metav1.ConditionTrue && c.Message != "" {
		return truncate(c.Message, maxMessage/2)
	}
	pc := r.Pool.Status.ProcessCounts
	return fmt.Sprintf("%d/%d processes ready, minProcesses %d", pc.Ready, pc.Total, r.Pool.Spec.Template.Pool.MinProcesses)
}

// rollingRestartCondition is RollingRestart: True while a node restarts
// onto the target or waits for its wave, or the new processes of a target
// not proven yet live the crash window (settling), False when the rollout completed or
// halted, Unknown when only a silent agent stands between the rollout and
// its end.
//
// A node on the target whose processes all run it counts as done here even
// when some are not ready (a pool spawning to absorb a spike is not
// restarting); the next wave still waits for it to be ready (planWave).
func rollingRestartCondition(in rollupInput) metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionRollingRestart}
	if done, ok := nothingToRoll(c, in); ok {
		return done
	}
	n := sortRollout(in)
	switch {
	case len(n.resisting)+len(n.failing) > 0:
		return haltedCondition(c, in, n)
	case haltRemembered(in):
		// Between two of its retries, the node reads as the failing case.
		// Its agent said to retry it only where it is heard from: of a
		// silent one, whereNowNote says so instead.
		r, ok := in.Reports[in.Halt.Node]
		retrying := 0
		if ok && r.Reported && !r.Stale && r.OnTarget && len(retriedOf(in, []string{in.Halt.Node})) > 0 {
			retrying = 1 // the node the message names
		}
		remedy := haltRemedy(retrying, waitOn(in, in.Halt.Node, in.Halt.Reason).until("there"))
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
			fmt.Sprintf("Rollout of revision %s halted at %d/%d nodes updated: it %s (%s)%s; %s",
				in.Target, n.updated, len(in.Nodes), contract.FailedHow(in.Halt.Reason, " on "+in.Halt.Node),
				cutMiddle(in.Halt.Reason, maxReason), whereNowNote(in), remedy))
	case len(n.restarting) > 0:
		msg := restartProgressMessage(in, n.restarting, n.updated)
		if len(n.waiting) > 0 {
			msg += fmt.Sprintf("; %d %s", len(n.waiting), plural(len(n.waiting), "node waits for its wave", "nodes wait for their wave"))
		}
		return withStatus(c, metav1.ConditionTrue, rollingReason(in, n.restarting), msg+undrainedMessage(in))
	case len(n.waiting) > 0:
		return withStatus(c, metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, waitingMessage(in, n))
	case len(n.settling) > 0 || in.Proven != in.Target && len(n.notRolledOut) > 0:
		// Every node has the target, which has not run the crash window
		// through anywhere yet (one node, or a wave of all of them): its
		// new processes may still die in it, and their node be returned
		// (NodeReturned). Complete then, the rollout read RolloutComplete
		// seconds before the halt, and `kubectl ferry restart --wait`
		// reported the revision rolled out; so too while one of them,
		// dead young, is replaced (not every process ready). Not
		// RestartingBlocking nor RollingOut: no node restarts any more,
		// and a Blocking AppGroup's new processes serve (read as "my app
		// is down" before).
		return withStatus(c, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
			fmt.Sprintf("%d/%d nodes updated%s", n.updated, len(in.Nodes), settlingNote(in, n))+undrainedMessage(in))
	case len(n.stale)+len(n.silentWaiting)+len(n.unheard) > 0:
		msg := silentMessage(in, slices.Concat(n.stale, n.unheard, n.silentWaiting))
		if len(n.silentWaiting) > 0 {
			msg += fmt.Sprintf("; not given revision %s while silent: %s, once heard again", in.Target, nodeList(n.silentWaiting))
		}
		return withStatus(c, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, msg)
	case len(n.incomplete) > 0:
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete, incompleteMessage(in, n))
	}
	return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, completeMessage(in, n))
}

// rollingReason is RollingRestart's reason while the restarting nodes
// restart: RestartingBlocking when one of them runs a Blocking restart
// (its app down there meanwhile), RollingOut otherwise.
func rollingReason(in rollupInput, restarting []string) string {
	for _, node := range restarting {
		if restartsBlocking(in, node) {
			return ferryv1.ReasonRestartingBlocking
		}
	}
	return ferryv1.ReasonRollingOut
}

// restartsBlocking: node's restart is a Blocking one. Its agent's word
// whenever it reports a restart under way (its pool's RollingRestart
// reason), onto the target or an earlier revision it goes on from with
// the same strategy (the target not taken up yet): the agent keeps the
// strategy its restart began with, so an AppGroup whose strategy changed
// since does not change what runs there. With no restart reported (its
// pool not made, or its agent idle), the strategy the agent will start
// one with: the AppGroup's, which its pool is given.
func restartsBlocking(in rollupInput, node string) bool {
	if r, ok := in.Reports[node]; ok && r.Restarting {
		rr := meta.FindStatusCondition(r.Pool.Status.Conditions, ferryv1.ConditionRollingRestart)
		return rr != nil && rr.Reason == ferryv1.ReasonRestartingBlocking
	}
	return in.AppGroup.Spec.Restart.Strategy == ferryv1.RestartBlocking
}

// incompleteMessage is RollingRestart when nodes finished their restart
// without replacing every process (resistDeploymentErrors false): where,
// what to do, and why, as the first of those nodes' agent says (its last
// failed spawn of the target, else its own condition's message). The
// setting is the AppGroup's now: turned on since the restart, the message
// says it was false then (contract.NotResisted), not that it is.
func incompleteMessage(in rollupInput, n rolloutNodes) string {
	msg := fmt.Sprintf("Revision %s runs on %d/%d nodes; on %s some processes could not be replaced and keep "+
		"serving an older revision (%s); change the %s annotation or the app to try again",
		in.Target, n.updated, len(in.Nodes), nodeList(n.incomplete),
		contract.NotResisted(contract.ResistanceAsked(&in.AppGroup.Spec.Restart), in.Target), ferryv1.RevisionAnnotation)
	r := in.Reports[n.incomplete[0]]
	if e := r.Pool.Status.LastSpawnError; e != nil && e.Revision == in.Target {
		return truncate(fmt.Sprintf("%s. On %s, revision %s %s (%s)%s", msg, r.Node, e.Revision,
			contract.FailedHow(e.Reason, ""), cutMiddle(e.Reason, maxReason), outputSuffix(e)), maxMessage)
	}
	if rr := meta.FindStatusCondition(r.Pool.Status.Conditions, ferryv1.ConditionRollingRestart); rr != nil && rr.Message != "" {
		return truncate(fmt.Sprintf("%s. %s: %s", msg, r.Node, rr.Message), maxMessage)
	}
	return msg
}

// outputSuffix is ". Output: " and the end of the failed spawn's output,
// or nothing when it wrote none.
func outputSuffix(e *ferryv1.SpawnError) string {
	if out := outputExcerpt(e.Output, maxOutputExcerpt); out != "" {
		return ". Output: " + out
	}
	return ""
}

// nothingToRoll is RollingRestart when there is no rollout to speak of: no
// node selected, or no valid revision (ok is then true).
func nothingToRoll(c metav1.Condition, in rollupInput) (metav1.Condition, bool) {
	switch {
	case len(in.Nodes) == 0 && len(in.PortLost) > 0:
		// Not RolloutComplete, as with no node: nothing was rolled out.
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonPortConflict,
			"No node to roll: another AppGroup has listen.port on every selected node, so there is nothing to roll out (see Ready)"), true
	case len(in.Nodes) == 0:
		// Not RolloutComplete: nothing was rolled out anywhere.
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonNoNodes,
			"No node is selected, so there is nothing to roll out (see Ready)"), true
	case in.Target == "":
		// The annotation has never been valid: there is nothing to roll.
		msg := "No valid revision to roll out yet"
		if in.RevisionErr != nil {
			msg = in.RevisionErr.Error() + "; nothing is rolled out until it is fixed"
		}
		return withStatus(c, metav1.ConditionUnknown, ferryv1.ReasonInvalidRevision, msg), true
	case in.RevisionErr != nil:
		// The last valid revision stays the target; no wave starts.
		// No counts in it: the message is the event's, once per change.
		// The nodes a rollout had yet to reach are named (they stay so
		// until the fix): RESTARTING reads False, and "stays the target"
		// alone read as if the rollout had gone on to them.
		msg := fmt.Sprintf("%s; revision %s stays the target until it is fixed", in.RevisionErr.Error(), in.Target)
		if behind := offTarget(in); len(behind) > 0 {
			msg += fmt.Sprintf("; %s, not on it yet, %s no revision until then", nodeList(behind), plural(len(behind), "is given", "are given"))
		}
		return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, msg), true
	}
	return c, false
}

// offTarget are the selected nodes whose pool has not been given the
// target.
func offTarget(in rollupInput) []string {
	var nodes []string
	for _, node := range in.Nodes {
		if r, ok := in.Reports[node]; ok && !r.OnTarget {
			nodes = append(nodes, node)
		}
	}
	return nodes
}

// rolloutNodes are the selected nodes sorted by where the rollout of the
// target stands on each (sortRollout): each node is in one list at most
// (settling nodes are also notRolledOut).
type rolloutNodes struct {
	restarting, notRolledOut, settling, waiting, silentWaiting []string
	resisting, failing, stale, incomplete, joining             []string
	// unheard are on the target, never reported since their pool was
	// made (Unheard): unlike stale ones, they hold no wave (planWave).
	unheard []string
	// updated counts the nodes on the target with every process on it.
	updated int
}

// sortRollout sorts the selected nodes by where the rollout stands on
// each.
func sortRollout(in rollupInput) rolloutNodes {
	var n rolloutNodes
	// The target ran rolled out on every selected node: a node that cannot
	// spawn it now (its agent restarted while a database is down) halts
	// no rollout (haltRecord records none); Ready says what is wrong.
	rolledOutEverywhere := in.LastRolledOut != nil && in.LastRolledOut.Revision == in.Target
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		switch {
		case ok && r.ResistsTarget:
			n.resisting = append(n.resisting, node)
		case ok && loopsOn(in.CrashLoop, r):
			// A crash loop nothing returns the node from reads one way
			// at every turn of it (crashNote): as between two deaths,
			// every process on the target and, the target not proven,
			// not rolled out. Not failing while a death leaves none of
			// it running (one process), nor restarting while the
			// replacement boots (unstarted): the loop read RolloutHalted
			// at each death, "the rollout goes on once it starts there"
			// when it starts and dies, and ProvingRevision again at each
			// replacement ready, each flip a status write and a halt
			// seen anew. Nothing halts there that a death starts or a
			// replacement ends: the node stays on the target, its agent
			// respawns it, and the next wave waits for it either way
			// (planWave) until a process of it lives the crash window.
			// The target proven, no crash window is lived: the next wave
			// waits for the node while not every process of it is ready
			// (RolledOut), and a wave waiting names it then.
			if in.Proven != in.Target || !r.RolledOut {
				n.notRolledOut = append(n.notRolledOut, node)
			}
			n.updated++
			continue
		case ok && r.FailsTarget && rolledOutEverywhere:
		case ok && r.FailsTarget:
			n.failing = append(n.failing, node)
		case ok && !r.OnTarget && (r.Stale || r.Unheard):
			// Not given the target while silent (planWave): it holds no
			// other node back, and only it stands between the rollout
			// and its end once the others are done.
			n.silentWaiting = append(n.silentWaiting, node)
		case ok && !r.OnTarget:
			n.waiting = append(n.waiting, node)
		case ok && r.Stale:
			n.stale = append(n.stale, node)
		case ok && r.Incomplete:
			n.incomplete = append(n.incomplete, node)
		case rolledOutEverywhere && (!ok || !r.Reported):
			// A node that joined once the target ran everywhere: nothing
			// restarts there (its pool starts on the target), so no
			// rollout is in progress, and none completes when it
			// reports. Ready says how its processes come up.
			n.joining = append(n.joining, node)
		case ok && r.Unheard:
			n.unheard = append(n.unheard, node)
		case !ok || !r.Updated:
			n.restarting = append(n.restarting, node)
		case !r.RolledOut || r.SettlesIn > 0:
			// Settling: rolled out but for the crash window, which its
			// new processes may yet die in (settle); whether or not
			// another node waits for it, the rollout is not over.
			n.notRolledOut = append(n.notRolledOut, node)
			if r.SettlesIn > 0 {
				n.settling = append(n.settling, node)
			}
		}
		if ok && r.OnTarget && r.Updated {
			n.updated++
		}
	}
	return keptFailing(in, n)
}

// keptFailing is n with the nodes between two of their agents' tries of
// the target (betweenTries) among the failing ones, in node order, while
// the rollout halts: a node resists it or fails to spawn it, or a halt of
// it is remembered. Its agent retries the target there, and a retry's
// process spawning or ready for its seconds does not end the failure:
// listed only at its failures, the node came and went from the halt's
// message and halting nodes at each retry, a status write, a `restart
// --wait` line and maybe a spread event each time, where only the
// remembered halt's one node was kept steady. On the remembered halt
// alone, not only while its node is between tries: with that node lasted
// or no longer selected, another node between tries read as the halt's
// node alone (the remembered branch), then at its next failure as itself
// alone.
func keptFailing(in rollupInput, n rolloutNodes) rolloutNodes {
	if len(n.resisting)+len(n.failing) == 0 && !haltRemembered(in) {
		return n
	}
	var failing []string
	for _, node := range in.Nodes {
		switch {
		case slices.Contains(n.failing, node):
		case betweenTries(in, node):
			n = withoutNode(n, node)
		default:
			continue
		}
		failing = append(failing, node)
	}
	n.failing = failing
	return n
}

// withoutNode is n with node taken out of the lists a node between two
// tries may be in (each node is in one at most). Updated still counts it
// where every process of it runs the target (a retry's among them), as
// the remembered halt's message counted its node.
func withoutNode(n rolloutNodes, node string) rolloutNodes {
	is := func(s string) bool { return s == node }
	n.restarting = slices.DeleteFunc(n.restarting, is)
	n.notRolledOut = slices.DeleteFunc(n.notRolledOut, is)
	n.settling = slices.DeleteFunc(n.settling, is)
	return n
}

// betweenTries: node is on the target, its agent heard from, not rolled
// out, and it stays listed among the failing nodes (keptFailing) for as
// long as its failure lasts, which a retry's process spawning or ready
// does not end. The remembered halt's node so, whatever else: the halt
// names it until it rolls out (haltRecord), a process of the target
// lasted there or not. Another node while the target failed there last
// (its last spawn error, which stays until the next one, is of the
// target), by how: where its processes died soon after they were ready,
// until one of them lasts (lastedRevision), as a retry's ready process
// may die so again; where it failed to spawn, while its agent says the
// target's spawns fail (spawnsFail: ScalingError True, until a spawn of
// it works), not once one worked, nor while they are blocked for no
// fault of the target (a port taken, a valueFrom unreadable), which says
// nothing of whether it starts. Not a node resisting, or whose restart
// ended leaving older processes (Incomplete: nothing retries it), or one
// crash-looping (loopsOn: its loop reads as such), or with the target
// run everywhere (nothing halts).
func betweenTries(in rollupInput, node string) bool {
	r, ok := in.Reports[node]
	if !ok || !r.Reported || r.Stale || !r.OnTarget || r.Resisting || r.FailsTarget || r.Incomplete || r.RolledOut ||
		loopsOn(in.CrashLoop, r) || in.LastRolledOut != nil && in.LastRolledOut.Revision == in.Target {
		return false
	}
	if haltRemembered(in) && in.Halt.Node == node {
		return true
	}
	st := &r.Pool.Status
	if st.ObservedRevision != in.Target || st.LastedRevision == in.Target ||
		st.LastSpawnError == nil || st.LastSpawnError.Revision != in.Target {
		return false
	}
	return contract.DiedAfterReadyIn(st.LastSpawnError.Reason) || spawnsFail(st, in.Target)
}

// restartOver: the pool's agent is done restarting onto its revision,
// which every process of it runs (none may run: the one there died).
func restartOver(r poolReport) bool {
	c := r.Pool.Status.ProcessCounts
	return !r.Restarting && !r.Resisting && c.Updated == c.Total
}

// loopsOn: the target crash-loops on r's node with nothing to return it
// (loop: crashLoopOf), and the node's restart is over (restartOver):
// the loop reads one way at every turn of it (sortRollout), and halts no
// rollout (haltRecord records none). Not while its restart is under way:
// a young death that leaves none of the target running there halts the
// rollout as any spawn failure does (its old processes may still serve);
// the loop reads so only once the restart is over.
func loopsOn(loop *ferryv1.CrashLoop, r poolReport) bool {
	return loopsAt(loop, r.Node) && restartOver(r)
}

// loopsAt: loop, if any, names node.
func loopsAt(loop *ferryv1.CrashLoop, node string) bool {
	return loop != nil && slices.Contains(loop.Nodes, node)
}

// haltingNodes are the nodes RollingRestart names as halting the rollout:
// those that resist the target or fail to spawn it, else the node of the
// halt remembered.
func haltingNodes(in rollupInput) []string {
	n := sortRollout(in)
	if nodes := slices.Concat(n.resisting, n.failing); len(nodes) > 0 {
		return nodes
	}
	if haltRemembered(in) {
		return []string{in.Halt.Node}
	}
	return nil
}

// haltedCondition is RollingRestart while nodes resist the target or fail
// to spawn it.
func haltedCondition(c metav1.Condition, in rollupInput, n rolloutNodes) metav1.Condition {
	var why []string
	if len(n.resisting) > 0 {
		why = append(why, nodeList(n.resisting)+" resisting a deployment error")
	}
	for _, nodes := range byFailure(in, n.failing) {
		reason := failureReason(in, quotedNode(in, nodes))
		w := fmt.Sprintf("it %s (%s)", contract.FailedHow(reason, " on "+nodeList(nodes)), cutMiddle(reason, maxReason))
		why = append(why, w+olderNote(in, nodes))
	}
	retrying, goesOn := 0, ""
	if len(n.resisting) == 0 {
		if retried := retriedOf(in, n.failing); len(retried) > 0 {
			retrying = len(retried)
			goesOn = goesOnOnceOn(in, retried)
		}
	}
	remedy := haltRemedy(retrying, goesOn)
	return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
		fmt.Sprintf("Rollout of revision %s halted at %d/%d nodes updated: %s; %s",
			in.Target, n.updated, len(in.Nodes), strings.Join(why, "; "), remedy))
}

// byFailure parts nodes, failing ones, by how the target failed there
// (failureReason): those where it died soon after it was ready
// (contract.DiedAfterReadyIn), then those where it failed to spawn, each
// part in node order, an empty one left out. The halt's message has a
// clause for each: one quote of either kind said of both read "died on
// node-a and node-b soon after it was ready" of a node where it never
// started.
func byFailure(in rollupInput, nodes []string) [][]string {
	var died, failed []string
	for _, node := range nodes {
		if contract.DiedAfterReadyIn(failureReason(in, node)) {
			died = append(died, node)
		} else {
			failed = append(failed, node)
		}
	}
	return slices.DeleteFunc([][]string{died, failed}, func(part []string) bool { return len(part) == 0 })
}

// goesOnOnceOn is what a halted rollout waits for on nodes, those its
// message names whose agents retry the target: each node's own condition
// (waitOn: from its lastedRevision and how the target failed there), the
// nodes waiting for one alike together, "there" where all wait for one
// ("a process of it lives 10s, the crash window, there"), else each
// condition on its nodes ("a process of it lives 10s, the crash window,
// on node-b and every process on node-a runs it and is ready"). Not by
// how it failed (byFailure) with one node's condition said of its part:
// the halt's node, lasted, and another dying young, not lasted, read
// "once every process there runs it and is ready", where the other
// needs a process of it to live the crash window.
func goesOnOnceOn(in rollupInput, nodes []string) string {
	var waiting [waitKinds][]string
	for _, node := range nodes {
		w := waitOn(in, node, failureReason(in, node))
		waiting[w] = append(waiting[w], node)
	}
	var conditions []string
	for w, on := range waiting {
		if len(on) == len(nodes) {
			return waitFor(w).until("there")
		}
		if len(on) > 0 {
			conditions = append(conditions, waitFor(w).until("on "+nodeList(on)))
		}
	}
	return andJoined(conditions)
}

// andJoined is words as a list: "a", "a and b", "a, b and c".
func andJoined(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// quotedNode is the one of nodes, failing ones, whose failure the halt's
// message quotes and judges: the remembered halt's node when it is one of
// them, whose reason is the record's (failureReason), else the first by
// name. Not the first by name always: with the halt's node not first,
// the message quoted another node's latest failure, which changes at each
// of its deaths ("1.2s after it was ready", then "2.5s"), a status write
// and a `restart --wait` line each time.
func quotedNode(in rollupInput, nodes []string) string {
	if haltRemembered(in) && slices.Contains(nodes, in.Halt.Node) {
		return in.Halt.Node
	}
	return nodes[0]
}

// failureReason is how the target failed on a failing node, as the
// halt's message quotes and judges it: the remembered halt's reason on
// its node, else the pool's last spawn error, without its lifetime if a
// young death (contract.WithoutLifetime: up to "soon after it was
// ready"). Not the latest error on the halt's node: each young death's
// reason has its own lifetime ("1.2s after it was ready", then "2.5s"),
// and between deaths the message quotes the halt's (the remembered
// branch), so it would change at each death, a status write and a
// `restart --wait` line each time. So too of another node's
// young deaths, where the message quotes them: in a clause the halt's
// node is not in (it failed another way, or is deselected, silent or on
// another revision), that node's latest death, with its lifetime and
// what the agent adds to a death in a request (", while handling a
// request (...)", which the next death may not have), changed at each
// of them. And where the target is proven, no halt remembered
// (haltRecord records none where a proven target fails): there is no
// record's reason to quote, and a node whose restart is under way, its
// processes dying young, was quoted with each death's own lifetime. (A
// pass records a halt wherever an unproven target fails; an input
// without it is quoted as the pool says.)
func failureReason(in rollupInput, node string) string {
	latest := in.Reports[node].Pool.Status.LastSpawnError.Reason
	switch {
	case haltRemembered(in) && in.Halt.Node == node:
		return in.Halt.Reason
	case haltRemembered(in) || in.Proven == in.Target:
		return contract.WithoutLifetime(latest)
	}
	return latest
}

// olderNote is what a halt's message says of older processes on nodes on
// the target: those failing to spawn it, or the node of the halt
// remembered, heard from (whereNowNote). A Rolling restart's old ones,
// ones its agent held after the target's processes died young, or ones a
// restart with resistance off could not replace serve there meanwhile:
// ready processes of another revision, by the pool's process table (else
// its counts), its report recent, its agent not stopping and its proxy
// listening (Serving), as kubectl ferry status judges them
// (contract.WhatServes). Where none does, nothing older serves the app
// there: its agent restarted, the AppGroup is new, a Blocking restart
// stopped them before its spawns died, or its agent stops or its proxy
// cannot listen. Said from the reports, not from how the target failed:
// a death soon after ready may leave older processes or none.
//
// A failing node runs none of the target, but the remembered halt's node
// may, between two of its agent's retries: where a process of it serves,
// nothing is said of older ones ("with no older process to keep serving"
// read as if nothing served there). Except where the target's processes
// die young and its agent retries them (diesYoungRetried): a retry's
// process is then ready at every turn, for its seconds, and the note
// would come and go with it, a status write and a `restart --wait` line
// each time; the note says instead what is true at every turn, that no
// older process serves between the deaths. Nothing is said of a node
// whose pool sends no process table and whose counts cannot tell whether
// a ready process is older (contract.Served.OlderUnknown), nor of older
// ones on a node listed between two tries where a process of the target
// serves: said of some of its nodes alone, the note names them.
func olderNote(in rollupInput, nodes []string) string {
	var serving, none []string
	betweenDeaths, told := true, true
	for _, node := range nodes {
		r := in.Reports[node]
		served := contract.WhatServes(r.Pool, r.Serving)
		dyingYoung := diesYoungRetried(in, r)
		switch {
		case served.Older:
			serving = append(serving, node)
		case served.OlderUnknown:
			// No process table, and its counts cannot tell whether a
			// ready process is older: nothing is said of that node.
			told = false
		case served.Spec && !dyingYoung:
			// The target serves there: no older process is missed, and
			// what the note says of the others is not said of it (a
			// node between two tries, a retry's process serving).
			told = false
		default:
			none = append(none, node)
			betweenDeaths = betweenDeaths && dyingYoung
		}
	}
	switch {
	case len(serving) == 0 && len(none) == 0:
		return ""
	case !told && len(none) == 0:
		// Said of every node named, the note would say it of one the
		// counts cannot tell of, or one the target serves, too: it
		// names its nodes.
		return olderServingOn + nodeList(serving)
	case len(serving) == 0:
		note := noOlderServing
		if betweenDeaths {
			note = noOlderBetweenDeaths
		}
		if !told {
			note += " on " + nodeList(none)
		}
		return note
	case len(none) == 0:
		return olderServingThere
	}
	return olderServingOn + nodeList(serving) + olderNoneOn + nodeList(none)
}

// olderNote's words, which haltedLists reads too (isOlderNote).
const (
	olderServingOn       = ", older processes serving meanwhile on "
	olderNoneOn          = " but none on "
	olderServingThere    = ", older processes serving there meanwhile"
	noOlderServing       = ", with no older process to keep serving"
	noOlderBetweenDeaths = ", with no older process to serve between its deaths"
)

// diesYoungRetried: the target's processes die young on r's node (its
// agent runs the target, its last spawn error is such a death, which
// stays until the next error, and none of them has lived the crash
// window there) and nothing returns the node from it: its agent retries
// it. As crashLoopOf reads a loop: once a process of the target lasted,
// one may serve for good, and "between its deaths" would not be true.
func diesYoungRetried(in rollupInput, r poolReport) bool {
	st := &r.Pool.Status
	if st.ObservedRevision != in.Target || st.LastedRevision == in.Target ||
		!contract.YoungDeathOf(st.LastSpawnError, in.Target) {
		return false
	}
	reason, _ := nodeStaysWhy(in, r.Node)
	return reason != ""
}

// waitingMessage is RollingRestart's message while nodes wait for their
// wave and none restarts.
func waitingMessage(in rollupInput, n rolloutNodes) string {
	// The node planWave gives the target next, not the first by name.
	next := slices.MinFunc(n.waiting, func(a, b string) int { return waveOrder(in.Reports[a], in.Reports[b]) })
	msg := fmt.Sprintf("%d/%d nodes updated; next: %s", n.updated, len(in.Nodes), next)
	if blockers := slices.Concat(n.notRolledOut, n.stale); len(blockers) > 0 {
		msg += ", after " + nodeList(blockers) + " rolled out"
	}
	return msg + settlingNote(in, n)
}

// settlingNote is what RollingRestart's message says of the settling
// nodes, if any; and, when no node waits for them, of those updated whose
// processes of a target not proven yet are not all ready (they have the
// crash window to live once they are). Nodes where the target dies young
// with nothing to return them (in.CrashLoop) are not said to settle: a
// loop would read as progress, and the note would flip between its two
// forms at every death and every replacement ready; crashNote says what
// is going on there instead.
func settlingNote(in rollupInput, n rolloutNodes) string {
	looping := func(node string) bool { return loopsAt(in.CrashLoop, node) }
	notRolledOut := slices.DeleteFunc(slices.Clone(n.notRolledOut), looping)
	settling := slices.DeleteFunc(slices.Clone(n.settling), looping)
	var note string
	switch {
	case len(n.waiting) == 0 && len(notRolledOut) > len(settling):
		note = fmt.Sprintf(" (new processes on %s must first all be ready and live %s, the crash window)",
			nodeList(notRolledOut), contract.CrashWindow)
	case len(settling) > 0:
		// No countdown: the message must not change by itself.
		note = fmt.Sprintf(" (new processes on %s must first live %s, the crash window)", nodeList(settling), contract.CrashWindow)
	}
	return note + crashNote(in)
}

// crashLoopOf is the target's crash loop, nil when there is none: the
// selected nodes where the target dies young and nothing returns the
// node from it, and why (nodeStaysWhy). A process of it died within the
// crash window of ready (the pool's lastSpawnError,
// contract.YoungDeathOf), none of it has lived the window there
// (lastedRevision), and the node stays on it (deployment errors not
// resisted, a Blocking restart, a target proven elsewhere that this node
// did not resist, or nothing older to return to). A node the manager
// returns (returnsFromTarget: the same rule, contract.NotReturnedWhy) is
// left out, and so is one whose agent is silent or unheard: its word is
// not taken. Its agent respawns them with backoff for as long as that
// lasts: the rollout neither goes on nor ends by itself. Read from what
// stays the same between deaths, not from ScalingError or the counts,
// which flip at each death and each replacement ready.
//
// The loop lists every node (NodeCount of them): the manager reads it
// whole (loopsOn), and only the status field is cut (publishedLoop).
// Its reason is its first node's: the nodes differ only where the one
// node that resisted a proven target has nothing older to return to
// (NoOlderRevision) while the others stay as it is proven.
func crashLoopOf(in rollupInput) *ferryv1.CrashLoop {
	if in.Target == "" {
		return nil
	}
	var loop *ferryv1.CrashLoop
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		if !ok || !r.Reported || r.Stale || !r.OnTarget {
			continue
		}
		st := &r.Pool.Status
		if st.ObservedRevision != in.Target || st.LastedRevision == in.Target ||
			!contract.YoungDeathOf(st.LastSpawnError, in.Target) {
			continue
		}
		reason, message := nodeStaysWhy(in, node)
		if reason == "" {
			// The manager returns it once none of the target's processes
			// runs there (returnsFromTarget), and the rollout halts.
			continue
		}
		if loop == nil {
			loop = &ferryv1.CrashLoop{Revision: in.Target, Reason: reason, Message: message}
		}
		loop.Nodes = append(loop.Nodes, node)
	}
	if loop != nil {
		loop.NodeCount = int32(len(loop.Nodes)) //nolint:gosec // a count of selected nodes
	}
	return loop
}

// publishedLoop is loop as status.crashLoop carries it: its first
// MaxCrashLoopNodes nodes (the field's MaxItems), NodeCount still
// counting all of them, so that a reader knows more exist.
func publishedLoop(loop *ferryv1.CrashLoop) *ferryv1.CrashLoop {
	out := loop.DeepCopy()
	if out != nil && len(out.Nodes) > ferryv1.MaxCrashLoopNodes {
		out.Nodes = out.Nodes[:ferryv1.MaxCrashLoopNodes]
	}
	return out
}

// crashNote is what RollingRestart's message says of the nodes where the
// target dies young and nothing returns them (in.CrashLoop): that it died,
// the first node's reason, and contract.CrashLoopClause (why the nodes
// stay on it, and what becomes of their processes); "" when there are
// none. It changes with a death (the reason quoted), never by itself
// between two. Its processes are respawned, not "retried with backoff ...
// until one works" (contract.SpawnsRetried): a first death is replaced at
// once, and a process of it that works, ready, may still die young; what
// ends the loop is one that lives the crash window.
func crashNote(in rollupInput) string {
	if in.CrashLoop == nil {
		return ""
	}
	nodes := in.CrashLoop.Nodes
	reason := cutMiddle(in.Reports[nodes[0]].Pool.Status.LastSpawnError.Reason, maxReason)
	if len(nodes) > 1 {
		reason = nodes[0] + ": " + reason
	}
	return fmt.Sprintf("; on %s a process of revision %s died soon after it was ready (%s), and none has lived %s, "+
		"the crash window, there yet; %s",
		nodeList(nodes), in.Target, reason, contract.CrashWindow, contract.CrashLoopClause(len(nodes), in.CrashLoop.Message))
}

// retriedOf are those of nodes, which cannot spawn the target, that stay
// on it, their agents retrying it, rather than going back to an older
// revision (returnsFromTarget): nodeStaysWhy says why nothing returns
// each, node by node, since the one that resisted the target is returned
// where the others are not (a proven target). In node order.
func retriedOf(in rollupInput, nodes []string) []string {
	var retried []string
	for _, node := range nodes {
		if reason, _ := nodeStaysWhy(in, node); reason != "" {
			retried = append(retried, node)
		}
	}
	return retried
}

// nodeStaysWhy is contract.NotReturnedWhy of node: the AppGroup's
// restart, the target proven or not, whether node resisted it (the halt
// remembered: contract.ResistedOn, as returnsFromTarget reads it), and
// whether an older revision runs to return it to (in.Older).
func nodeStaysWhy(in rollupInput, node string) (reason, message string) {
	return contract.NotReturnedWhy(&in.AppGroup.Spec.Restart, in.Target, in.Proven == in.Target,
		contract.ResistedOn(in.Halt, node, in.Target), in.Older)
}

// olderRuns: an older revision runs to return a node of in to, as the
// rollout would find one (fallback) for rollupInput.Older.
func olderRuns(in rollupInput) bool {
	_, _, ok := fallback(in.Nodes, in.Reports, in.LastRolledOut, in.Target)
	return ok
}

// completeMessage is RollingRestart's message once the rollout completed:
// where it runs, who joined since, and where the proxy cannot listen.
func completeMessage(in rollupInput, n rolloutNodes) string {
	msg := fmt.Sprintf("Revision %s runs on %d/%d nodes", in.Target, n.updated, len(in.Nodes))
	var draining, joined []string
	for _, node := range n.joining {
		if slices.Contains(in.AwaitingDrain, node) {
			draining = append(draining, node)
		} else {
			joined = append(joined, node)
		}
	}
	if len(joined) > 0 {
		msg += fmt.Sprintf("; %s joined, with no report from %s yet (see Ready)",
			nodeList(joined), plural(len(joined), "the agent", "their agents"))
	}
	if len(draining) > 0 {
		msg += fmt.Sprintf("; %s joined again, and %s once %s drained (see Ready)", nodeList(draining),
			plural(len(draining), "gets its pool", "get their pools"), plural(len(draining), "its previous one has", "their previous ones have"))
	}
	deaf, moved := splitListenFailures(listenFailures(in))
	if len(deaf) > 0 {
		msg += fmt.Sprintf("; %s cannot listen on listen.port, so %s (see Ready)", proxiesOn(failingNodes(deaf)),
			plural(len(deaf), "it serves no request", "they serve no request"))
	}
	if len(moved) > 0 {
		msg += fmt.Sprintf("; %s cannot listen on listen.port and %s (see Ready)", proxiesOn(failingNodes(moved)),
			plural(len(moved), "serves on its old port until it can", "serve on their old ports until they can"))
	}
	return msg + crashNote(in) + undrainedMessage(in)
}

// haltRemedy says how a halted rollout goes on: a new revision, or, where
// the nodes that cannot spawn it keep retrying (retrying of them, those
// the message names), also by itself once goesOn (goesOnOnceOn).
func haltRemedy(retrying int, goesOn string) string {
	remedy := fmt.Sprintf("change the %s annotation or the app to start a new rollout", ferryv1.RevisionAnnotation)
	if retrying > 0 {
		remedy = plural(retrying, "its agent retries", "their agents retry") +
			" it with backoff, at most a minute apart, and the rollout goes on once " + goesOn + "; or " + remedy
	}
	return remedy
}

// waitFor is what a halted rollout waits for on a node whose agent
// retries the target, in the order the message names them.
type waitFor int

const (
	// waitsToLive: the target died there soon after it was ready, and
	// none of it lived the crash window there: it starts, and that is not
	// what it lacks.
	waitsToLive waitFor = iota
	// waitsToStart: it failed to spawn there.
	waitsToStart
	// waitsForEvery: one lived the crash window there already
	// (lastedRevision): the node rolls out once every process runs it
	// and is ready, settle waiting no window there.
	waitsForEvery
	waitKinds
)

// until words w on where ("there", or "on" and the nodes it is said of):
// once "every process there runs it and is ready", not "once one lives
// the crash window", true already, nor "every process of it is ready",
// true of a retry's one ready process beside older ones; "a process of
// it lives 10s, the crash window, there"; "it starts there".
func (w waitFor) until(where string) string {
	switch w {
	case waitsForEvery:
		return "every process " + where + " runs it and is ready"
	case waitsToLive:
		return fmt.Sprintf("a process of it lives %s, the crash window, %s", contract.CrashWindow, where)
	}
	return "it starts " + where
}

// waitOn is what a halted rollout waits for on node, whose agent retries
// the target, reason how it failed there as the message quotes it
// (failureReason): every process there ready on it where one lasted
// there, else by reason.
func waitOn(in rollupInput, node, reason string) waitFor {
	switch {
	case in.Reports[node].Pool != nil && in.Reports[node].Pool.Status.LastedRevision == in.Target:
		return waitsForEvery
	case contract.DiedAfterReadyIn(reason):
		return waitsToLive
	}
	return waitsToStart
}

// listenFailed lists the selected nodes whose pool runs but whose proxy
// cannot listen (Ready=False, ListenFailed): a rollout there completes,
// yet no request reaches its processes on listen.port.
func listenFailed(in rollupInput) []string { return failingNodes(listenFailures(in)) }

// listenFailure is a selected node whose proxy cannot listen, with its
// agent's words on why, and the old port it still serves on (ServesOn: a
// move whose new port is taken), if any.
type listenFailure struct {
	node, message string
	servesOn      int32
}

// splitListenFailures parts fs into the nodes that serve nothing and those
// that still serve on their old port.
func splitListenFailures(fs []listenFailure) (deaf, moved []listenFailure) {
	for _, f := range fs {
		if f.servesOn != 0 {
			moved = append(moved, f)
		} else {
			deaf = append(deaf, f)
		}
	}
	return deaf, moved
}

// proxiesOn names the proxies of nodes: "the proxy on a", "the proxies on
// a and b".
func proxiesOn(nodes []string) string {
	return plural(len(nodes), "the proxy on ", "the proxies on ") + nodeList(nodes)
}

// failingNodes are the nodes of fs, in order.
func failingNodes(fs []listenFailure) []string {
	nodes := make([]string, len(fs))
	for i, f := range fs {
		nodes[i] = f.node
	}
	return nodes
}

// listenFailures are the selected nodes whose proxy cannot listen, in
// node order, as their agents last reported them (a silent agent's word
// is not taken: unheardNodes).
func listenFailures(in rollupInput) []listenFailure {
	var fs []listenFailure
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		if !ok || !r.Reported || r.Stale {
			continue
		}
		if c := meta.FindStatusCondition(r.Pool.Status.Conditions, ferryv1.ConditionReady); c != nil &&
			c.Status == metav1.ConditionFalse && c.Reason == ferryv1.ReasonListenFailed {
			fs = append(fs, listenFailure{node: node, message: c.Message, servesOn: r.ServesOn})
		}
	}
	return fs
}

// unheardNodes are the selected nodes whose agent's word on its pool the
// pass cannot take: no pool or report yet, a stale report, or the report
// of an agent that stops (AgentStopping in Ready says nothing of its
// port any more; the next agent's report will).
func unheardNodes(in rollupInput) []string {
	var nodes []string
	for _, node := range in.Nodes {
		if r, ok := in.Reports[node]; !ok || !r.Reported || r.Stale || r.Stopping {
			nodes = append(nodes, node)
		}
	}
	return nodes
}

// restartProgressMessage says where the rollout is: "node 2/3 (node-b),
// process 3/4", or for several nodes at once "nodes 2-3/4 (node-b: process
// 3/4, node-c: process 1/4)". Node and process numbers count the one in
// progress, as Passenger's "Rolling restarting..." does.
func restartProgressMessage(in rollupInput, restarting []string, updated int) string {
	first, total := updated+1, len(in.Nodes)
	if len(restarting) == 1 {
		node := restarting[0]
		return fmt.Sprintf("node %d/%d (%s), %s", first, total, node, nodeProgress(in, node))
	}
	parts := make([]string, 0, maxListedNodes+1)
	for i, node := range restarting {
		if i == maxListedNodes {
			parts = append(parts, fmt.Sprintf("and %d more", len(restarting)-i))
			break
		}
		parts = append(parts, node+": "+nodeProgress(in, node))
	}
	return fmt.Sprintf("nodes %d-%d/%d (%s)", first, first+len(restarting)-1, total, strings.Join(parts, ", "))
}

// nodeProgress says how far one node's restart onto the target has come.
func nodeProgress(in rollupInput, node string) string {
	r, ok := in.Reports[node]
	switch {
	case !ok && slices.Contains(in.AwaitingDrain, node):
		return "waiting for its previous pool to drain"
	case !ok:
		return "creating its pool"
	case !r.Reported || r.Pool.Status.ObservedRevision != r.Pool.Spec.Revision:
		return "waiting for its agent"
	case r.Stopping:
		// Its counts are what the agent left, not a restart under way.
		return "its agent stopped (see Ready); the node goes on once its agent is back"
	}
	st := &r.Pool.Status
	if p := st.RestartProgress; p != nil && p.Revision == in.Target && p.Total > 0 {
		msg := fmt.Sprintf("process %d/%d", min(p.Done+1, p.Total), p.Total)
		switch c := spawnsBackOff(st, p.Revision); {
		case c != nil && c.Reason == ferryv1.ReasonSpawnBlocked:
			// For no fault of the revision (a Secret the agent may not
			// read): what to fix is in the spawn's error.
			msg += ", its spawns blocked: " + cutMiddle(st.LastSpawnError.Reason, maxReason)
		case c != nil:
			// The step's spawn failed while a process of the target
			// serves: the agent retries it, the old process serving on.
			msg += ", its spawns failing (" + contract.SpawnsRetried + "; see the pool's ScalingError)"
		}
		return msg
	}
	if pc := st.ProcessCounts; pc.Ready == 0 && pc.Updated == pc.Total {
		// unstarted: on the target, none of it ready yet.
		if pc.Total == 0 {
			// Nothing spawned yet: the agent may be about to, or unable to.
			return "no process of it running yet"
		}
		return fmt.Sprintf("starting its processes, 0/%d ready", pc.Total)
	}
	return fmt.Sprintf("%d/%d processes updated", st.ProcessCounts.Updated, st.ProcessCounts.Total)
}

// resistingCondition is ResistingDeploymentError: True when a pool that
// reports in time resists, with its node, the error and the end of the
// failed spawn's output; Unknown when a silent agent might; else False.
func resistingCondition(in rollupInput) metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionResistingDeploymentError}
	var resisting, stale []string
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		switch {
		case !ok || !r.Reported:
		case r.Stale:
			stale = append(stale, node)
		case r.Resisting:
			resisting = append(resisting, node)
		}
	}
	switch {
	case len(resisting) > 0:
		msg := resistingMessage(in.Reports[resisting[0]])
		if len(resisting) > 1 {
			msg = fmt.Sprintf("%d nodes resist (%s); %s", len(resisting), nodeList(resisting), msg)
		}
		return withStatus(c, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, msg)
	case haltRemembered(in) && in.Halt.Resisted:
		// The node that resisted is gone, or was returned to an older
		// revision: the AppGroup as a whole still resists.
		return withStatus(c, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed,
			fmt.Sprintf("node %s: revision %s %s (%s)%s; no further node gets it, "+
				"and the nodes not on it keep serving older revisions",
				in.Halt.Node, in.Halt.Revision, contract.FailedHow(in.Halt.Reason, ""), cutMiddle(in.Halt.Reason, maxReason), whereNow(in)))
	case len(stale) > 0:
		return withStatus(c, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, staleMessage(in, stale))
	}
	return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "No pool resists a deployment error")
}

// deletingStatus is the status of a deleted AppGroup: counts of the pools
// still there, Ready as deletingCondition says, and RollingRestart and
// ResistingDeploymentError ended (nothing rolls or resists any more), so
// that no condition goes on describing what was.
func deletingStatus(ag *ferryv1.AppGroup, pools []poolReport, now time.Time, staleAfter time.Duration) ferryv1.AppGroupStatus {
	st := *ag.Status.DeepCopy()
	in := rollupInput{AppGroup: ag, Target: st.Revision, Reports: byNode(pools), Now: now, StaleAfter: staleAfter}
	for _, r := range pools {
		in.Nodes = append(in.Nodes, r.Node)
	}
	slices.Sort(in.Nodes)
	st.ObservedGeneration = ag.Generation // the deletion raised it
	st.CrashLoop = nil                    // its pools drain: nothing respawns any more
	setCounts(&st, in)
	ready := deletingCondition(pools, now, staleAfter)
	setConditions(&st, ag.Generation, now, ready,
		withStatus(metav1.Condition{Type: ferryv1.ConditionRollingRestart}, metav1.ConditionFalse, ferryv1.ReasonDeleting, ready.Message),
		withStatus(metav1.Condition{Type: ferryv1.ConditionResistingDeploymentError}, metav1.ConditionFalse, ferryv1.ReasonDeleting,
			"The AppGroup is being deleted"))
	return st
}

// deletingCondition is Ready while the AppGroup is deleted: which nodes'
// agents are still to drain their pools, which of them are silent
// (staleMessage) or never reported on a pool older than the staleness
// bound (no agent runs there), with what releases such a pool.
func deletingCondition(pools []poolReport, now time.Time, staleAfter time.Duration) metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionReady}
	var nodes, stale, unseen []string
	var example *ferryv1.ProcessPool
	agentless := true // every unseen pool is on a node with no live agent
	for _, r := range pools {
		nodes = append(nodes, r.Node)
		switch {
		case r.Stale:
			stale = append(stale, r.Node)
		case neverReported(r, now, staleAfter):
			unseen = append(unseen, r.Node)
			agentless = agentless && (!r.HasLease || r.LeaseStale)
		default:
			continue
		}
		if example == nil {
			example = r.Pool
		}
	}
	slices.Sort(nodes)
	slices.Sort(stale)
	slices.Sort(unseen)
	msg := "Waiting for the agent on " + nodeList(nodes) + " to drain its pool"
	if len(nodes) > 1 {
		msg = "Waiting for the agents on " + nodeList(nodes) + " to drain their pools"
	}
	if len(stale) > 0 {
		in := rollupInput{Now: now, StaleAfter: staleAfter, Reports: byNode(pools)}
		msg += ". " + staleMessage(in, stale)
	}
	if len(unseen) > 0 {
		msg += ". No agent has ever reported the " + plural(len(unseen), "pool", "pools") + " on " + nodeList(unseen)
		if agentless {
			msg += " (no agent renews a Lease there: is ferry-agent running?)"
		}
	}
	if example != nil {
		msg += fmt.Sprintf(
			". Such a pool is released when an agent on its node drains it, or when its Node is deleted; "+
				"to release it without draining, remove the %s finalizer from ProcessPool %s/%s",
			contract.DrainFinalizer, example.Namespace, example.Name)
	}
	return withStatus(c, metav1.ConditionFalse, ferryv1.ReasonDeleting, msg)
}

// neverReported: r's agent never reported its pool, older than the
// staleness bound. The pool's age is by the API server's clock (its
// creationTimestamp), not by when the manager first saw it, unlike the
// agents' signs (signs): that one stamp is written once by the control
// plane, whose clock the node lifecycle controller trusts the same way
// for a node that never posted its status; a first sighting after a
// manager restart would have to take it at its word all the same; and
// assessPool's Unheard, the same judgement for passes not deleting, goes
// by it too. At stake is only when a deleted AppGroup's message names the
// pool.
func neverReported(r poolReport, now time.Time, staleAfter time.Duration) bool {
	return !r.Reported && now.Sub(r.Pool.CreationTimestamp.Time) > staleAfter
}

// deletingRequeue is when a deleted AppGroup's status is next due to
// change by itself: a report turning stale (nextStaleness), or a pool
// that never reported reaching the bound (deletingCondition names it then;
// nothing else would bring that pass).
func deletingRequeue(pools []poolReport, now time.Time, staleAfter time.Duration) time.Duration {
	next := nextStaleness(byNode(pools))
	for _, r := range pools {
		if r.Reported || neverReported(r, now, staleAfter) {
			continue
		}
		if d := r.Pool.CreationTimestamp.Add(staleAfter).Sub(now) + time.Second; next == 0 || d < next {
			next = d
		}
	}
	return next
}

// haltRemembered: the status records a halt of the target (the node that
// caused it may no longer show it).
func haltRemembered(in rollupInput) bool {
	return in.Halt != nil && in.Halt.Revision == in.Target
}

// whereNow says where the node of a remembered halt is now, when it no
// longer shows the halt itself: ", which is no longer selected", ",
// which now runs revision 1-...", or nothing.
func whereNow(in rollupInput) string {
	r, ok := in.Reports[in.Halt.Node]
	switch {
	case !slices.Contains(in.Nodes, in.Halt.Node):
		return ", which is no longer selected"
	case ok && !r.OnTarget:
		return ", which now runs revision " + r.Pool.Spec.Revision
	}
	return ""
}

// whereNowNote is what a remembered halt's message says after its
// reason: where its node is now (whereNow) or, on the target still and
// heard from, what older processes serve there (olderNote), as when the
// node shows the halt itself: between two of its agent's retries (a
// spawn of the target running, so not failing) the message reads as at
// the retries, and `restart --wait` shows no new halt at each. Once a
// retry's process is ready, the target serves there and nothing is said
// of older ones; except where the target's processes die young and its
// agent retries them (diesYoungRetried: its last spawn error such a
// death, none of them lived the crash window there, nothing returning
// the node), a retry's process ready for seconds at a time: the note
// then says no older process serves between the deaths (olderNote).
// On the target, its agent silent or never heard, it says that, steady
// while it is silent, and no retry is claimed (the remedy), as kubectl
// ferry status says it: no report says the agent retries it.
func whereNowNote(in rollupInput) string {
	if w := whereNow(in); w != "" {
		return w
	}
	r, ok := in.Reports[in.Halt.Node]
	switch {
	case ok && r.Reported && !r.Stale && r.OnTarget:
		return olderNote(in, []string{in.Halt.Node})
	case ok && r.OnTarget:
		return ", whose agent is not heard from"
	}
	return ""
}

// resistingMessage describes one resisting pool: "node node-b: revision
// 8-0a1b2c3d4e failed to spawn (exited with status 1); the old processes
// keep serving. Output: ...".
func resistingMessage(r poolReport) string {
	st := &r.Pool.Status
	e := st.DeploymentError
	if e == nil {
		// The agent set the condition without the details: use its message.
		cond := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionResistingDeploymentError)
		return truncate(fmt.Sprintf("node %s: %s", r.Node, cond.Message), maxMessage)
	}
	head := fmt.Sprintf("node %s: revision %s %s (%s); the old processes keep serving",
		r.Node, e.Revision, contract.FailedHow(e.Reason, ""), cutMiddle(e.Reason, maxReason))
	return truncate(head+outputSuffix(e), maxMessage)
}

// outputExcerpt is the end of a spawn's output, at most n bytes, starting at
// a line when one starts close enough, with "..." when cut.
func outputExcerpt(out string, n int) string {
	out = strings.TrimSpace(out)
	if len(out) <= n {
		return out
	}
	tail := out[runeCeil(out, len(out)-n):]
	if i := strings.IndexByte(tail, '\n'); i >= 0 && i < n/2 {
		tail = tail[i+1:]
	}
	return "..." + tail
}

// staleMessage names the silent agents and when the first last reported.
// It names a time, not a duration, so that it stays the same, and the
// status unwritten, while the agent stays silent.
// silentMessage is staleMessage for the nodes whose agent fell silent,
// and unheardMessage for those whose agent never reported (Unheard).
func silentMessage(in rollupInput, nodes []string) string {
	unheard := unheardOf(in, nodes)
	stale := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return slices.Contains(unheard, n) })
	switch {
	case len(unheard) == 0:
		return staleMessage(in, stale)
	case len(stale) == 0:
		return unheardMessage(in, unheard)
	}
	return staleMessage(in, stale) + ". " + unheardMessage(in, unheard)
}

// unheardOf are those of nodes whose pool is Unheard.
func unheardOf(in rollupInput, nodes []string) []string {
	var unheard []string
	for _, node := range nodes {
		if r, ok := in.Reports[node]; ok && r.Unheard {
			unheard = append(unheard, node)
		}
	}
	return unheard
}

// unheardMessage says that no agent ever reported the pools on nodes,
// for longer than the staleness bound.
func unheardMessage(in rollupInput, nodes []string) string {
	return fmt.Sprintf("No agent has reported the %s on %s in the %s since %s made: is ferry-agent running there?",
		plural(len(nodes), "pool", "pools"), nodeList(nodes), in.StaleAfter, plural(len(nodes), "it was", "they were"))
}

func staleMessage(in rollupInput, stale []string) string {
	// Last seen: the later of its report and its Lease's renewal, as
	// staleness is judged (assessPool), not the report alone.
	since := in.Now.Add(-in.Reports[stale[0]].Silence).UTC().Truncate(time.Second).Format(time.RFC3339)
	if len(stale) == 1 && in.Reports[stale[0]].SaidStopping {
		// Its last word was that it stopped: say so, not only the silence.
		return fmt.Sprintf("The agent on %s stopped: its last report, at %s (more than %s ago), said it was stopping, "+
			"and it has not been heard since; start it again, or unselect the node", stale[0], since, in.StaleAfter)
	}
	if len(stale) == 1 {
		return fmt.Sprintf("The agent on %s has not reported since %s (more than %s ago); what it last reported is not trusted",
			stale[0], since, in.StaleAfter)
	}
	return fmt.Sprintf("The agents on %s have not reported for more than %s (%s since %s); what they last reported is not trusted",
		nodeList(stale), in.StaleAfter, stale[0], since)
}

// withStatus fills a condition's status, reason and message, the message
// bounded to maxMessage bytes.
func withStatus(c metav1.Condition, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	c.Status, c.Reason, c.Message = status, reason, truncate(msg, maxMessage)
	return c
}

// nodeList is "a, b and c", listing at most maxListedNodes names.
var nodeList = contract.NodeList

// plural is one when n is 1, else many: a message says of one node what
// it says of one, "its agent", and of several what it says of several,
// "their agents".
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cutMiddle cuts s to at most n bytes on rune boundaries by leaving out
// its middle, marked "...". It is for an error quoted in a message: its
// start says what failed, and its end the cause and often what to do
// ("...: the chart's agent.secretEnv=true grants it; the agent tries
// again"), which truncate would cut first once names are long.
func cutMiddle(s string, n int) string {
	if len(s) <= n {
		return s
	}
	keep := n - len("...")
	return s[:runeFloor(s, keep-keep/2)] + "..." + s[runeCeil(s, len(s)-keep/2):]
}

// runeFloor is i, or the start of the rune of s that byte i is in.
func runeFloor(s string, i int) int {
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// runeCeil is i, or the start of the rune of s after the one byte i is in
// (len(s) at its end).
func runeCeil(s string, i int) int {
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return i
}

// truncate cuts s to at most n bytes on a rune boundary, ending in "..."
// when cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:runeFloor(s, n-len("..."))] + "..."
}

// nextStaleness is how long until the first pool that reports in time
// would turn stale, plus a second of slack; 0 when none would. Pools whose
// agent's last sign is its Lease are left out: the lease watcher notices
// when an agent falls silent, without a requeue per AppGroup. A report
// written after the Lease's last renewal outlives the Lease by the time
// between them, and the watcher's pass would come too early for it.
func nextStaleness(reports map[string]poolReport) time.Duration {
	var next time.Duration
	for _, r := range reports {
		if r.Stale || r.Unheard || r.Reported && r.LeaseIsLast {
			continue
		}
		if d := r.StaleIn + time.Second; next == 0 || d < next {
			next = d
		}
	}
	return next
}

// effectiveTarget is the revision the roll-up and the waves work against:
// the target, or while the annotation is invalid, the last valid one.
func effectiveTarget(ag *ferryv1.AppGroup) (target string, err error) {
	target, err = contract.TargetRevision(ag)
	if err != nil {
		return ag.Status.Revision, err
	}
	return target, nil
}

// undrainedMessage says, after a message, of the nodes that wait for a
// previous pool to drain, those where no agent is heard to drain it (its
// agent fell silent, or never reported it), and what lets their new pools
// be made; "" when there are none.
func undrainedMessage(in rollupInput) string {
	u := in.Undrained
	if len(u) == 0 {
		return ""
	}
	nodes := make([]string, len(u))
	for i, r := range u {
		nodes[i] = r.Node
	}
	heard := "has never reported it"
	if u[0].Reported {
		heard = fmt.Sprintf("has not reported since %s (more than %s ago)",
			in.Now.Add(-u[0].Silence).UTC().Truncate(time.Second).Format(time.RFC3339), in.StaleAfter)
	}
	p := u[0].Pool
	if len(u) == 1 {
		return fmt.Sprintf(". The previous pool on %s does not drain: its agent %s, and only an agent drains a pool. "+
			"Start ferry-agent there, delete Node %s if the node is gone, or remove the %s finalizer from ProcessPool %s/%s "+
			"to have the new pool made without draining",
			u[0].Node, heard, u[0].Node, contract.DrainFinalizer, p.Namespace, p.Name)
	}
	return fmt.Sprintf(". The previous pools on %s do not drain: their agents are silent (%s's %s), and only an agent "+
		"drains a pool. Start ferry-agent there, delete the Nodes that are gone, or remove the %s finalizer from their "+
		"ProcessPools (such as %s/%s) to have the new pools made without draining",
		nodeList(nodes), u[0].Node, heard, contract.DrainFinalizer, p.Namespace, p.Name)
}

// pendingMessage is Ready's message while pools are yet to report: a node
// whose pool is not made yet because its previous pool still drains (on
// the same port) waits for that agent to drain it, not for a report.
func pendingMessage(pending, awaitingDrain []string) string {
	var drain, report []string
	for _, node := range pending {
		if slices.Contains(awaitingDrain, node) {
			drain = append(drain, node)
		} else {
			report = append(report, node)
		}
	}
	firstReport := "Waiting for the " + plural(len(report), "first report from the agent", "first reports from the agents") +
		" on " + nodeList(report)
	switch {
	case len(report) == 0:
		return "Waiting for the " + plural(len(drain),
			"agent to drain the previous pool (when the node was last selected) on "+nodeList(drain)+"; the new pool is made after",
			"agents to drain the previous pools (when the nodes were last selected) on "+nodeList(drain)+"; the new pools are made after")
	case len(drain) == 0:
		return firstReport
	}
	return firstReport + ", and for the " + plural(len(drain), "agent to drain the previous pool", "agents to drain the previous pools") +
		" on " + nodeList(drain)
}
