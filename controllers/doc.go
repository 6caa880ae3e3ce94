// Package controllers is Ferry's manager: the reconciler that turns each
// AppGroup into one ProcessPool per selected node and rolls the pools'
// reports up into the AppGroup's status.
//
// The AppGroup reconciler follows Cluster API's layout:
//
//   - appgroup_controller.go: Reconcile (get, finalizer, scope, phases,
//     one deferred status write), watches, deletion, RBAC markers.
//   - appgroup_controller_phases.go: the phases. reconcilePools creates and
//     deletes pools as nodes come and go; reconcileRollout keeps the pools'
//     specs in line and hands the target revision out in waves;
//     reconcileTraffic keeps a Service and its EndpointSlices over the
//     nodes (planSlices spreads the endpoints, at most 1000 a slice).
//   - appgroup_controller_status.go: the status roll-up as pure functions.
//   - waves.go: how a pool's report is read (assessPool) and who gets the
//     target next (planWave), pure too.
//   - events.go, metrics.go: events on status transitions, Prometheus
//     counters.
//   - drainrelease.go: a small reconciler of its own that lets go of the
//     pools being deleted whose Node is gone, whatever became of their
//     AppGroup.
//
// Contract with the node agents (see also package contract): the manager
// writes a pool's spec, never its status; an agent writes its pool's
// status, heartbeats it (heartbeatTime) at least every AgentStaleAfter, and
// removes the drain finalizer once a deleted pool's processes are gone.
//
// A pool rolls from when its spec.revision becomes the target until its
// agent reports it rolled out: observedRevision == spec.revision, every
// process updated and ready (at least minProcesses), RollingRestart and
// ResistingDeploymentError not True, on a recent heartbeat. At most
// restart.maxConcurrentNodes pools roll at once; a pool resisting the
// target halts the rollout everywhere.
package controllers
