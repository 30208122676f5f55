#!/usr/bin/env bash
# End-to-end with docker's own daemon (moby; Debian's docker.io, dockerd 20.10) against `npm start`:
# push, pull, pull by digest, a pull of one platform of a multi-platform index (--platform), and a
# layer over MAX_CHUNK_BYTES, which docker must give up on at once (one attempt, not five),
# printing the registry's message that names `npx edge-registry push` (issue 18).
#
#   bash e2e/docker.sh            starts its own dockerd (private root, socket and config, no
#                                 networking of its own) and `npm start` on E2E_PORT (default 8920)
#
# Env: E2E_PORT, E2E_CHUNK (MAX_CHUNK_BYTES, default 50 MiB), E2E_OVER_MB (the oversized layer,
# default 120 MiB; its image is kept in E2E_CACHE between runs, as e2e/run.sh keeps its big one),
# E2E_KEEP=1 (keep the work dir). Debian's client is used (/usr/bin/docker), whatever else is on PATH.
# Output: `PASS name (T s)` / `FAIL name: reason` per step, then `N passed, M failed`; logs in $WORK/logs.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"

PORT=${E2E_PORT:-8920}
REGISTRY=localhost:$PORT
CHUNK=${E2E_CHUNK:-52428800}
BIG_MB=${E2E_OVER_MB:-120}
CACHE=${E2E_CACHE:-${TMPDIR:-/tmp}/edge-registry-e2e-cache}
# Short: dockerd's containerd puts sockets under the exec root (at most 108 bytes a path).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/e2e-docker.XXXXXX")
NS=docker/run-$(date +%Y%m%d%H%M%S)-$RANDOM
REG_PID= DOCKERD_PID= STARTED_AT=$(date +%s)
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
mkdir -p "$WORK/logs" "$WORK/tmp" "$CACHE"
export TMPDIR=$WORK/tmp

. "$ROOT/e2e/lib.sh"
STEP_TIMED=1 STEP_TIME_DECIMALS=1

cleanup() { stop_dockerd; stop_registry; remove_work; }

export DOCKER_HOST=unix://$WORK/d/docker.sock DOCKER_CONFIG=$WORK/d/config
dk() { "$DOCKER" "$@"; }
sk() { skopeo --policy "$WORK/policy.json" "$@"; }
raw_digest() { sk inspect --tls-verify=false --raw "docker://$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }
config_of() { jq -r .config.digest "$(blob "$1" "$2")"; }

install_tools() {
  install_missing skopeo jq curl setsid:util-linux || return
  [ -x "$DOCKERD" ] && [ -x "$DOCKER" ] && { "$DOCKER" --version; return 0; }
  [ "$(id -u)" = 0 ] || fail "docker.io missing and not root: apt-get install -y docker.io" || return
  DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io; }
}

# dockerd as root without anything else: vfs storage (no kernel overlay), no iptables, no bridge,
# its own root, exec root, pid file, socket and (empty) daemon.json, in its own session.
# docker treats localhost:<port> as an insecure registry: plain HTTP, no --insecure-registry needed.
start_dockerd() {
  [ "$(id -u)" = 0 ] || fail "dockerd needs root" || return
  mkdir -p "$WORK/d/config"
  printf '{}' >"$WORK/d/daemon.json"
  setsid "$DOCKERD" --config-file "$WORK/d/daemon.json" --storage-driver vfs --iptables=false --ip6tables=false \
    --bridge=none --data-root "$WORK/d/data" --exec-root "$WORK/d/exec" --pidfile "$WORK/d/dockerd.pid" \
    -H "$DOCKER_HOST" </dev/null >"$WORK/logs/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  local i
  for i in $(seq 1 150); do
    dk version --format '{{.Server.Version}}' 2>/dev/null && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 5 "$WORK/logs/dockerd.log"
  fail "dockerd did not start"
}

# dockerd stops the containerd it started (in a session of its own) when it stops cleanly; that
# containerd is stopped here too in case dockerd had to be killed.
stop_dockerd() {
  [ -n "$DOCKERD_PID" ] || return 0
  local ctd
  ctd=$(cat "$WORK/d/exec/containerd/containerd.pid" 2>/dev/null)
  stop_session "$DOCKERD_PID"
  DOCKERD_PID=
  [ -n "$ctd" ] && kill -0 "$ctd" 2>/dev/null && stop_session "$ctd"
  return 0
}

start_registry() {
  npm_start "$PORT" "$WORK/state" --var "MAX_CHUNK_BYTES:$CHUNK" || return
  wait_answer "http://$REGISTRY/v2/" 200
}

# docker_load LAYOUT NAME:TAG: the OCI layout's image into dockerd, through a docker-archive.
docker_load() {
  sk copy "oci:$1:latest" "docker-archive:$WORK/tmp/load.tar:$2" >/dev/null || return
  dk load -i "$WORK/tmp/load.tar" && rm -f "$WORK/tmp/load.tar"
}

# ---------------------------------------------------------------- steps

load_images() {
  docker_load "$SRC_APP" e2e/app:v1 && docker_load "$SRC_BIG" e2e/over:v1 || return
  dk images
}

# docker recompresses the layers it pushes (schema 2 manifest, gzip of its own): the registry
# must hold the manifest docker printed, and the image's config (its ID) must be the source's.
docker_push() {
  dk tag e2e/app:v1 "$REGISTRY/$NS/app:v1" || return
  dk push "$REGISTRY/$NS/app:v1" | tee "$WORK/tmp/push.out" || return
  PUSHED=$(sed -n 's/^v1: digest: \(sha256:[0-9a-f]*\) size: .*/\1/p' "$WORK/tmp/push.out")
  [ -n "$PUSHED" ] || fail "docker printed no digest" || return
  [ "$(raw_digest "$REGISTRY/$NS/app:v1")" = "$PUSHED" ] || fail "the registry holds another manifest than docker's $PUSHED" || return
  sk inspect --tls-verify=false --raw "docker://$REGISTRY/$NS/app:v1" >"$WORK/tmp/app.json" || return
  jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' "$WORK/tmp/app.json" >/dev/null \
    || fail "not a Docker schema 2 manifest: $(head -c 200 "$WORK/tmp/app.json")" || return
  [ "$(jq -r .config.digest "$WORK/tmp/app.json")" = "$(config_of "$SRC_APP" "$APP_DIGEST")" ] || fail "config is not the source's" || return
}

# expect_image REF ID ARCH: dockerd holds REF as the image ID (its config digest), for ARCH.
expect_image() {
  local got
  got=$(dk image inspect --format '{{.Id}} {{.Architecture}}' "$1") || return
  echo "$1: $got"
  [ "$got" = "$2 $3" ] || fail "$1 is '$got', not '$2 $3'"
}

docker_pull() {
  dk rmi -f e2e/app:v1 "$REGISTRY/$NS/app:v1" >/dev/null || return
  dk pull "$REGISTRY/$NS/app:v1" || return
  expect_image "$REGISTRY/$NS/app:v1" "$(config_of "$SRC_APP" "$APP_DIGEST")" amd64 || return
  dk image inspect --format '{{join .RepoDigests " "}}' "$REGISTRY/$NS/app:v1" | grep -q "@$PUSHED" \
    || fail "docker does not record the pulled digest $PUSHED"
}

docker_pull_by_digest() {
  dk rmi -f "$REGISTRY/$NS/app:v1" >/dev/null || return
  dk pull "$REGISTRY/$NS/app@$PUSHED" || return
  expect_image "$REGISTRY/$NS/app@$PUSHED" "$(config_of "$SRC_APP" "$APP_DIGEST")" amd64
}

# The two-platform OCI index (pushed with skopeo: docker pushes no index); docker picks the
# platform's manifest from it.
docker_pull_platform() {
  sk copy --all --preserve-digests --dest-tls-verify=false "oci:$SRC_MULTI:latest" "docker://$REGISTRY/$NS/multi:v1" || return
  local arch
  for arch in arm64 amd64; do
    dk rmi -f "$REGISTRY/$NS/multi:v1" >/dev/null 2>&1
    dk pull --platform "linux/$arch" "$REGISTRY/$NS/multi:v1" || return
    local manifest=$AMD64_DIGEST
    [ "$arch" = arm64 ] && manifest=$ARM64_DIGEST
    expect_image "$REGISTRY/$NS/multi:v1" "$(config_of "$SRC_MULTI" "$manifest")" "$arch" || return
  done
}

# A layer over MAX_CHUNK_BYTES: docker sends it in one chunked PATCH, the registry refuses it
# (413 DENIED) once the limit is passed, and docker stops at once with the message; the
# registry's log shows the one PATCH of that layer.
docker_push_oversized() {
  local before after out
  dk tag e2e/over:v1 "$REGISTRY/$NS/over:v1" || return
  if dk push "$REGISTRY/$NS/over:v1" >"$WORK/tmp/over.out" 2>&1; then
    cat "$WORK/tmp/over.out"; fail "docker pushed a $BIG_MB MiB layer past MAX_CHUNK_BYTES=$CHUNK"; return
  fi
  out=$(grep -v 'Preparing\|Waiting\|Pushing\|Layer already exists' "$WORK/tmp/over.out")
  echo "$out"
  grep -q "denied: request body over this registry's limit of $CHUNK bytes" <<<"$out" || fail "docker did not print the limit: $(tail -n 1 <<<"$out")" || return
  grep -q 'npx edge-registry push' <<<"$out" || fail "docker's error does not name the push tool" || return
  ! grep -q 'Retrying' "$WORK/tmp/over.out" || fail "docker retried: $(grep -c Retrying "$WORK/tmp/over.out") countdown lines" || return
  # wrangler writes its request line when the answer has ended: under load that can trail docker's exit.
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    grep -qE "PATCH /v2/$NS/over/blobs/uploads/[0-9a-f]+ 413 " "$WORK/registry.log" && break
    sleep 1
  done
  sleep 1   # and a second more, so a second (retried) PATCH would be in the log too
  grep -E "(PATCH|PUT) /v2/$NS/over/blobs/uploads/" "$WORK/registry.log" | sed 's/_state=[^ ]*/_state=…/'
  after=$(grep -cE "PATCH /v2/$NS/over/blobs/uploads/[0-9a-f]+ 413 " "$WORK/registry.log")
  [ "$after" = 1 ] || fail "the registry saw $after refused PATCHes of the layer, not 1" || return
}

# ---------------------------------------------------------------- the run

echo "# work dir $WORK, repositories under $NS, MAX_CHUNK_BYTES=$CHUNK, oversized layer $BIG_MB MiB"
step install-tools install_tools || { summary; exit 1; }
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
step dockerd-start start_dockerd || { summary; exit 1; }
step registry-start start_registry || { tail -n 30 "$WORK/registry.log" >&2; summary; exit 1; }
step build-images build_images "$WORK" "$CACHE" || { summary; exit 1; }
step docker-load load_images || { summary; exit 1; }

step docker-push docker_push
step docker-pull docker_pull
step docker-pull-by-digest docker_pull_by_digest
step docker-pull-platform docker_pull_platform
step docker-push-oversized-refused-once docker_push_oversized

echo "# total $(($(date +%s) - STARTED_AT)) s"
summary
