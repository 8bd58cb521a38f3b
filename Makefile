# Image URL to use all building/pushing image targets
IMG ?= controller:latest

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# CONTAINER_TOOL builds images. No container engine runs on the project's own machines.
CONTAINER_TOOL ?= docker

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

CHART_DIR = charts/token-operator

.PHONY: manifests
manifests: controller-gen ## Generate ClusterRole and CustomResourceDefinition objects, the PrometheusRule and the Helm chart's copies of config/.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	hack/prometheusrule.sh > config/prometheus/prometheusrule.yaml
	rm -rf "$(CHART_DIR)/files" && mkdir -p "$(CHART_DIR)/files/rbac"
	cp config/crd/bases/tokens.tokenops.io_tokenrequests.yaml "$(CHART_DIR)/files/crd.yaml"
	cp $$(ls config/rbac/*.yaml | grep -v /kustomization.yaml) "$(CHART_DIR)/files/rbac/"
	mkdir -p "$(CHART_DIR)/files/restart-targets"
	cp config/components/restart-targets/role.yaml config/components/restart-targets/role_binding.yaml "$(CHART_DIR)/files/restart-targets/"
	mkdir -p "$(CHART_DIR)/files/admission-policy"
	cp config/components/admission-policy/policy.yaml config/components/admission-policy/binding.yaml "$(CHART_DIR)/files/admission-policy/"
	cp config/prometheus/alerts.yaml config/prometheus/grafana-dashboard.json "$(CHART_DIR)/files/"

.PHONY: generate
generate: controller-gen ## Generate DeepCopy, DeepCopyInto and DeepCopyObject implementations.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code (the e2e suite too).
	go vet ./...
	go vet -tags e2e ./test/e2e/

.PHONY: tidy
tidy: ## Run go mod tidy.
	go mod tidy

.PHONY: verify
verify: manifests generate fmt tidy ## Regenerate everything and fail if that changed any tracked or untracked file.
	@if [ -n "$$(git status --porcelain)" ]; then \
		git status --porcelain; git --no-pager diff --stat; \
		echo "verify: generated files are stale; run 'make manifests generate fmt tidy' and commit the result"; \
		exit 1; \
	fi

.PHONY: test
test: manifests generate fmt vet k8s-bin-dir helm test-monitoring ## Run unit and envtest suites, helm lint and the alert tests (builds the control-plane binaries on first use).
	"$(HELM)" lint --strict "$(CHART_DIR)"
	"$(HELM)" lint --strict "$(CHART_DIR)" -f "$(CHART_DIR)/ci/all-values.yaml"
	HELM="$(HELM)" KUBEBUILDER_ASSETS="$$("$(K8S_BINARIES)")" go test $$(go list ./... | grep -v /test/e2e) -coverprofile cover.out

.PHONY: test-monitoring
test-monitoring: promtool ## Check the alert rules and run their unit tests (promtool check rules, promtool test rules).
	"$(PROMTOOL)" check rules config/prometheus/alerts.yaml
	"$(PROMTOOL)" test rules config/prometheus/alerts_test.yaml

.PHONY: test-e2e
test-e2e: manifests generate fmt vet k8s-bin-dir chromium nginx helm ## Run the end-to-end suite: local control plane, two operator processes, kubectl, HTTP, a browser and nginx.
	HELM="$(HELM)" K8S_BIN_DIR="$$("$(K8S_BINARIES)")" go test -tags e2e ./test/e2e/ -timeout 30m -v -ginkgo.v

.PHONY: bench
bench: build k8s-bin-dir ## Benchmarks: hot functions (go test -bench), then every scenario beside its ceiling; BENCH_QUICK=1 runs briefly.
	go test -run '^$$' -bench . -benchmem $(if $(BENCH_QUICK),-benchtime 100x,) ./internal/token ./internal/server ./internal/index
	go run ./test/bench $(if $(BENCH_QUICK),-quick,) -bin-dir "$$("$(K8S_BINARIES)")" -manager bin/manager -out bin/bench/results.json

# Every fuzz target, as package:target.
FUZZ_TARGETS = internal/token:FuzzParse internal/token:FuzzRecordOf internal/server:FuzzParseIssueRequest internal/server:FuzzValidate \
	internal/server:FuzzClientAddress internal/server:FuzzParseTokenBody internal/server:FuzzParseIntrospectionRequest \
	internal/server:FuzzParseCodeBody internal/token:FuzzParseSliceRecord

# The interactive API documentation's npm packages (internal/server/docs/README.md).
SWAGGER_UI_VERSION ?= 5.35.0
REDOC_VERSION ?= 2.5.4

.PHONY: docs-assets
docs-assets: ## Copy Swagger UI and ReDoc, with their licences, from their npm packages into internal/server/docs.
	@set -e; dest="$(CURDIR)/internal/server/docs"; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION) >/dev/null; \
	mkdir s r; tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz -C s; tar xzf redoc-$(REDOC_VERSION).tgz -C r; \
	cp s/package/swagger-ui-bundle.js s/package/swagger-ui.css s/package/swagger-ui-bundle.js.LICENSE.txt "$$dest/"; \
	cp s/package/LICENSE "$$dest/LICENSE.swagger-ui"; cp s/package/NOTICE "$$dest/NOTICE.swagger-ui"; \
	cp r/package/bundles/redoc.standalone.js r/package/bundles/redoc.standalone.js.LICENSE.txt "$$dest/"; \
	cp r/package/LICENSE "$$dest/LICENSE.redoc"

.PHONY: nginx
nginx: ## Install Debian's nginx (the forward-auth e2e spec's proxy, with auth_request) if it is missing; needs root.
	@test -x /usr/sbin/nginx || { \
		echo "Installing Debian's nginx for the forward-auth specs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; }

.PHONY: chromium
chromium: ## Install Debian's chromium (the e2e suite's browser) if it is missing; needs root.
	@test -x /usr/bin/chromium || { \
		echo "Installing Debian's chromium for the browser specs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s) and keep the inputs it found in testdata/fuzz.
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		go test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
		found="$$(go env GOCACHE)/fuzz/github.com/tokenops/token-operator/$$pkg/$$name"; \
		if [ -d "$$found" ]; then mkdir -p "$$pkg/testdata/fuzz/$$name" && cp "$$found"/* "$$pkg/testdata/fuzz/$$name/"; fi; \
	done

FUZZTIME ?= 30s

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (gosec, bodyclose, noctx, importas, ginkgolinter, nolintlint, ...).
	"$(GOLANGCI_LINT)" run ./...

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes.
	"$(GOLANGCI_LINT)" run --fix

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary and the kubectl plugin (bin/kubectl-tokenops).
	CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd
	CGO_ENABLED=0 go build -trimpath -o bin/kubectl-tokenops ./cmd/kubectl-tokenops

# Flags of the operator for `make run` and `make run-cluster`: leader election as shipped (its
# Lease in the namespace default, as there is no pod namespace), local addresses, plain metrics.
RUN_ARGS ?= --leader-elect --leader-election-namespace=default \
	--http-bind-address=127.0.0.1:8000 --health-probe-bind-address=127.0.0.1:8081 \
	--metrics-bind-address=127.0.0.1:8080 --metrics-secure=false --zap-devel

.PHONY: run
run: build k8s-bin-dir ## Start a local control plane and run the operator on it (API on 127.0.0.1:8000); Ctrl-C stops all.
	go build -o bin/localcluster ./hack/localcluster
	bin/localcluster --bin-dir "$$("$(K8S_BINARIES)")" --dir bin/local -- bin/manager $(RUN_ARGS)

.PHONY: run-cluster
run-cluster: manifests generate fmt vet ## Run the operator against the current kubeconfig's cluster (after make install).
	go run ./cmd $(RUN_ARGS)

.PHONY: docker-build
docker-build: ## Build docker image with the manager (needs a container engine).
	$(CONTAINER_TOOL) build -t ${IMG} .

.PHONY: docker-push
docker-push: ## Push docker image with the manager.
	$(CONTAINER_TOOL) push ${IMG}

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install CRDs into the K8s cluster specified in ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" apply -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Uninstall CRDs from the K8s cluster specified in ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy controller to the K8s cluster specified in ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: undeploy
undeploy: kustomize ## Undeploy controller from the K8s cluster specified in ~/.kube/config.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
KUBECTL ?= kubectl
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm
PROMTOOL ?= $(LOCALBIN)/promtool
## Builds etcd, kube-apiserver, kube-controller-manager and kubectl from source into a
## per-user cache (override with TOKENOPS_K8S_BIN_DIR) and prints that folder.
K8S_BINARIES ?= $(shell pwd)/hack/k8s-binaries.sh

## Tool Versions
KUSTOMIZE_VERSION ?= v5.8.1
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v4.3.1
PROMTOOL_VERSION ?= v0.316.0

.PHONY: k8s-bin-dir
k8s-bin-dir: ## Build the control-plane binaries if needed and print their folder.
	@"$(K8S_BINARIES)"

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Download kustomize locally if necessary.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Download golangci-lint locally if necessary.
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: helm
helm: $(HELM) ## Build helm from the Go module proxy if necessary.
$(HELM): $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v4/cmd/helm,$(HELM_VERSION))

.PHONY: promtool
promtool: $(PROMTOOL) ## Build promtool from the Go module proxy if necessary (about 7 minutes cold).
$(PROMTOOL): $(LOCALBIN)
	$(call go-install-tool,$(PROMTOOL),github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_VERSION))

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef
