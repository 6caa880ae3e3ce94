// Package standalone runs the agent without a cluster, from an AppGroup
// YAML file: `passenger start`'s equivalent. Each AppGroup gets a pool and a
// proxy on its listen.port, the same code the cluster mode runs.
//
// Deploying in standalone mode:
//   - `ferry-agent restart NAME [--revision R]` over the admin socket;
//   - touching tmp/restart.txt in the app root (Passenger's habit), checked
//     once a second;
//   - editing the file and sending SIGHUP (or `ferry-agent reload`): a
//     changed app (or ferry.dev/revision annotation) rolls, changed pool
//     settings apply at once, new AppGroups start and removed ones stop.
//
// A pool's revision is computed as in a cluster:
// <ferry.dev/revision or 0>-<hash of spec.app>. A restart without --revision
// appends +N to it, so the same code restarted shows as a new revision.
//
// The admin socket (mode 0600) serves JSON: GET /v1/status, POST
// /v1/restart, POST /v1/reload, and /metrics and /healthz.
package standalone
