// Package testenv starts a real control plane for tests: the kube-apiserver
// and etcd that hack/build-control-plane.sh builds from Go modules into bin/,
// with Ferry's real CRDs installed from config/crd/bases. It wraps
// controller-runtime's envtest and adds what our tests need on top: a
// kubeconfig file for the real kubectl, a client with Ferry's scheme, and
// extra API server flags (admission plugins) for the packaging tests, and a
// guard process that kills the control plane when the test binary dies
// without stopping it (a panic, `go test -timeout`). The helpers that need
// no control plane (Output, Eventually, free ports) live in
// internal/testsupport, which tests without an API server import instead;
// Output and Eventually are re-exported here.
//
// Binaries are looked up in $KUBEBUILDER_ASSETS, else in <repo>/bin; when
// neither holds them, the build script is run (it is cached per machine), so
// `go test ./...` works on a fresh clone too.
package testenv
