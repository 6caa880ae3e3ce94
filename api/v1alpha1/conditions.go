package v1alpha1

// RevisionAnnotation is the annotation on an AppGroup that names its
// revision. Changing its value is how a user deploys: every node's pool
// replaces its processes with ones of the new revision (a rolling restart,
// node by node in waves of restart.maxConcurrentNodes), the Kubernetes
// equivalent of Passenger's `touch tmp/restart.txt`. The value is 1 to 63
// letters, digits, '.', '_' or '-'; a counter or a commit id is usual. The
// chart's revision policy refuses an invalid value at apply; without it,
// an invalid value rolls nothing: the condition says InvalidRevision, and
// the last valid value stays the target. Absent, it counts as "0". A
// change of the annotation alone is enough: it rolls even though
// metadata.generation does not move. Setting it to the value it already
// has does nothing. It is the only annotation under ferry.dev that Ferry
// reads on an AppGroup: of another one (a misspelling), the manager
// records an UnknownAnnotation event.
const RevisionAnnotation = "ferry.dev/revision"

// Labels the manager puts on every ProcessPool it creates.
const (
	// AppGroupLabel names the AppGroup that owns a ProcessPool.
	AppGroupLabel = "ferry.dev/appgroup"
	// NodeLabel names the node a ProcessPool runs on.
	NodeLabel = "ferry.dev/node"
)

// Condition types reported on AppGroups (rolled up by the manager) and on
// ProcessPools (reported by each node's agent).
const (
	// ConditionReady is True when the processes can serve: on a ProcessPool,
	// at least minProcesses processes are ready; on an AppGroup, every
	// selected node's pool reported so. Unknown when an agent has not
	// reported for too long.
	ConditionReady = "Ready"

	// ConditionRollingRestart is True while processes are being replaced by
	// ones of a new revision, or, on an AppGroup, while nodes wait for their
	// wave, and while the new processes of a revision not proven yet
	// (status.provenRevision) must be ready and live the crash window
	// (ProvingRevision; a new AppGroup's first revision too). Its message
	// says where the rollout is.
	ConditionRollingRestart = "RollingRestart"

	// ConditionResistingDeploymentError is True while a pool is frozen
	// because its new revision failed to spawn during a rolling restart.
	// Its message carries the reason and an excerpt of the spawn's output.
	ConditionResistingDeploymentError = "ResistingDeploymentError"

	// ConditionScalingError is True on a ProcessPool while spawns of a
	// revision that already serves keep failing (scaling up, or replacing a
	// crashed process), while its processes die within 10s of being ready,
	// or while a revision that has never started there fails with no older
	// process to resist with (a new pool). The pool backs off and retries;
	// it does not freeze.
	ConditionScalingError = "ScalingError"
)

// Reasons for the Ready condition.
const (
	// ReasonProcessesReady: at least minProcesses processes are ready on
	// every node (AppGroup) or on this node (ProcessPool).
	ReasonProcessesReady = "ProcessesReady"
	// ReasonProcessesNotReady: some pool has fewer than minProcesses ready.
	ReasonProcessesNotReady = "ProcessesNotReady"
	// ReasonNoNodes: no node matches the AppGroup's nodeSelector. On
	// RollingRestart too: with no node, nothing is rolled out.
	ReasonNoNodes = "NoNodes"
	// ReasonPoolsPending: some selected node's pool has not reported yet,
	// or is not made yet because the node's previous pool (of a time it
	// was not selected) still drains.
	ReasonPoolsPending = "PoolsPending"
	// ReasonAgentNotReporting: some node's agent has not reported within
	// the staleness bound; what it last said can no longer be trusted.
	ReasonAgentNotReporting = "AgentNotReporting"
	// ReasonInvalidRevision: the revision annotation is not a valid value.
	// It is what clusters without the chart's revision policy (the
	// ValidatingAdmissionPolicy <fullname>-revision, value revisionPolicy)
	// see: the policy refuses such a value when it is set or changed, and
	// leaves only one stored before it.
	// On Ready only while it has never been valid (nothing is rolled out);
	// after a valid one, on RollingRestart: the last valid revision stays
	// the target, and Ready says how what runs is. A node selected
	// meanwhile starts on what the other nodes serve; on Ready too when
	// none serves anything it could start on.
	ReasonInvalidRevision = "InvalidRevision"
	// ReasonListenFailed: the node's proxy cannot listen on listen.port
	// (another program holds it, say).
	ReasonListenFailed = "ListenFailed"
	// ReasonPortConflict: another AppGroup has listen.port on some of the
	// selected nodes (it had the port there first, or is older); this one
	// gets no pool there until the port is free. On RollingRestart too,
	// when that is every selected node: nothing is rolled out.
	ReasonPortConflict = "PortConflict"
	// ReasonNameTaken: the AppGroup's Service cannot be made: an object of
	// that name that is not the AppGroup's has it (the manager never takes
	// one over). (An EndpointSlice's name taken is not: its endpoints go
	// into a slice of another name, behind the Service all the same, and
	// an event says so.) Every selected node's pool runs as usual, but no
	// request reaches them through the Service until that object is
	// renamed or deleted; the message names it, and says how the pools
	// are. Also when a node's pool cannot be made: other
	// ProcessPools have both names it may have; the message names the
	// node and them. Behind InvalidRevision, PortConflict or NoNodes,
	// which Ready reads first, taken names (the pools' too) are in
	// Ready's message after "Also:".
	ReasonNameTaken = "NameTaken"
	// ReasonAgentStopping: on a ProcessPool, its node's agent is stopping
	// (SIGTERM: an upgrade, a node drain): its proxy serves on for the
	// agent's drain delay, then takes no new connections, and its
	// processes stop, until an agent starts again on the node. The manager takes the node out of the AppGroup's Service
	// at once (its endpoint terminating, serving while processes are
	// ready); on the AppGroup, the node reads not ready.
	ReasonAgentStopping = "AgentStopping"
	// ReasonDeleting: the AppGroup is being deleted; it is released once
	// every node's agent has drained its pool. On every condition of a
	// deleted AppGroup: nothing rolls or resists any more.
	ReasonDeleting = "Deleting"
)

// Reasons for the RollingRestart condition.
const (
	// ReasonRollingOut: processes are being replaced by new-revision ones.
	ReasonRollingOut = "RollingOut"
	// ReasonWaitingForWave: the AppGroup's rollout waits for earlier nodes
	// before it gives the new revision to more.
	ReasonWaitingForWave = "WaitingForWave"
	// ReasonRestartingBlocking: a Blocking restart is under way.
	ReasonRestartingBlocking = "RestartingBlocking"
	// ReasonProvingRevision: on an AppGroup, every node's restart onto a
	// revision not proven yet (status.provenRevision) is over (a Blocking
	// one's too: the new processes serve), and no node waits for its wave;
	// the new processes must still all be ready and live the crash window
	// (10s) before the rollout is complete (the message names their
	// nodes). For either strategy: nothing restarts any more. A first
	// death there is not backed off; a revision whose processes keep
	// dying in it halts the rollout (RolloutHalted) and, resisted, its
	// node is returned (NodeReturned); where nothing returns it (not
	// resisted, a Blocking restart, no older revision) it stays here while
	// its agent respawns them, at each death too, and the message says
	// where they die young in place of the crash window's note.
	ReasonProvingRevision = "ProvingRevision"
	// ReasonRolloutComplete: every process runs the current revision. For
	// a revision proven already (status.provenRevision), the message also
	// names the nodes where its processes die young, as a node's agent
	// respawns them there and nothing returns the node.
	ReasonRolloutComplete = "RolloutComplete"
	// ReasonRolloutHalted: the rollout stopped because a pool resists a
	// deployment error, or cannot spawn the revision at all with nothing
	// older to resist with; a new revision starts a new one.
	ReasonRolloutHalted = "RolloutHalted"
	// ReasonRolloutIncomplete: the restart finished, but some processes
	// could not be replaced and keep serving an older revision
	// (resistDeploymentErrors is false, so the rollout went on). A new
	// revision tries them again.
	ReasonRolloutIncomplete = "RolloutIncomplete"
)

// Reasons for the ResistingDeploymentError condition.
const (
	// ReasonSpawnFailed: a new-revision process failed to spawn during a
	// rolling restart; the old processes keep serving.
	ReasonSpawnFailed = "SpawnFailed"
	// ReasonNoDeploymentError: nothing is being resisted.
	ReasonNoDeploymentError = "NoDeploymentError"
)

// Reasons for the ScalingError condition.
const (
	// ReasonSpawnBackoff: a spawn failed (an extra one, a replacement, the
	// first of a new pool, or a rolling restart's step of a revision that
	// already serves there) or a process died soon after it was ready;
	// the pool retries with exponential backoff.
	ReasonSpawnBackoff = "SpawnBackoff"
	// ReasonSpawnBlocked: a spawn failed for a cause outside the app's
	// revision: a port the worker was given taken by another program, or
	// an env valueFrom whose Secret or ConfigMap the agent could not read
	// (API server away, or not allowed). The pool retries with backoff,
	// a rolling restart's old processes serving; the manager does not
	// count it against the revision (it neither halts the rollout nor
	// returns the node), and it passes once the cause does.
	ReasonSpawnBlocked = "SpawnBlocked"
	// ReasonSpawnsHealthy: no spawn is failing.
	ReasonSpawnsHealthy = "SpawnsHealthy"
)

// ReasonUnknown is used with status Unknown when what is known is too old.
const ReasonUnknown = "Unknown"
