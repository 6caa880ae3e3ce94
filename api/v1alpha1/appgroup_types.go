package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AppGroupSpec is one web application and the nodes it runs on.
//
// Two rules refuse what a Command app would ignore. They are the
// AppGroup's, not AppSpec's, which ProcessPools share: a pool the manager
// creates from an AppGroup stored before them must not be refused.
// +kubebuilder:validation:XValidation:rule="self.app.type != 'Command' || !has(self.app.python)",message="python may only be set when type is WSGI",fieldPath=.app.python
// +kubebuilder:validation:XValidation:rule="self.app.type != 'Command' || !has(self.app.env) || !self.app.env.exists(e, e.name == 'PORT')",message="env may not set PORT when type is Command: the agent gives each process its own port",fieldPath=.app.env
//
// The agent's own worker variables are refused too: FERRY_REVISION, and
// for WSGI the loader's FERRY_SOCKET, FERRY_APP_ROOT, FERRY_STARTUP_FILE
// and FERRY_READY_FD, exactly the names the launch sets (agent/spawn's
// appEnv leaves the app's value of one out). The app's value of one never
// worked: it won over the agent's, and made the loader listen or load
// elsewhere than the agent expects, or the app see a revision not its own. Any other name, FERRY_ ones included, is the
// app's (a Command app's FERRY_SOCKET too, which the agent never sets):
// a prefix rule would refuse every spec change of an AppGroup that ran
// fine with its own FERRY_MODE. The rule is the AppGroup's too, for the
// pools rendered from an AppGroup stored before it. Such an AppGroup
// stays updatable while its spec is unchanged (the API server ratchets
// the rule); a spec change must rename the variable. (A rule keeping the
// names oldSelf had is over the CRD's CEL cost budget: an optional
// oldSelf's env has no size bound.)
// +kubebuilder:validation:XValidation:rule="!has(self.app.env) || self.app.env.all(e, e.name != 'FERRY_REVISION' && (self.app.type != 'WSGI' || !(e.name in ['FERRY_SOCKET', 'FERRY_APP_ROOT', 'FERRY_STARTUP_FILE', 'FERRY_READY_FD'])))",message="env may not set FERRY_REVISION, nor, when type is WSGI, FERRY_SOCKET, FERRY_APP_ROOT, FERRY_STARTUP_FILE or FERRY_READY_FD: the agent sets these for its workers (the revision a worker was spawned for, and the WSGI loader's socket, root, startup file and readiness descriptor) and keeps its values over the app's; name the variable otherwise",fieldPath=.app.env
type AppGroupSpec struct {
	AppTemplate `json:",inline"`

	// nodeSelector picks the nodes that run this app: every Node whose
	// labels include all of these gets a pool of worker processes and a
	// proxy on listen.port. Empty selects every node. Keys and values are
	// those a Node label may have, as in a Pod's nodeSelector.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.indexOf('/') <= 253 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="nodeSelector keys must be label keys: an optional DNS subdomain and '/', then a name of at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`
}

// LabelValue is a label's value as a Node may have it: empty, or at most
// 63 letters, digits, '-', '_' or '.', beginning and ending with a letter
// or digit.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')",message="nodeSelector values must be label values: empty, or at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
type LabelValue string

// NodeLabels is the nodeSelector as a label set, to build a selector of.
func (s *AppGroupSpec) NodeLabels() labels.Set {
	set := make(labels.Set, len(s.NodeSelector))
	for k, v := range s.NodeSelector {
		set[k] = string(v)
	}
	return set
}

// ProcessCounts counts worker processes.
type ProcessCounts struct {
	// ready is how many processes serve requests now.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Ready int32 `json:"ready"`
	// updated is how many processes run the target revision.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Updated int32 `json:"updated"`
	// total is how many processes exist, in any state.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Total int32 `json:"total"`
}

// NodeCounts counts the nodes of an AppGroup.
type NodeCounts struct {
	// ready is how many nodes have at least minProcesses ready processes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Ready int32 `json:"ready"`
	// updated is how many nodes run the target revision on every process.
	// A node in a crash loop of it that nothing returns to an older
	// revision counts throughout the loop, also at a death that leaves
	// none of its processes running (a pool of one), as RollingRestart's
	// message counts it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Updated int32 `json:"updated"`
	// total is how many nodes are selected.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Total int32 `json:"total"`
}

// AppGroupStatus is the manager's roll-up of every node's ProcessPool.
type AppGroupStatus struct {
	// observedGeneration is the metadata.generation the manager last
	// reconciled without error.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// revision is the target revision: the ferry.dev/revision annotation
	// and a hash of everything in the spec that changes how processes are
	// spawned, as "<annotation>-<hash>".
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision,omitempty"`

	// processes counts the worker processes over every node. Written also
	// when all are zero, so that the UPDATED column reads 0, not blank.
	// processes.ready counts only the processes a request can reach: not
	// those of a node whose proxy cannot listen on listen.port
	// (ListenFailed; one that still serves on its old port counts), nor
	// those of a node whose agent is silent or stopping.
	// +optional
	Processes ProcessCounts `json:"processes"`

	// nodes counts the selected nodes the AppGroup can have a pool on: a
	// node where another AppGroup holds listen.port and this one has no
	// pool (PortConflict) is not counted.
	// +optional
	Nodes NodeCounts `json:"nodes,omitzero"`

	// readyProcesses is processes.ready/processes.total, for display.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	ReadyProcesses string `json:"readyProcesses,omitempty"`

	// readyNodes is nodes.ready/nodes.total, for display.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	ReadyNodes string `json:"readyNodes,omitempty"`

	// conditions are Ready, RollingRestart and ResistingDeploymentError.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// haltedRollout is the manager's record of why the rollout of the
	// target is halted: a node resisted it, or could not spawn it with
	// nothing older to serve while it ran on no node yet. It is kept until
	// the target changes, that node runs the revision, or every selected
	// node does, so the halt outlives the node: unselected, or its agent
	// restarted, it still keeps the revision from every further node.
	// A node whose processes of the target keep dying soon after they are
	// ready, where nothing returns it, is not recorded once its restart is
	// over (nor kept, unless it resisted): RollingRestart's message names
	// it as a crash loop instead.
	// +optional
	HaltedRollout *HaltedRollout `json:"haltedRollout,omitempty"`

	// provenRevision is the target once it has run, rolled out, on some
	// node: with every process on it and ready. A node that could not
	// replace some processes (resistDeploymentErrors false:
	// RolloutIncomplete) ran it only in part, and proves nothing. A node
	// that cannot spawn a proven revision meets a scaling
	// error (a database down at boot, say): it backs off and retries, and
	// the next wave waits for it. One that cannot spawn a revision that
	// never ran meets a deployment error, which halts the rollout until
	// the target changes (haltedRollout).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ProvenRevision string `json:"provenRevision,omitempty"`

	// lastRolledOut is the last revision that ran, rolled out, on every
	// selected node (not a revision some node ran only in part:
	// RolloutIncomplete), and its app. While a rollout is halted, or its target
	// has not proven itself yet (provenRevision), a node that joins, or
	// that can no longer resist (its agent restarted and lost the old
	// processes), starts on the revision another node serves ready (not
	// one that left processes on an older revision: RolloutIncomplete),
	// else on this one; a joining node is then rolled to the target in
	// turn.
	// +optional
	LastRolledOut *RolledOutRevision `json:"lastRolledOut,omitempty"`

	// crashLoop names the nodes where processes of the target die soon
	// after they are ready (within the 10s crash window) while nothing
	// returns those nodes to an older revision, and why nothing does: the
	// crash loop RollingRestart's message describes. Their agents respawn
	// the processes for as long as the revision is the target, so the
	// rollout neither goes on nor ends by itself. It is set from a node's
	// first such death. A node leaves it once a process of the target
	// lives the crash window there, the node is no longer selected, its
	// agent's report is stale or missing (the manager does not take a
	// silent agent's word), or the manager returns it to an older
	// revision after all (the node resisted the target); the whole field
	// is cleared with its last node, when another revision is the target,
	// or when nothing keeps the nodes on it any more (resistance turned on
	// while an older revision runs: the manager returns them). It changes
	// with its nodes
	// or its reason, not at each death. The dying processes' error and
	// output are in the nodes' ProcessPools (status.lastSpawnError).
	// Unset when there is no crash loop, and by managers older than this
	// field.
	// +optional
	CrashLoop *CrashLoop `json:"crashLoop,omitempty"`
}

// CrashLoop is a revision whose processes die soon after they are ready
// on some nodes, with nothing to return those nodes to an older revision.
type CrashLoop struct {
	// revision is the revision that crash-loops: the target
	// (status.revision).
	// +required
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`

	// nodes are the selected nodes where it crash-loops, sorted: the
	// first 64 of them (nodeCount says how many there are; a node past
	// the cut is not named).
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	Nodes []string `json:"nodes"`

	// nodeCount is how many nodes it crash-loops on: more than len(nodes)
	// when the list is cut.
	// +required
	// +kubebuilder:validation:Minimum=1
	NodeCount int32 `json:"nodeCount"`

	// reason says why nothing returns those nodes to an older revision,
	// in a word for programs to switch on: BlockingRestart,
	// ResistanceOff, RevisionProven or NoOlderRevision (api/v1alpha1's
	// CrashLoop* constants; a later manager may add others). It is the
	// first node's, and the nodes' may differ: a proven revision keeps
	// every node on it (RevisionProven) but the one whose resistance
	// status.haltedRollout records, which stays only where no older
	// revision runs (NoOlderRevision).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`

	// message says the reason in a sentence, for people (the first
	// node's too): "a Blocking restart resists no deployment error",
	// "resistDeploymentErrors is false", "revision R lasted on a node
	// before: status.provenRevision" (a proven revision's failure is
	// taken for a scaling error, a database down at boot, and retried),
	// or "no older revision runs" (a new AppGroup's first revision).
	// +required
	// +kubebuilder:validation:MaxLength=256
	Message string `json:"message"`
}

// MaxCrashLoopNodes is how many nodes status.crashLoop.nodes names at
// most (its MaxItems); nodeCount counts them all.
const MaxCrashLoopNodes = 64

// Reasons why nothing returns a crash loop's nodes to an older revision
// (status.crashLoop.reason).
const (
	// CrashLoopBlockingRestart: restart.strategy is Blocking, which
	// resists no deployment error.
	CrashLoopBlockingRestart = "BlockingRestart"
	// CrashLoopResistanceOff: restart.resistDeploymentErrors is false.
	CrashLoopResistanceOff = "ResistanceOff"
	// CrashLoopRevisionProven: the revision ran rolled out on a node
	// before (status.provenRevision), so its failure is taken for a
	// scaling error (a database down at boot) and retried; a node that
	// resisted the revision itself is returned all the same.
	CrashLoopRevisionProven = "RevisionProven"
	// CrashLoopNoOlderRevision: no older revision runs to return the
	// nodes to (a new AppGroup's first revision).
	CrashLoopNoOlderRevision = "NoOlderRevision"
)

// HaltedRollout is a rollout a node halted.
type HaltedRollout struct {
	// revision is the revision whose rollout is halted.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`

	// node is the node that halted it.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`

	// reason is that node's spawn error, as its pool reported it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// resisted: the node kept serving an older revision (it resisted the
	// error, or the manager returned it to an older revision), so the
	// AppGroup resists the error (ResistingDeploymentError) for as long as
	// the halt is remembered. False when the node stays on the revision,
	// its agent retrying (older processes may still serve there): a
	// Blocking restart, or resistDeploymentErrors off.
	// +optional
	Resisted bool `json:"resisted,omitempty"`

	// since is when the manager first saw the halt.
	// +required
	Since metav1.Time `json:"since"`
}

// RolledOutRevision is a revision with the app it runs.
type RolledOutRevision struct {
	// revision is the revision, as status.revision.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`

	// app is the app block of that revision.
	// +required
	App AppSpec `json:"app"`
}

// AppGroup is one web application served by a pool of worker processes on
// each selected node, behind the node agent's proxy. Bump the
// ferry.dev/revision annotation to roll it without downtime.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ag,categories=ferry
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="The Ready condition: True when every selected node's pool has minProcesses ready processes a request can reach"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="Why Ready is what it is, in a word (NoNodes, PortConflict, NameTaken, InvalidRevision, ...); -o wide adds its message"
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.revision`,description="The target revision: the ferry.dev/revision annotation and a hash of spec.app"
// +kubebuilder:printcolumn:name="Processes",type=string,JSONPath=`.status.readyProcesses`,description="Ready/total worker processes over every node (ready: a request can reach them)"
// +kubebuilder:printcolumn:name="Updated",type=integer,JSONPath=`.status.processes.updated`,description="Processes on the target revision"
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.readyNodes`,description="Ready/total selected nodes (those lost to a port conflict left out)"
// +kubebuilder:printcolumn:name="Restarting",type=string,JSONPath=`.status.conditions[?(@.type=="RollingRestart")].status`,description="The RollingRestart condition: True while a rollout is under way"
// +kubebuilder:printcolumn:name="Resisting",type=string,JSONPath=`.status.conditions[?(@.type=="ResistingDeploymentError")].status`,description="The ResistingDeploymentError condition: True while a node keeps its old processes because the new revision failed to spawn"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,description="Ready's message: how the nodes are, or what is wrong and what to do"
// +kubebuilder:printcolumn:name="Rollout",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="RollingRestart")].message`,description="RollingRestart's message: where the rollout is, or why it halted"
type AppGroup struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the application and where it runs.
	// +required
	Spec AppGroupSpec `json:"spec"`

	// status is the manager's roll-up of every node.
	// +optional
	Status AppGroupStatus `json:"status,omitzero"`
}

// AppGroupList is a list of AppGroups.
//
// +kubebuilder:object:root=true
type AppGroupList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AppGroup `json:"items"`
}
