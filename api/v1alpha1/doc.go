// Package v1alpha1 holds Ferry's API, group ferry.dev, version v1alpha1.
//
// Two kinds make up the API:
//
//   - AppGroup is the user's: one web application, where its code lives, how
//     its pool of worker processes behaves, how restarts are done and on
//     which nodes it runs. Bumping its RevisionAnnotation rolls it.
//   - ProcessPool is the contract between the manager and one node's agent:
//     one per AppGroup per selected node. The manager writes its spec (the
//     rendered template and the target revision); the node's agent writes its
//     status (the per-process table and the conditions).
//
// The types shared by both (AppSpec, ListenSpec, PoolSpec, RestartSpec) carry
// their defaults and validation as kubebuilder markers, so the API server
// applies them to both kinds alike.
//
// +kubebuilder:object:generate=true
// +groupName=ferry.dev
package v1alpha1
