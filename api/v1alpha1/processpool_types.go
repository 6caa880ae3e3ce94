package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProcessState is where a worker process is in its life.
// +kubebuilder:validation:Enum=Spawning;Ready;Draining;Stopping;Exited
type ProcessState string

const (
	// ProcessSpawning: started, not yet ready; gets no requests.
	ProcessSpawning ProcessState = "Spawning"
	// ProcessReady: serving requests.
	ProcessReady ProcessState = "Ready"
	// ProcessDraining: gets no new requests; finishing its in-flight ones.
	ProcessDraining ProcessState = "Draining"
	// ProcessStopping: sent SIGTERM, waiting for it to exit.
	ProcessStopping ProcessState = "Stopping"
	// ProcessExited: gone.
	ProcessExited ProcessState = "Exited"
)

// ProcessPoolSpec is what the manager asks one node's agent to run.
type ProcessPoolSpec struct {
	// nodeName is the node whose agent runs this pool. The agent watches
	// the pools that name its node here, whatever their labels: a
	// selectable field (kubectl get processpools --field-selector
	// spec.nodeName=<node>). Immutable: a pool moved to another node would
	// leave its first node's agent's view without being drained there.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeName is immutable"
	NodeName string `json:"nodeName"`

	// appGroup is the name of the AppGroup this pool belongs to, in the same
	// namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	AppGroup string `json:"appGroup"`

	// revision is the revision this node should run. When it changes, the
	// agent restarts the pool's processes onto it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`

	// template is the AppGroup's settings for this node: its app block as
	// of revision, and its listen, pool, restart and proxy blocks as they
	// are now (a change to those is no new revision: it reaches every
	// node at once, not in waves, save a new listen.port that another
	// AppGroup holds on the node, where the pool keeps its old port).
	// +required
	Template AppTemplate `json:"template"`
}

// ProcessInfo is one worker process, as `passenger-status` shows it.
type ProcessInfo struct {
	// pid is the process id on the node; 0 while the process is being
	// started and has none yet (state Spawning).
	// +required
	PID int32 `json:"pid"`

	// revision is the revision the process was spawned for.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`

	// state is where the process is in its life.
	// +required
	State ProcessState `json:"state"`

	// replacing is true on the old process a rolling restart is replacing
	// now (Passenger's "Rolling restarting...").
	// +optional
	Replacing bool `json:"replacing,omitempty"`

	// sessions is how many requests the process is serving now.
	// +optional
	Sessions int32 `json:"sessions,omitempty"`

	// processed is how many requests the process has served.
	// +optional
	Processed int64 `json:"processed,omitempty"`

	// startedAt is when the process was spawned.
	// +optional
	StartedAt metav1.Time `json:"startedAt,omitzero"`

	// lastUsed is when the process last finished a request.
	// +optional
	LastUsed *metav1.Time `json:"lastUsed,omitempty"`

	// cpuPercent is the process's CPU use, in percent of one core, over the
	// last second: the agent samples every process's CPU time and memory
	// once a second, and a report carries the latest sample.
	// +optional
	CPUPercent int32 `json:"cpuPercent,omitempty"`

	// memoryBytes is the process's resident memory (RSS), in bytes, as of
	// the latest sample.
	// +optional
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
}

// SpawnError is a failed spawn, with what the process said.
type SpawnError struct {
	// revision is the revision that failed to spawn.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`

	// reason is a one-line cause: "exited with status 1", "not ready
	// within startTimeout (90s)", "could not start: ...", or, for a
	// process that died soon after it was ready, "exited with status 1
	// 1.2s after it was ready".
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`

	// output is the last lines the process wrote (for WSGI, the Python
	// traceback), trimmed to 4 KiB.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Output string `json:"output,omitempty"`

	// time is when the spawn failed.
	// +required
	Time metav1.Time `json:"time"`
}

// RestartProgress is how far a restart of one pool has come.
type RestartProgress struct {
	// revision is the revision being rolled out.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Revision string `json:"revision"`
	// done is how many old processes have been replaced.
	// +required
	Done int32 `json:"done"`
	// total is how many old processes the restart replaces.
	// +required
	Total int32 `json:"total"`
	// replacingPID is the old process being replaced now, if any.
	// +optional
	ReplacingPID int32 `json:"replacingPID,omitempty"`
}

// ProcessPoolStatus is what a node's agent reports of the pool it runs.
type ProcessPoolStatus struct {
	// observedGeneration is the metadata.generation the agent last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// address is host:port where the node's proxy serves this pool.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Address string `json:"address,omitempty"`

	// listenPort is the listen.port the agent has taken up: its proxy
	// listens there, or tries to while the port is taken (Ready says so,
	// and address shows where it still serves meanwhile, if anywhere: the
	// old port of a move).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	ListenPort int32 `json:"listenPort,omitempty"`

	// observedRevision is the spec.revision the agent has taken up.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ObservedRevision string `json:"observedRevision,omitempty"`

	// lastedRevision is observedRevision once a process of it has lived
	// past the crash window (10s) from ready on this node, or the revision
	// has served the window through, a process of it ready all along and
	// none dying or stopped as faulty, while the agent recycled them
	// (maxRequestsPerProcess, memoryLimit): the revision is known to serve
	// here, and the manager
	// counts the node's crash window on it as passed. Under load with
	// recycling, no process may live 10s, and the window measured from
	// process starts would never end. Empty until then, and after an
	// agent restart until it is seen again.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	LastedRevision string `json:"lastedRevision,omitempty"`

	// processCounts counts the pool's processes.
	// +optional
	ProcessCounts ProcessCounts `json:"processCounts,omitzero"`

	// readyProcesses is processCounts.ready/processCounts.total, for display.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	ReadyProcesses string `json:"readyProcesses,omitempty"`

	// queueLength is how many requests wait for a free process.
	// +optional
	QueueLength int32 `json:"queueLength,omitempty"`

	// processes is the per-process table.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=512
	Processes []ProcessInfo `json:"processes,omitempty"`

	// restartProgress is set while a restart is under way.
	// +optional
	RestartProgress *RestartProgress `json:"restartProgress,omitempty"`

	// deploymentError is the spawn failure being resisted, if any.
	// +optional
	DeploymentError *SpawnError `json:"deploymentError,omitempty"`

	// lastSpawnError is the most recent failed spawn of any kind.
	// +optional
	LastSpawnError *SpawnError `json:"lastSpawnError,omitempty"`

	// spawnFailures is how many rounds of spawns of lastSpawnError.revision
	// have failed in a row on this node, lastSpawnError of the last: the
	// failed spawns the agent retries with backoff (the ScalingError
	// condition), a process of the revision that exits within the crash
	// window (10s) of being ready counting as one. Processes started
	// together that fail together (an OOM kill of several, a database
	// gone) are one round, and so is a failed spawn with the deaths of
	// processes started before it failed; the next round is of processes
	// started after that: 2 says a replacement spawned after a failure
	// failed too. A replacement being ready is not enough, after failed
	// spawns or such a death (a process that is ready and then dies young
	// did not work): the count is kept while it is (ScalingError False),
	// and goes back to 0 once a process of the revision ready since the
	// run's first failure has lived the crash window or served until it
	// was recycled, or the revision has served the window through (see
	// lastedRevision); after failed spawns whose need passed (ScalingError
	// cleared with no young death in the run), once a spawn of the
	// revision is ready, or once the pool itself stopped the retries that
	// were ready (minProcesses or maxProcesses lowered, an idle stop)
	// before one lived the window. It goes back to
	// 0 too when the node is asked for another revision, and when the pool
	// comes to resist the revision (deploymentError). It is 0 too while
	// lastSpawnError is a failure it does not count: a rolling restart's
	// replacement that failed with deployment errors not resisted (the
	// restart skips that process), or a spawn of a revision the pool no
	// longer spawns. A spawn that failed for no fault of the revision (its
	// port taken, a Secret it reads unreadable: the ScalingError
	// condition's reason SpawnBlocked) is no round of the revision's run:
	// while lastSpawnError is such a failure, the count is of those in a
	// row, and a young death after them is the run's first round. Agents
	// older than this field report none.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SpawnFailures int32 `json:"spawnFailures,omitempty"`

	// heartbeatTime is when the agent last wrote this status: at once when
	// the pool's state changes, else every stats interval (the agent's
	// --stats-interval, 30s by default) with fresh figures. The agent also
	// renews its node's Lease (coordination.k8s.io, ferry-agent-<node> in
	// Ferry's namespace) every heartbeat interval; the manager times each
	// by when it saw it change, by its own clock (the agent's may be
	// wrong), takes the later of the two, and when that is older than its
	// staleness bound (--agent-stale-after) the AppGroup's conditions read
	// Unknown.
	// +optional
	HeartbeatTime *metav1.Time `json:"heartbeatTime,omitempty"`

	// conditions are Ready, RollingRestart, ResistingDeploymentError and
	// ScalingError.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ProcessPool is one AppGroup's pool of worker processes on one node. The
// manager creates one per selected node and writes its spec; that node's
// agent runs it and writes its status.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pp,categories=ferry
// +kubebuilder:selectablefield:JSONPath=".spec.nodeName"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="The Ready condition as the node's agent last wrote it: True when minProcesses processes are ready (the AppGroup reads Unknown when the agent has gone silent)"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="Why Ready is what it is, in a word (ProcessesNotReady, ListenFailed, AgentStopping, ...); -o wide adds its message"
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.spec.revision`,description="The revision the manager asks the node to run"
// +kubebuilder:printcolumn:name="Processes",type=string,JSONPath=`.status.readyProcesses`,description="Ready/total worker processes"
// +kubebuilder:printcolumn:name="Restarting",type=string,JSONPath=`.status.conditions[?(@.type=="RollingRestart")].status`,description="The RollingRestart condition: True while processes are replaced by ones of a new revision"
// +kubebuilder:printcolumn:name="Resisting",type=string,JSONPath=`.status.conditions[?(@.type=="ResistingDeploymentError")].status`,description="The ResistingDeploymentError condition: True while the pool keeps its old processes because the new revision failed to spawn"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Address",type=string,priority=1,JSONPath=`.status.address`,description="Where the node's proxy serves the pool"
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,description="Ready's message"
type ProcessPool struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the manager asks the node's agent to run.
	// +required
	Spec ProcessPoolSpec `json:"spec"`

	// status is what the node's agent reports.
	// +optional
	Status ProcessPoolStatus `json:"status,omitzero"`
}

// ProcessPoolList is a list of ProcessPools.
//
// +kubebuilder:object:root=true
type ProcessPoolList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProcessPool `json:"items"`
}
