// Package packaging proves Ferry's packaging against the real test control
// plane (kube-apiserver + etcd, with the PodSecurity admission plugin on):
// the Helm chart (charts/ferry), the kustomize configuration (config/) and
// the Dockerfile.
//
// There is no kubelet and no container engine here, so the proofs stop
// where those begin: every object is accepted or installed by the real API
// server, the manager's pod is admitted under Pod Security "restricted",
// the node isolation admission policy is exercised with real requests
// (impersonated and with real bound pod tokens), the chart renders exactly
// the arguments internal/deployargs defines (which the local stack and the
// end-to-end tests start the binaries with), and the Dockerfile's build
// commands are run and compared with `make build`'s. `make test`'s runner,
// hack/go-test.sh, is run on failing packages of its own.
//
// The helm binary is the one the Makefile builds from hack/tools/helm; the
// tests build it when it is missing or stale. kubectl is part of the
// machine.
package packaging
