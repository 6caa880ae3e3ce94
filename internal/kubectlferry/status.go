package kubectlferry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/statusview"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/version"
)

const statusSynopsis = "kubectl ferry status NAME [--json] [-n NAMESPACE]"

func (a *App) status(ctx context.Context, conn *connection, args []string) error {
	fs := newFlagSet("status")
	conn.bind(fs)
	asJSON := fs.Bool("json", false, "print the AppGroup's status and its pools' statuses as JSON")
	staleAfter := fs.Duration("stale-after", DefaultStaleAfter,
		"flag a pool whose agent has not reported for this long (the manager's --agent-stale-after)")
	leaseNS := fs.String("lease-namespace", contract.DefaultLeaseNamespace,
		"namespace where the agents renew their Leases: the one Ferry is installed in")
	name, err := a.parseCommand(fs, statusSynopsis, args)
	if err != nil {
		return err
	}
	if *staleAfter <= 0 {
		return usageErrorf("--stale-after must be positive, got %s", *staleAfter)
	}
	cl, err := conn.connect()
	if err != nil {
		return err
	}
	ag, err := cl.getAppGroup(ctx, name)
	if err != nil {
		return err
	}
	pools, err := cl.listPools(ctx, ag)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(a.Out, ag, pools)
	}
	now := a.now()
	lease, leaseErr := cl.managerLease(ctx, *leaseNS)
	return writeStatus(a.Out, ag, pools, now, *staleAfter, cl.agentLeases(ctx, *leaseNS),
		managerNote(*leaseNS, lease, leaseErr, now))
}

// agentLeases maps each node to when its agent last renewed its Lease, by
// the API server's clock (lastWrite); nil when the Leases cannot be read
// (no permission, say): staleness then rests on the pools' statuses alone.
func (cl *clients) agentLeases(ctx context.Context, namespace string) map[string]time.Time {
	leases, err := contract.AgentLeases(ctx, cl.c, namespace)
	if err != nil {
		return nil
	}
	return renewalsByHolder(leases)
}

// renewalsByHolder is, per node, the last renewal of the Leases its agent
// holds (lastWrite of renewTime): of two Leases naming one holder, the
// later, as the manager judges a node by the latest renewal of the Leases
// it holds.
func renewalsByHolder(leases []coordinationv1.Lease) map[string]time.Time {
	renewals := make(map[string]time.Time, len(leases))
	for _, l := range leases {
		if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil {
			continue
		}
		if t := lastWrite(l.ManagedFields, renewTimeField, l.Spec.RenewTime.Time); t.After(renewals[*l.Spec.HolderIdentity]) {
			renewals[*l.Spec.HolderIdentity] = t
		}
	}
	return renewals
}

// The fields whose writes are signs of life: a Lease's renewTime, which
// its holder stamps at every renewal, and a pool's status.heartbeatTime,
// which its agent stamps at every report.
var (
	renewTimeField = []string{"spec", "renewTime"}
	heartbeatField = []string{"status", "heartbeatTime"}
)

// lastWrite is when the API server last recorded a write by the writer
// of field (a path of field names), by its own clock: the latest time of
// the managedFields entries that own it. Entries are per field manager,
// and any other one's write (a hand `kubectl label`, a condition written
// into a pool's status) says nothing of the writer's life, so only the
// owner's time counts. An agent stamps renewTime and heartbeatTime, and
// the manager renewTime, by their clocks, which may be wrong; each
// writes them by update, changing them every time, and the API server
// gives the changed fields to the updater (taking them from any other
// manager) and sets its entry's time, so the owner's time is that of the
// last renewal or report (or of a later write by the same manager that
// changed other fields only, a sign of life too; a write that changes
// nothing sets no time). heartbeatTime's owner is always an entry of the
// status subresource: writes of the pool itself cannot set its status.
// stamp, when no entry owning field has a time (managedFields stripped
// by whatever served them).
func lastWrite(fields []metav1.ManagedFieldsEntry, field []string, stamp time.Time) time.Time {
	var last time.Time
	for _, f := range fields {
		if f.Time != nil && f.Time.After(last) && owns(f, field) {
			last = f.Time.Time
		}
	}
	if last.IsZero() {
		return stamp
	}
	return last
}

// owns says whether the managedFields entry f owns field: its FieldsV1
// set has "f:NAME" for each name of the path, nested, as in
// {"f:spec":{"f:renewTime":{}}}.
func owns(f metav1.ManagedFieldsEntry, field []string) bool {
	if f.FieldsType != "FieldsV1" {
		return false
	}
	set := f.FieldsV1.GetRawBytes()
	for _, name := range field {
		var members map[string]json.RawMessage
		if json.Unmarshal(set, &members) != nil {
			return false
		}
		var ok bool
		if set, ok = members["f:"+name]; !ok {
			return false
		}
	}
	return true
}

// managerLease reads the manager's leader Lease in namespace.
func (cl *clients) managerLease(ctx context.Context, namespace string) (*coordinationv1.Lease, error) {
	var l coordinationv1.Lease
	if err := cl.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: contract.ManagerLeaseName}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// clockSlack is how far past its bound a sign of life may lie before a
// note calls its writer gone: the manager's and the agents' writes are
// timed by the API server's clock (lastWrite, in whole seconds), and read
// here by this machine's, which may differ from it. (Where managedFields
// carry no time, the writers' own stamps stand in, by their clocks.)
const clockSlack = 30 * time.Second

// managerNote says, from the manager's leader Lease l in namespace (or
// the error reading it, err), that no manager leads: there is no such
// Lease, the last leader released it (a clean stop), or it has not renewed
// it for longer than it lasts. Nothing then reconciles the AppGroup, and
// its status stays what was last written; without this, it would read as
// current. "" while a leader renews it, or when the Lease could not be
// read for another reason than its absence (no permission, say). A
// renewal is timed as the agents' writes are, by when the API server
// recorded it (lastWrite): renewTime is stamped by the manager's clock,
// and a manager whose clock is wrong would read as down, or up, by it.
func managerNote(namespace string, l *coordinationv1.Lease, err error, now time.Time) string {
	if apierrors.IsNotFound(err) {
		return fmt.Sprintf("No ferry-manager leads: there is no leader Lease %s/%s, so none may be running, nothing "+
			"reconciles the AppGroup, and this status is what a manager last wrote. A manager run with --leader-elect=false "+
			"makes no Lease (ignore this then); one installed in another namespace makes it there (pass --lease-namespace).",
			namespace, contract.ManagerLeaseName)
	}
	if err != nil || l == nil {
		return ""
	}
	where := l.Namespace + "/" + l.Name
	holder := ptr.Deref(l.Spec.HolderIdentity, "")
	last := leaseRenewed(l)
	if holder == "" {
		// A leader that stops cleanly releases the Lease (an empty holder).
		ago := ""
		if !last.IsZero() {
			ago = fmt.Sprintf(", last renewed %s ago", duration.HumanDuration(now.Sub(last)))
		}
		return fmt.Sprintf("No ferry-manager leads: its leader Lease %s is released%s. Nothing reconciles the AppGroup, "+
			"and this status is what the manager last wrote, until a manager runs again.", where, ago)
	}
	if last.IsZero() {
		return ""
	}
	lasts := time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 15)) * time.Second
	if now.Sub(last) <= lasts+clockSlack {
		return ""
	}
	return fmt.Sprintf("The ferry-manager leader %s has not renewed its Lease %s for %s (it lasts %s): the manager may be down. "+
		"Nothing reconciles the AppGroup meanwhile, and this status is what it last wrote.",
		holder, where, duration.HumanDuration(now.Sub(last)), lasts)
}

// leaseRenewed is when the leader Lease l was last renewed, by the API
// server's clock (lastWrite of renewTime): every renewal changes
// renewTime, and a release too (client-go's leader election stamps it
// then). Its renewTime (else acquireTime), by the leader's clock, where
// managedFields carry no time; zero when it has neither.
func leaseRenewed(l *coordinationv1.Lease) time.Time {
	var stamp time.Time
	switch {
	case l.Spec.RenewTime != nil:
		stamp = l.Spec.RenewTime.Time
	case l.Spec.AcquireTime != nil:
		stamp = l.Spec.AcquireTime.Time
	}
	return lastWrite(l.ManagedFields, renewTimeField, stamp)
}

// listPools lists the ProcessPools of ag, sorted by node: of those
// labelled for it, the ones it controls (their controller owner reference
// names its UID), as the manager counts its pools (contract.OwnedPools).
// The label names ag by its name alone (a hash of it for long names), as
// spec.appGroup does: a pool that an AppGroup of the same name, deleted
// before ag was created, left behind (e.g. its ferry.dev/drain finalizer
// removed by hand before its pools drained, or a delete with
// --cascade=orphan) bears both, and read as ag's (a second pool on its
// node, in the pool rows, the halt header and restart --wait's crash
// loop).
func (cl *clients) listPools(ctx context.Context, ag *ferryv1.AppGroup) ([]ferryv1.ProcessPool, error) {
	pools, err := contract.OwnedPools(ctx, cl.c, ag)
	if err != nil {
		return nil, fmt.Errorf("listing the ProcessPools of AppGroup %q: %w", ag.Name, err)
	}
	return pools, nil
}

// StatusJSON is what `status --json` prints.
type StatusJSON struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// RevisionAnnotation is the ferry.dev/revision annotation; empty when
	// absent.
	RevisionAnnotation string                 `json:"revisionAnnotation,omitempty"`
	Generation         int64                  `json:"generation"`
	Status             ferryv1.AppGroupStatus `json:"status"`
	Pools              []PoolJSON             `json:"pools"`
}

// PoolJSON is one ProcessPool in StatusJSON.
type PoolJSON struct {
	Name string `json:"name"`
	Node string `json:"node"`
	// Revision is the pool's spec.revision: what its node should run.
	Revision string `json:"revision"`
	// ReturnedFrom is the revision the manager returned the pool from
	// (the ferry.dev/returned-from annotation); empty when it did not.
	ReturnedFrom string                    `json:"returnedFrom,omitempty"`
	Status       ferryv1.ProcessPoolStatus `json:"status"`
}

func writeJSON(w io.Writer, ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) error {
	out := StatusJSON{
		Namespace: ag.Namespace, Name: ag.Name, RevisionAnnotation: ag.Annotations[ferryv1.RevisionAnnotation],
		Generation: ag.Generation, Status: ag.Status, Pools: make([]PoolJSON, 0, len(pools)),
	}
	for _, p := range pools {
		out.Pools = append(out.Pools, PoolJSON{Name: p.Name, Node: p.Spec.NodeName, Revision: p.Spec.Revision,
			ReturnedFrom: p.Annotations[contract.ReturnedFromAnnotation], Status: p.Status})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeStatus prints the AppGroup's header, then the passenger-status view
// of its pools.
func writeStatus(w io.Writer, ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool, now time.Time, staleAfter time.Duration,
	leases map[string]time.Time, manager string) error {
	var b bytes.Buffer
	heard := func(p *ferryv1.ProcessPool) bool {
		return p.Status.HeartbeatTime != nil && silence(p, now, staleAfter, leases) == 0
	}
	writeHeader(&b, ag, pools, now, manager, heard)
	b.WriteString("\n")
	views := make([]statusview.Pool, 0, len(pools))
	for i := range pools {
		views = append(views, poolView(ag, &pools[i], now, silence(&pools[i], now, staleAfter, leases)))
	}
	var v bytes.Buffer
	if err := statusview.Write(&v, statusview.Header{Agent: "kubectl-ferry " + version.Version}, views, now); err != nil {
		return err
	}
	// The view counts its entries as "App groups"; here each is one node's
	// pool of a single AppGroup. Same width, so the alignment holds.
	b.Write(bytes.Replace(v.Bytes(), []byte("App groups : "), []byte("Pools      : "), 1))
	_, err := w.Write(b.Bytes())
	return err
}

// headerConditions are the AppGroup conditions the header shows, in order.
var headerConditions = []string{
	ferryv1.ConditionReady, ferryv1.ConditionRollingRestart, ferryv1.ConditionResistingDeploymentError,
}

// writeHeader writes the AppGroup's own block: revision, counts,
// conditions, the halted rollout the manager remembers, and notes on a
// manager that does not run (manager, from managerNote), on what the
// manager has not caught up with, and on why there is no pool. heard
// says whether a pool's agent has reported and is not silent (silence).
func writeHeader(b *bytes.Buffer, ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool, now time.Time, manager string,
	heard func(*ferryv1.ProcessPool) bool) {
	st := &ag.Status
	fmt.Fprintf(b, "----------- AppGroup %s/%s -----------\n", ag.Namespace, ag.Name)
	width := len(ferryv1.ConditionResistingDeploymentError)
	field := func(label, value string) {
		pad := strings.Repeat(" ", width+3)
		fmt.Fprintf(b, "%-*s : %s\n", width, label, strings.ReplaceAll(strings.TrimRight(value, "\n"), "\n", "\n"+pad))
	}
	annotation, hasAnnotation := ag.Annotations[ferryv1.RevisionAnnotation]
	shown := annotation
	if !hasAnnotation {
		shown = "unset, so " + contract.DefaultRevision
	}
	revision := st.Revision
	if revision == "" {
		revision = "-"
	}
	field("Target revision", fmt.Sprintf("%s (%s: %s)", revision, ferryv1.RevisionAnnotation, shown))
	field("Processes", fmt.Sprintf("%d/%d ready, %d updated", st.Processes.Ready, st.Processes.Total, st.Processes.Updated))
	field("Nodes", fmt.Sprintf("%d/%d ready, %d updated", st.Nodes.Ready, st.Nodes.Total, st.Nodes.Updated))
	for _, t := range headerConditions {
		field(t, conditionSummary(meta.FindStatusCondition(st.Conditions, t)))
	}
	if h := st.HaltedRollout; h != nil {
		kept := contract.KeptPools(contract.PoolPointers(pools))
		pool := poolOn(h.Node, kept, pools)
		field("Halted rollout", haltSummary(h, now, givenToEveryPool(h.Node, h.Revision, st.Nodes.Total, kept), pool, pool != nil && heard(pool)))
	}
	if l := crashLoopSummary(st); l != "" {
		field("Crash loop", l)
	}
	if l := st.LastRolledOut; l != nil && l.Revision != st.Revision {
		field("Last rolled out", l.Revision)
	}
	if manager != "" {
		b.WriteString(manager + "\n")
	}
	for _, n := range headerNotes(ag, pools) {
		b.WriteString(n + "\n")
	}
}

// crashLoopSummary is the crash loop the manager names (status.crashLoop)
// in a sentence, or "" when there is none or RollingRestart's message
// says it already: its crash note ends with contract.CrashLoopClause of
// these nodes, and is left out where the message leads with something
// else (a halt, a restart under way on other nodes, an invalid
// annotation, a silent agent). nodeCount, not the nodes named, counts
// them: the field names at most 64.
func crashLoopSummary(st *ferryv1.AppGroupStatus) string {
	l := st.CrashLoop
	if l == nil || l.Revision != st.Revision {
		return ""
	}
	n := max(int(l.NodeCount), len(l.Nodes))
	clause := contract.CrashLoopClause(n, l.Message)
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart); c != nil &&
		strings.Contains(c.Message, clause) {
		return ""
	}
	return fmt.Sprintf("revision %s on %s: its processes die soon after they are ready, and %s",
		l.Revision, contract.NodeListOf(l.Nodes, n), clause)
}

// haltSummary is the halted rollout the manager remembers, in a sentence:
// it outlives the node's own report (the node may be gone, or returned to
// an older revision), and is what keeps the revision from the next node.
// everyPool: every other node's pool (at least one) was given the
// revision already (a new AppGroup starts on all its nodes at once), so
// no node waits on the halt (givenToEveryPool). pool is the halted
// node's (nil: none listed), whose processes say whether older ones
// serve there while its agent retries, when its agent is heard from
// (retryingOn).
func haltSummary(h *ferryv1.HaltedRollout, now time.Time, everyPool bool, pool *ferryv1.ProcessPool, heard bool) string {
	s := fmt.Sprintf("revision %s, on %s, %s ago", h.Revision, h.Node, duration.HumanDuration(now.Sub(h.Since.Time)))
	if h.Reason != "" {
		s += ": " + h.Reason
	}
	if !h.Resisted {
		// A Blocking restart, or resistDeploymentErrors off: the node
		// stays on the revision, and the halt ends once it runs there.
		// Older processes may serve there meanwhile (a Rolling restart's
		// old ones), or none (a Blocking restart stopped them).
		s += "\n(" + retryingOn(pool, h.Revision, heard) + ")"
		if everyPool {
			return s + everyPoolHasIt(pool)
		}
		if !poolOf(pool, h.Revision) {
			// No pool of it there to run it: "until that node runs
			// it" read as if waiting would do.
			return s + "\nNo other node gets it: set a new revision to go on."
		}
		return s + "\nNo other node gets it until that node runs it."
	}
	return s + "\n(the node kept serving an older revision)" +
		"\nNo other node gets it, and it is not retried: set a new revision to retry."
}

// everyPoolHasIt is what a halt not resisted ends on where every pool
// was given its revision already (a new AppGroup starts on all its nodes
// at once), pool the halted node's: once that node runs it, where it has
// a pool there, its agent heard from or not; else (no pool there now, or
// it is being deleted: the manager no longer counts the node) once the
// other nodes do, the rollout then complete. "Once that node runs it"
// read as if waiting for a node that never will.
func everyPoolHasIt(pool *ferryv1.ProcessPool) string {
	if pool == nil || pool.DeletionTimestamp != nil {
		return "\nEvery other node was given it already; the halt ends once they run it."
	}
	return "\nEvery node was given it already; the halt ends once that node runs it."
}

// poolOf: pool is a pool of revision on the halted node, not being
// deleted, which may yet run it (its agent heard from or not).
func poolOf(pool *ferryv1.ProcessPool, revision string) bool {
	return pool != nil && pool.DeletionTimestamp == nil && pool.Spec.Revision == revision
}

// retryingOn says what becomes of revision on the halted node's pool:
// where its agent reports on a pool of the revision (heard), that it
// keeps retrying it, after what serves there (olderOn). Elsewhere its
// retries are not known, and it says why instead: no pool there now (the
// node gone, or unlabelled), the pool being deleted, the pool on another
// revision (returned from it), or its agent not heard from.
func retryingOn(pool *ferryv1.ProcessPool, revision string, heard bool) string {
	switch {
	case pool == nil:
		return "no pool on the node now"
	case pool.DeletionTimestamp != nil:
		return "its pool on the node is being deleted"
	case pool.Spec.Revision == "":
		return "the node is given no revision now"
	case pool.Spec.Revision != revision:
		return "the node runs revision " + pool.Spec.Revision + " now"
	case !heard:
		return "its agent is not heard from"
	}
	return olderOn(pool, revision, heard) + "its agent keeps retrying"
}

// olderOn says whether processes of a revision older than revision serve
// on pool's node, as the manager's halt message does (contract.WhatServes):
// a ready one of another revision, by its process table (else its
// counts), on a node that serves (contract.ProxyServes: not one whose
// agent stops, or whose proxy cannot listen). Or, with none older, that
// one of revision does: a retry's, between two of the agent's failures.
// "" when its counts, with no process table, cannot tell whether an older
// one is ready (contract.Served.OlderUnknown), when there is no pool to
// tell (the node gone, or unlabelled), the
// pool is being deleted (the manager says its node is no longer
// selected, and nothing of what serves there), the pool is on another
// revision now, or its agent is not heard from
// (heard: it reported, and is not silent), whose figures tell nothing of
// now; the manager's message says nothing of a silent node either. Its
// silence is judged here as the pool rows do, by the API server's record
// of the agent's writes and this machine's clock, not by when the manager
// saw them: near the bound, the two may differ.
func olderOn(pool *ferryv1.ProcessPool, revision string, heard bool) string {
	if pool == nil || pool.DeletionTimestamp != nil || !heard || pool.Spec.Revision != revision {
		return ""
	}
	served := contract.WhatServes(pool, contract.ProxyServes(pool))
	switch {
	case served.Older:
		return "older processes serve on the node meanwhile; "
	case served.OlderUnknown:
		// No table, and the counts cannot tell.
		return ""
	case served.Spec:
		return "a process of it serves on the node, none older; "
	}
	return "no older process serves on the node; "
}

// poolOn is the pool of pools on node, or nil: the one the manager keeps
// there (kept, contract.KeptPools of pools: of those not being deleted,
// the lowest name; it deletes the others), else the first being deleted. Not the first
// listed: a pool being deleted beside the node's own (a lost race's, or
// its last drained while a new one is made) read as the node's, and the
// halt as one no pool there may run ("Every other node was given it
// already") where one may.
func poolOn(node string, kept map[string]*ferryv1.ProcessPool, pools []ferryv1.ProcessPool) *ferryv1.ProcessPool {
	if p := kept[node]; p != nil {
		return p
	}
	for i := range pools {
		if pools[i].Spec.NodeName == node {
			return &pools[i] // every one there being deleted
		}
	}
	return nil
}

// givenToEveryPool: every pool the manager keeps (kept, by
// contract.KeptPools) on a node other than the halted node (at least one) has revision as its
// spec, and the halted node's own pool too where it keeps one, and the
// nodes it keeps a pool on are as many as the nodes selected (total,
// status.nodes.total). The other nodes' pools judge it: with none (a
// one-node AppGroup whose node was deselected), its own pool, being
// deleted, had it while no node is left to run it, and "Every other node
// was given it" named nodes there are not. A pool the manager does not
// keep is none of its node's. One being deleted (its node deselected, or
// with its own pool beside): of the revision, it read as a node given it
// that no node runs; of another, as one kept from it. A lost creation
// race's second pool on a node, which the manager deletes: of another
// revision, it read as a node kept from the target where the pool kept
// there has it (of the target, beside an older kept pool, it changed
// nothing: that pool keeps the node from it either way). A node selected
// whose older pool is being deleted, with no pool beside it yet (the
// manager waits for the old one to drain), is not given it: counting
// pools alone, it read "Every node was given it already".
func givenToEveryPool(node, revision string, total int32, kept map[string]*ferryv1.ProcessPool) bool {
	others := 0
	for keptOn, p := range kept {
		if p.Spec.Revision != revision {
			return false
		}
		if keptOn != node {
			others++
		}
	}
	return others > 0 && len(kept) >= int(total)
}

// conditionSummary is "True (Reason) message", or that it is not reported.
func conditionSummary(c *metav1.Condition) string {
	if c == nil {
		return "not reported yet"
	}
	s := fmt.Sprintf("%s (%s)", c.Status, c.Reason)
	if c.Message != "" {
		s += " " + c.Message
	}
	return s
}

// headerNotes says where the manager lags behind the AppGroup, and why it
// has no pool when it has none.
func headerNotes(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) []string {
	st := &ag.Status
	var notes []string
	annotation, ok := ag.Annotations[ferryv1.RevisionAnnotation]
	if !ok {
		annotation = contract.DefaultRevision
	}
	switch {
	case st.Revision == "" && len(st.Conditions) == 0:
		notes = append(notes, "The manager has not reported on this AppGroup yet: is ferry-manager running?")
	case contract.ValidateRevision(annotation) == nil && !onRevision(st.Revision, annotation):
		notes = append(notes, fmt.Sprintf("The manager has not taken up %s=%s yet (status.revision is %s).",
			ferryv1.RevisionAnnotation, annotation, st.Revision))
	default:
		if lag := generationLag(ag); lag != "" {
			notes = append(notes, sentence(lag))
		}
	}
	if len(pools) == 0 {
		notes = append(notes, noPoolsNote(ag, contract.ValidateRevision(annotation) != nil))
	}
	return notes
}

// sentence is s with a capital and a full stop.
func sentence(s string) string { return strings.ToUpper(s[:1]) + s[1:] + "." }

// generationLag says how the manager stands with a metadata.generation
// that status.observedGeneration lags; "" when it does not lag, or when the
// revision annotation explains it. The manager stamps
// status.observedGeneration only after a pass that completed with a valid
// annotation, but the conditions of every status it writes with the
// generation it read: conditions of the current generation mean it has
// seen that generation.
func generationLag(ag *ferryv1.AppGroup) string {
	st := &ag.Status
	if st.ObservedGeneration == ag.Generation {
		return ""
	}
	seen := slices.ContainsFunc(st.Conditions, func(c metav1.Condition) bool { return c.ObservedGeneration == ag.Generation })
	switch {
	case !seen:
		return fmt.Sprintf("the manager has not reconciled generation %d yet (last: %d)", ag.Generation, st.ObservedGeneration)
	case invalidRevision(ag) != nil:
		// Its conditions say so; the lag ends with the fix.
		return ""
	}
	// A pass stopped only by a change made meanwhile (a conflict) looks
	// again shortly and records no event.
	return fmt.Sprintf("the manager has seen generation %d but not completed a pass over it (status.observedGeneration is %d); "+
		"it retries, and a WriteFailed event names a write that failed, if one did", ag.Generation, st.ObservedGeneration)
}

// invalidRevision is the condition by which the manager says the revision
// annotation is invalid: Ready's when it does (no valid revision ever, or
// a node left without a pool), else RollingRestart's; nil when neither
// does.
func invalidRevision(ag *ferryv1.AppGroup) *metav1.Condition {
	for _, t := range []string{ferryv1.ConditionReady, ferryv1.ConditionRollingRestart} {
		if c := meta.FindStatusCondition(ag.Status.Conditions, t); c != nil && c.Reason == ferryv1.ReasonInvalidRevision {
			return c
		}
	}
	return nil
}

// noPoolsNote says why the AppGroup has no pool, as far as its status
// tells: an invalid annotation (invalidNow: it still is), another
// AppGroup's port on every selected node, no node selected, or else that
// the manager may not have created them yet.
func noPoolsNote(ag *ferryv1.AppGroup, invalidNow bool) string {
	st := &ag.Status
	ready := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionReady)
	switch {
	case !ag.DeletionTimestamp.IsZero():
		return "No ProcessPools left: the AppGroup is being deleted."
	case invalidNow && invalidRevision(ag) != nil:
		return fmt.Sprintf("No ProcessPools: none is created until the %s annotation is valid: %s",
			ferryv1.RevisionAnnotation, invalidRevision(ag).Message)
	case ready == nil || ready.ObservedGeneration != ag.Generation:
		// Said of an older spec: its nodeSelector or port may have moved.
	case ready.Reason == ferryv1.ReasonPortConflict && st.Nodes.Total == 0:
		// The manager leaves the nodes where it lost the port out of
		// the count.
		return "No ProcessPools: another AppGroup has this one's listen.port on every selected node (see Ready)."
	case ready.Reason == ferryv1.ReasonNoNodes:
		return "No ProcessPools: no node matches spec.nodeSelector."
	}
	return "No ProcessPools: no node matches spec.nodeSelector, or the manager has not created them yet."
}

// silence is how long p's agent has been silent beyond what is normal, or
// 0. An agent renews its node's Lease every few seconds and rewrites an
// unchanged pool status only every contract.StatusReportInterval: its
// last sign of life is the later of the Lease renewal and the pool's
// status report, each timed by the API server's record of the agent's
// write (lastWrite), not by the agent's clock, as the manager times them
// by when it sees them (controllers/signs.go): an agent whose clock is behind is not silent
// for it, and a dead one whose clock is ahead is. Without the Leases
// (leases nil), an old report is normal for up to that interval more.
func silence(p *ferryv1.ProcessPool, now time.Time, staleAfter time.Duration, leases map[string]time.Time) time.Duration {
	hb := p.Status.HeartbeatTime
	if hb == nil {
		return 0
	}
	last, bound := lastWrite(p.ManagedFields, heartbeatField, hb.Time), staleAfter+clockSlack
	if leases == nil {
		bound += contract.StatusReportInterval
	} else if renew := leases[p.Spec.NodeName]; renew.After(last) {
		last = renew
	}
	if d := now.Sub(last); d > bound {
		return d
	}
	return 0
}

// figuresAsOf says how old a live agent's figures are: it writes them at
// once when a process changes state, else at most every stats interval,
// so a process's Sessions, Processed and "Last used" may lag a busy
// process by that much (a walk saw "Last used: 17s ago" on a process
// answering a hundred requests a second).
func figuresAsOf(age time.Duration) string {
	return fmt.Sprintf("figures as of %s ago (the agent sends them when a process changes state, "+
		"else at most every --stats-interval)", duration.HumanDuration(max(age, 0)))
}

// poolView is one ProcessPool as the passenger-status view shows it.
func poolView(ag *ferryv1.AppGroup, p *ferryv1.ProcessPool, now time.Time, silent time.Duration) statusview.Pool {
	st, t := &p.Status, &p.Spec.Template
	title := fmt.Sprintf("%s on %s", ag.Name, p.Spec.NodeName)
	if st.Address != "" {
		title += " (" + st.Address + ")"
	}
	v := statusview.Pool{
		Title: title, Root: t.App.Root, Revision: p.Spec.Revision, Strategy: t.Restart.Strategy,
		MinProcesses: t.Pool.MinProcesses, MaxProcesses: t.Pool.MaxProcesses, QueueLength: st.QueueLength,
		Processes: st.Processes, Restart: st.RestartProgress, Resisting: st.DeploymentError,
		LastSpawnError: st.LastSpawnError, Notes: poolNotes(ag, p, now, silent),
	}
	if meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionScalingError) {
		v.ScalingError = st.LastSpawnError
	}
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == ferryv1.ReasonRolloutIncomplete {
		v.Incomplete = incomplete(ag, p)
	}
	return v
}

// incomplete is pool p's last restart, which its RollingRestart
// condition says left processes on an older revision. A ProcessPool keeps
// none of the restart's own errors (the standalone agent's
// lastRestart.errors): its last spawn error, when of the revision the
// restart went to, says why, as the manager's RolloutIncomplete message
// does. With more than one process left, each after a failed spawn of
// its own, the view says the pool keeps only that one and the agent's log
// has each: one error under "2 of 2 processes" read as the only one.
// resistDeploymentErrors is the AppGroup's, as in the manager's message:
// turned on since, the view says it was false then (ResistsNow).
func incomplete(ag *ferryv1.AppGroup, p *ferryv1.ProcessPool) *statusview.Incomplete {
	st := &p.Status
	n := st.ProcessCounts
	in := &statusview.Incomplete{Left: n.Total - n.Updated, Total: n.Total,
		ResistsNow: contract.ResistanceAsked(&ag.Spec.Restart), Revision: st.ObservedRevision}
	if e := st.LastSpawnError; e != nil && e.Revision == st.ObservedRevision {
		in.Errors = []ferryv1.SpawnError{*e}
		in.Details = lastErrorOnly(in.Left, p.Spec.NodeName) + lastSpawnErrorQuery(ag, p.Spec.NodeName)
	}
	return in
}

// lastErrorOnly leads the pointer to the pool's last spawn error, which
// is all a ProcessPool keeps: left processes were left behind, each by a
// failed spawn its agent logged.
func lastErrorOnly(left int32, node string) string {
	if left <= 1 {
		return "the last spawn's error: "
	}
	return fmt.Sprintf("the pool keeps the last spawn's error only, not one for each of the %d processes; "+
		"%s's agent logged each. The last: ", left, node)
}

// lastSpawnErrorQuery is the command that prints the last spawn error of
// ag's pool on node in full, to paste: "pools[].status.lastSpawnError"
// alone is no jq query (no leading dot), and, made one, prints every
// node's.
func lastSpawnErrorQuery(ag *ferryv1.AppGroup, node string) string {
	return fmt.Sprintf("kubectl ferry status %s -n %s --json | jq '.pools[] | select(.node == %q).status.lastSpawnError'",
		ag.Name, ag.Namespace, node)
}

// poolNotes are what the view says beyond the pool's own figures: how old
// they are, an agent that is silent, behind, or a pool that is not ready
// or being removed.
func poolNotes(ag *ferryv1.AppGroup, p *ferryv1.ProcessPool, now time.Time, silent time.Duration) []string {
	st, node := &p.Status, p.Spec.NodeName
	var notes []string
	switch {
	case st.HeartbeatTime == nil:
		notes = append(notes, fmt.Sprintf("agent on %s has not reported yet", node))
	case silent > 0:
		notes = append(notes, fmt.Sprintf("agent on %s has not reported for %s; figures may be stale",
			node, duration.HumanDuration(silent)))
	default:
		// Timed by the status's write, as silence is: the agent's stamp
		// is off by as much as its clock.
		notes = append(notes, figuresAsOf(now.Sub(lastWrite(p.ManagedFields, heartbeatField, st.HeartbeatTime.Time))))
	}
	if st.HeartbeatTime != nil && st.ObservedRevision != p.Spec.Revision {
		notes = append(notes, fmt.Sprintf("agent on %s has not taken up revision %s yet (it runs %s)",
			node, p.Spec.Revision, st.ObservedRevision))
	}
	target := ag.Status.Revision
	// The manager clears the mark from a pool given the target again; one
	// draining elsewhere may keep the mark of an older target.
	switch from := p.Annotations[contract.ReturnedFromAnnotation]; {
	case from != "" && from == target:
		notes = append(notes, fmt.Sprintf("returned by the manager to revision %s: it could not run %s, "+
			"and was not resisting it (see the NodeReturned event)", p.Spec.Revision, from))
	case target != "" && p.Spec.Revision != target:
		why := "waiting for its wave"
		c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
		switch {
		case c != nil && c.Reason == ferryv1.ReasonInvalidRevision:
			// The manager starts no wave until the annotation is fixed.
			why = fmt.Sprintf("no wave starts while the %s annotation is invalid (see RollingRestart)",
				ferryv1.RevisionAnnotation)
		case c != nil && c.Reason == ferryv1.ReasonRolloutHalted ||
			ag.Status.HaltedRollout != nil && ag.Status.HaltedRollout.Revision == target:
			why = "the rollout is halted"
		}
		notes = append(notes, fmt.Sprintf("not given revision %s yet: %s", target, why))
	}
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
		notes = append(notes, fmt.Sprintf("Not ready (%s): %s", c.Reason, c.Message))
	}
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionScalingError); c != nil &&
		c.Status == metav1.ConditionTrue && st.LastSpawnError == nil {
		notes = append(notes, "Scaling error (backing off): "+c.Message)
	}
	if p.DeletionTimestamp != nil {
		notes = append(notes, fmt.Sprintf("being removed: the agent on %s drains its processes", node))
	}
	return notes
}
