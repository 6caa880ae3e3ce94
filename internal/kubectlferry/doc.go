// Package kubectlferry is `kubectl ferry`, the kubectl plugin for Ferry's
// AppGroups; cmd/kubectl-ferry is its thin main.
//
//   - `kubectl ferry status NAME` prints the passenger-status view across
//     nodes: a header from the AppGroup's status (target revision, process
//     and node counts, the Ready, RollingRestart and
//     ResistingDeploymentError conditions), then one agent/statusview pool
//     per ProcessPool, sorted by node, with a note where an agent has been
//     silent (neither its node's Lease in --lease-namespace nor the pool's
//     heartbeat renewed) for longer than --stale-after. `--json` prints the
//     same objects' statuses as JSON.
//   - `kubectl ferry restart NAME` bumps the ferry.dev/revision annotation
//     (NextRevision) with a merge patch under an optimistic lock, so two
//     concurrent restarts give two revisions, not one. With --wait it
//     follows the AppGroup as `ferry-agent restart --wait` follows a
//     standalone pool (agent/standalone/wait.go): success once the rollout
//     is done, failure with the condition's message when the AppGroup
//     resists the new revision, or when the revision is superseded;
//     resisting no deployment error, failure too when its pools show its
//     processes dying soon after they are ready (crashLoop).
//
// The plugin only reads AppGroups and ProcessPools and patches AppGroup
// metadata: it needs get on both kinds, list on processpools and patch on
// appgroups, and list on the agents' Leases for status (without it,
// staleness rests on the pools' heartbeats alone).
//
// Flags are parsed with spf13/pflag, and the kubeconfig is loaded with
// client-go's clientcmd loading rules, as kubectl does ($KUBECONFIG,
// --kubeconfig, --context, -n). k8s.io/cli-runtime's genericclioptions
// would offer the full set of kubectl's connection flags, but it is a
// module Ferry does not otherwise need, and the handful bound here are what
// a plugin for one kind is used with.
//
// Exit codes: 0 success, 1 failure (the reason on standard error), 2 a
// usage error (unknown command or flag, a missing NAME, an invalid
// --revision), found before the cluster is contacted.
package kubectlferry
