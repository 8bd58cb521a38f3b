#!/usr/bin/env bash
# k8s-binaries.sh builds the control-plane binaries that envtest, `make run` and the
# end-to-end suite need (etcd, kube-apiserver, kube-controller-manager, kubectl) from source
# through the Go module proxy, because this project cannot download setup-envtest's archives.
#
# The binaries land in a per-user cache folder outside the clone, so every clone on the
# machine (CI included) shares them and only the first build pays (~10-15 min on 2 cores).
# On success the script prints that folder's absolute path as its only line on stdout.
#
# Environment:
#   TOKENOPS_K8S_BIN_DIR  the folder to use (default: $XDG_CACHE_HOME or ~/.cache,
#                         then token-operator/k8s/<k8s version>-etcd<etcd version>)
#   K8S_VERSION           k8s.io/kubernetes release to build (default v1.37.2)
#   ETCD_VERSION          go.etcd.io/etcd/server/v3 release to build (default v3.6.16)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl)

dir=${TOKENOPS_K8S_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/token-operator/k8s/${K8S_VERSION}-etcd${ETCD_VERSION}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)

log() { printf 'k8s-binaries: %s\n' "$*" >&2; }

complete() {
	local b
	for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if complete; then
	echo "$dir"
	exit 0
fi

# One builder at a time per folder: a second caller waits and then finds the binaries.
exec 9>"$dir/.lock"
flock 9
if complete; then
	echo "$dir"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
start=$SECONDS

if [[ ! -x "$dir/etcd" ]]; then
	log "building etcd ${ETCD_VERSION} (about a minute)"
	mkdir -p "$work/etcd"
	(
		cd "$work/etcd"
		go mod init tokenops.local/etcd-build >/dev/null 2>&1
		go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1
		go build -trimpath -o "$work/etcd.bin" go.etcd.io/etcd/server/v3
	)
	mv "$work/etcd.bin" "$dir/etcd"
fi

if [[ ! -x "$dir/kube-apiserver" || ! -x "$dir/kube-controller-manager" || ! -x "$dir/kubectl" ]]; then
	log "building kube-apiserver, kube-controller-manager and kubectl ${K8S_VERSION} (about 10-15 minutes cold on 2 cores)"
	mod="$work/k8s"
	mkdir -p "$mod/out"
	staging_version="v0.${K8S_VERSION#v1.}"
	# k8s.io/kubernetes replaces its staging modules with folders of its own repository; a
	# module that requires it must replace each of them with the matching published release.
	gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	{
		echo "module tokenops.local/k8s-build"
		echo "go 1.25"
		echo "require k8s.io/kubernetes ${K8S_VERSION}"
		echo "replace ("
		sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
		echo ")"
	} >"$mod/go.mod"
	cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
	minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	ldflags=""
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
		ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
	done
	(
		cd "$mod"
		go mod tidy >/dev/null
		go build -trimpath -ldflags "-s -w${ldflags}" -o out/ \
			k8s.io/kubernetes/cmd/kube-apiserver \
			k8s.io/kubernetes/cmd/kube-controller-manager \
			k8s.io/kubernetes/cmd/kubectl
	)
	for b in kube-apiserver kube-controller-manager kubectl; do mv "$mod/out/$b" "$dir/$b"; done
fi

log "built in $((SECONDS - start))s into $dir"
complete
echo "$dir"
