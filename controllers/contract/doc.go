// Package contract holds the rules the manager and the node agents share
// beyond the API types: how a ProcessPool is named and labelled, the drain
// finalizer, and how an AppGroup's target revision is formed and validated.
//
// It depends on the API and apimachinery only, so the agent and kubectl-ferry
// can import it without pulling in the manager's controllers.
//
//   - PoolName gives the name of the pool of one AppGroup on one node: the
//     readable "<appgroup>-<node>" when it fits, truncated and suffixed with
//     a short hash when it does not.
//   - LabelValue makes any object name usable as a label value; pools are
//     labelled ferry.dev/appgroup=LabelValue(appGroup) and
//     ferry.dev/node=LabelValue(node), so that people and tools select a
//     node's pools with NodeSelector(node). The agent selects its own by
//     spec.nodeName, whatever their labels.
//   - ServiceName gives the name of an AppGroup's Service and EndpointSlice:
//     the AppGroup's name when it is a valid Service name, else a
//     sanitized, hashed one.
//   - DrainFinalizer is on every pool the manager creates; the node's agent
//     removes it once it has drained the pool's processes.
//   - TargetRevision and ValidateRevision implement the revision rule.
//   - AgentLeaseName and AgentLeaseLabels name the Lease each node's agent
//     renews to show it is alive; DefaultAgentStaleAfter bounds its age.
//   - UnlistedAddress says which addresses a pool may report that the
//     manager leaves out of the AppGroup's Service, and why: the agent
//     warns of them at its start, the manager names the nodes in Ready.
//   - LastLines cuts a process's output to its last lines, for the
//     agent's log and the status views (agent/spawn builds on Linux only;
//     kubectl-ferry, which prints the view, builds anywhere).
//   - CrashWindow is how long a new process must live to count as
//     working: to the agent's crash-loop backoff and to the manager's waves.
//   - YoungDeathReason is the agent's reason for a young death (a worker
//     that died within CrashWindow of ready), the one form DiedAfterReadyIn
//     reads, from the reason's start, so that a failed spawn whose app text
//     says "after it was ready" is not taken for one.
//   - YoungDeathOf tells a pool's last spawn error that is a young death of
//     a revision (died within CrashWindow of ready), and DiesYoungAgain one
//     the restart waits end on (the second round in a row, the revision
//     not lasted): the manager, kubectl-ferry and the standalone agent
//     read a crash loop alike; WithoutLifetime words a young death's
//     lifetime "soon" and drops what follows "after it was ready", for a
//     message that must not change at each death.
//   - NotResisted words why a restart left processes on an older revision
//     ("resistDeploymentErrors is false", or "was false when revision R
//     rolled" once ResistanceAsked says it is on).
//   - ProxyServes says whether a pool's node takes requests, by its
//     report (ServesOnOldPort: still on the old port of a move), and
//     WhatServes whose processes serve there: the manager's halt message
//     and kubectl ferry status say alike whether older processes serve
//     on a halted node (not in the same words where the revision's
//     processes die young and are retried).
package contract
