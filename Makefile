# Ferry's Makefile. `make help` lists the targets.
#
# Every tool is built from a pinned Go module into bin/ (git-ignored); the
# test control plane (kube-apiserver, etcd) is built once per machine and
# cached in ~/.cache/ferry (hack/build-control-plane.sh). Nothing here needs
# anything installed by hand beyond Go, Python 3 and kubectl.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

BIN := $(CURDIR)/bin
GO ?= go
export PATH := $(BIN):$(PATH)

CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
HELM := $(BIN)/helm

# Build flags shared by `make build` and the Dockerfile.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_LDFLAGS := -s -w -X github.com/ferry-dev/ferry/internal/version.Version=$(VERSION)
GO_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)'

# Tests share 2 cores: two packages at a time, and a bound per package long
# enough for the end-to-end suites on a slow machine.
TEST_P ?= 2
TEST_TIMEOUT ?= 30m
TEST_FLAGS ?=
TEST_PKGS ?= ./...
# The packages whose tests run a second time under the race detector: the
# agent (proxy, pool, spawn: goroutines around every request and process),
# the manager's controllers and the load generator. A narrower run (TEST_PKGS
# given) skips that pass unless RACE_PKGS is given too; RACE_PKGS= skips it.
# The packages whose tests run a third time built without cgo, as the shipped
# binaries are (GO_BUILD, the Dockerfile): go test builds with cgo where gcc
# is installed, and agent/spawn's user lookups (getent, /etc/passwd, not
# libc) and their tests (passwd_purego_test.go) exist only without it. A
# narrower run skips that pass as it skips the race pass; NOCGO_PKGS= skips it.
ifeq ($(origin TEST_PKGS),file)
RACE_PKGS ?= ./agent/... ./controllers/... ./bench/loadgen/...
NOCGO_PKGS ?= ./agent/spawn/
else
RACE_PKGS ?=
NOCGO_PKGS ?=
endif

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the code, the chart's copies of them and of the admission policies, and docs/api.md.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=ferry-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac
	rm -rf charts/ferry/files/crds && mkdir -p charts/ferry/files/crds charts/ferry/files/rbac charts/ferry/files/admission
	cp config/crd/bases/*.yaml charts/ferry/files/crds/
	cp config/rbac/role.yaml charts/ferry/files/rbac/manager-role.yaml
	cp config/rbac/node_isolation_policy.yaml config/rbac/node_isolation_policy_binding.yaml \
		config/rbac/lease_isolation_policy.yaml config/rbac/lease_isolation_policy_binding.yaml charts/ferry/files/rbac/
	cp config/admission/revision_policy.yaml config/admission/revision_policy_binding.yaml charts/ferry/files/admission/
	$(GO) run ./hack/gen-api-docs -crds config/crd/bases -out docs/api.md

.PHONY: fmt
fmt: ## Format the Go code.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
# golangci-lint's lock is the machine's (in /tmp): a second clone's lint
# waits for the first instead of failing "parallel golangci-lint is running".
lint: $(GOLANGCI_LINT) ## Run golangci-lint (config in .golangci.yml).
	$(GOLANGCI_LINT) run --allow-serial-runners ./...

.PHONY: verify-gen
verify-gen: generate manifests ## Regenerate everything and fail if that changed any file.
	@if [ -n "$$(git status --porcelain -- api config docs/api.md charts)" ]; then \
		echo "Generated files are out of date; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config docs/api.md charts; git --no-pager diff --stat; exit 1; \
	fi

##@ Build

.PHONY: build
build: ## Build ferry-manager, ferry-agent and kubectl-ferry into bin/.
	@for cmd in $(notdir $(wildcard cmd/*)); do \
		case $$cmd in kubectl-*) out=$$cmd ;; *) out=ferry-$$cmd ;; esac; \
		echo "$(GO_BUILD) -o $(BIN)/$$out ./cmd/$$cmd"; \
		$(GO_BUILD) -o $(BIN)/$$out ./cmd/$$cmd; \
	done

.PHONY: helm-lint
helm-lint: $(HELM) ## Lint the Helm chart, with default values and with every value changed.
	$(HELM) lint --strict charts/ferry
	$(HELM) lint --strict charts/ferry -f test/packaging/testdata/all-knobs.yaml

.PHONY: docker-build
docker-build: ## Build the manager and agent images (needs Docker with BuildKit).
	docker build --target manager --build-arg VERSION=$(VERSION) -t ghcr.io/ferry-dev/ferry-manager:$(VERSION) .
	docker build --target agent --build-arg VERSION=$(VERSION) -t ghcr.io/ferry-dev/ferry-agent:$(VERSION) .

##@ Test

.PHONY: control-plane
control-plane: ## Build (once per machine) the test kube-apiserver and etcd into bin/.
	hack/build-control-plane.sh

.PHONY: deps
deps: ## Install the Debian packages the tests use, when missing (hack/install-deps.sh).
	hack/install-deps.sh

.PHONY: test
test: deps control-plane ## Run every test against a real control plane and real processes, then the concurrent packages' again under -race, and agent/spawn's built without cgo.
	KUBEBUILDER_ASSETS=$(BIN) GO=$(GO) hack/go-test.sh -p $(TEST_P) -timeout $(TEST_TIMEOUT) -count=1 $(TEST_FLAGS) $(TEST_PKGS)
ifneq ($(strip $(RACE_PKGS)),)
	KUBEBUILDER_ASSETS=$(BIN) CGO_ENABLED=1 GO=$(GO) hack/go-test.sh -race -p $(TEST_P) -timeout $(TEST_TIMEOUT) -count=1 $(TEST_FLAGS) $(RACE_PKGS)
endif
ifneq ($(strip $(NOCGO_PKGS)),)
	KUBEBUILDER_ASSETS=$(BIN) CGO_ENABLED=0 GO=$(GO) hack/go-test.sh -p $(TEST_P) -timeout $(TEST_TIMEOUT) -count=1 $(TEST_FLAGS) $(NOCGO_PKGS)
endif

##@ Benchmarks

.PHONY: bench
bench: build ## Run every benchmark against the peers and rewrite docs/benchmarks.md (BENCH=name runs one).
	bench/run.sh $(BENCH)

##@ Tools

$(CONTROLLER_GEN): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): hack/tools/golangci-lint/go.mod hack/tools/golangci-lint/go.sum
	cd hack/tools/golangci-lint && $(GO) build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# Helm's default Kubernetes version (for lint and template without a
# cluster) is set to the version Ferry is tested against.
$(HELM): hack/tools/helm/go.mod hack/tools/helm/go.sum
	cd hack/tools/helm && $(GO) build -ldflags '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=36 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=36' -o $@ helm.sh/helm/v3/cmd/helm

.PHONY: tools
tools: $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(HELM) ## Build every pinned tool into bin/.

##@ Local stack

.PHONY: local-up
local-up: ## Bring up a local Ferry: control plane, manager, agents on simulated nodes, a sample app (DETACH=1: in the background).
	hack/local-up.sh $(if $(filter-out 0 false no,$(DETACH)),--detach)

.PHONY: local-down
local-down: ## Stop what make local-up DETACH=1 started.
	hack/local-down.sh
