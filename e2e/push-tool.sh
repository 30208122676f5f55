#!/usr/bin/env bash
# End-to-end for `npx edge-registry push` / `copy` (issue 10): a registry whose MAX_CHUNK_BYTES is
# 50 MB refuses skopeo's single-request push of a 300 MB layer with a clear 413; the tool pushes
# the same image in chunks (and a 2-platform index, and a docker-archive, and a podman image);
# skopeo and podman pull them back byte for byte, every digest the source's. Last, the same tool
# against CNCF distribution (docker-registry), as any registry speaking the distribution spec.
#
#   bash e2e/push-tool.sh            starts `npm start` (E2E_PORT, default 8870) on fresh state
#
# Env: E2E_PORT, E2E_BIG_MB (default 300), E2E_CACHE (where the big image is kept between runs,
# shared with e2e/run.sh), E2E_KEEP=1 (keep the work dir), E2E_CHUNK (MAX_CHUNK_BYTES, default 50000000).
# Output: `PASS name` / `FAIL name: reason` per step, then `N passed, M failed`; logs in $WORK/logs.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"

PORT=${E2E_PORT:-8870}
REGISTRY=localhost:$PORT
CHUNK=${E2E_CHUNK:-50000000}
BIG_MB=${E2E_BIG_MB:-300}
CACHE=${E2E_CACHE:-${TMPDIR:-/tmp}/edge-registry-e2e-cache}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-push-tool.XXXXXX")
NS=tool/run-$(date +%Y%m%d%H%M%S)-$RANDOM
REG_PID= STARTED_AT=$(date +%s)
mkdir -p "$WORK/logs" "$WORK/pull" "$WORK/tmp" "$CACHE"
export TMPDIR=$WORK/tmp
export REGISTRY_AUTH_FILE=$WORK/auth.json
printf '{"auths":{}}' >"$REGISTRY_AUTH_FILE"
# podman (and the tool's `podman save`) use a storage of their own, under $WORK.
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' "$WORK/podman/root" "$WORK/podman/runroot" >"$CONTAINERS_STORAGE_CONF"

. "$ROOT/e2e/lib.sh"
STEP_TIMED=1 STEP_TIME_DECIMALS=0

sk() { skopeo --policy "$WORK/policy.json" "$@"; }
skcopy() { sk copy --src-tls-verify=false --dest-tls-verify=false "$@"; }
pm() { podman --events-backend none --cgroup-manager cgroupfs "$@"; }
tool() { node "$ROOT/bin/edge-registry.mjs" "$@"; }
raw_digest() { sk inspect --tls-verify=false --raw "docker://$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
layout_digest() { jq -r '.manifests[0].digest' "$1/index.json"; }
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }
clear_blob_caches() {
  rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb \
    "${XDG_DATA_HOME:-${HOME:-/root}/.local/share}/containers/cache/blob-info-cache-v1.boltdb" \
    "$WORK/podman/root/cache/blob-info-cache-v1.boltdb"
}

install_tools() { install_missing skopeo podman jq curl setsid:util-linux docker-registry; }

start_registry() {
  npm_start "$PORT" "$WORK/state" --var "MAX_CHUNK_BYTES:$CHUNK" || return
  wait_answer "http://$REGISTRY/v2/" 200
}

# ---------------------------------------------------------------- steps

# The POST advertises the limit; skopeo sends the layer in one PATCH and gets the 413 message.
skopeo_refused() {
  curl -s -D - -o /dev/null -X POST "http://$REGISTRY/v2/$NS/probe/blobs/uploads/" | tr -d '\r' | grep -i '^oci-chunk-max-length:' \
    | grep -q ": $CHUNK$" || fail "POST does not advertise OCI-Chunk-Max-Length: $CHUNK" || return
  clear_blob_caches
  if skcopy --preserve-digests "oci:$SRC_BIG:latest" "docker://$REGISTRY/$NS/skopeo-big:v1"; then
    fail "skopeo pushed a $BIG_MB MiB layer past MAX_CHUNK_BYTES=$CHUNK"; return
  fi
  # skopeo prints the registry's message, not the status: the status is checked with curl.
  local loc code
  loc=$(curl -s -D - -o /dev/null -X POST "http://$REGISTRY/v2/$NS/probe/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  code=$(head -c $((CHUNK + 1)) /dev/zero | curl -s -o "$WORK/tmp/413.json" -w '%{http_code}' -X PATCH \
    -H 'Content-Type: application/octet-stream' --data-binary @- "http://$REGISTRY$loc")
  echo "PATCH of $((CHUNK + 1)) bytes: $code $(cat "$WORK/tmp/413.json")"
  [ "$code" = 413 ] || fail "a PATCH over the limit answered $code, not 413" || return
  grep -q "limit of $CHUNK bytes" "$WORK/logs/skopeo-push-refused-413.log" || fail "skopeo's error does not name the limit" || return
  grep -q "edge-registry push" "$WORK/logs/skopeo-push-refused-413.log" || fail "skopeo's error does not name the tool" || return
  echo "refused as expected"
}

# push_and_check SOURCE REF WANT: the tool pushes; its stdout is the digest; no chunk over the limit.
push_and_check() {
  local out
  out=$(tool push "$1" "$REGISTRY/$2" --jobs 4 2>"$WORK/tmp/push.err") || { cat "$WORK/tmp/push.err"; return 1; }
  cat "$WORK/tmp/push.err"
  [ "$(tail -n 1 <<<"$out")" = "$3" ] || fail "the tool printed $out, not $3" || return
  [ "$(raw_digest "$REGISTRY/$2")" = "$3" ] || fail "the registry holds another manifest under $2" || return
}

tool_push_big() {
  push_and_check "oci:$SRC_BIG:latest" "$NS/big:v1" "$BIG_DIGEST" || return
  # Chunks of at most the limit, as the log says (sending <size> at <offset> of <total>).
  local sizes
  sizes=$(sed -n 's/.*: sending \([0-9.]*\) MB at .*/\1/p' "$WORK/logs/tool-push-big.log" | sort -n | uniq -c)
  echo "chunk sizes (MB): $sizes"
  [ -n "$sizes" ] || fail "no chunked upload in the log" || return
  awk -v max="$((CHUNK / 1000000))" '$2 > max { bad = 1 } END { exit bad }' <<<"$sizes" || fail "a chunk over $CHUNK bytes" || return
}

tool_push_again_skips() {
  tool push "oci:$SRC_BIG:latest" "$REGISTRY/$NS/big:v1" >"$WORK/tmp/again.out" 2>&1 || { cat "$WORK/tmp/again.out"; return 1; }
  cat "$WORK/tmp/again.out"
  grep -q ': 0 blobs uploaded (0 B), 2 already there' "$WORK/tmp/again.out" || fail "a second push uploaded again" || return
}

skopeo_pull_big() {
  skcopy --preserve-digests "docker://$REGISTRY/$NS/big:v1" "oci:$WORK/pull/big:v1" || return 1
  [ "$(layout_digest "$WORK/pull/big")" = "$BIG_DIGEST" ] || fail "pulled manifest is $(layout_digest "$WORK/pull/big")" || return
  same_blobs "$SRC_BIG" "$WORK/pull/big"
}

skopeo_pull_index() {
  skcopy --all --preserve-digests "docker://$REGISTRY/$NS/multi:v1" "oci:$WORK/pull/multi:v1" || return 1
  [ "$(layout_digest "$WORK/pull/multi")" = "$MULTI_DIGEST" ] || fail "pulled index is $(layout_digest "$WORK/pull/multi")" || return
  same_blobs "$SRC_MULTI" "$WORK/pull/multi"
}

podman_pull_big() {
  pm rmi -af >/dev/null 2>&1
  pm pull --tls-verify=false "$REGISTRY/$NS/big:v1" || return 1
  [ "$(pm image inspect --format '{{.Digest}}' "$REGISTRY/$NS/big:v1")" = "$BIG_DIGEST" ] || fail "podman sees another digest" || return
  pm rmi -af >/dev/null
}

podman_pull_arm64() {
  local out want
  pm pull --tls-verify=false --arch arm64 "$REGISTRY/$NS/multi:v1" || return 1
  want="$(jq -r .config.digest "$(blob "$SRC_MULTI" "$ARM64_DIGEST")" | cut -d: -f2) arm64"
  out=$(pm image inspect --format '{{.Id}} {{.Architecture}}' "$REGISTRY/$NS/multi:v1") || return 1
  echo "$out"
  [ "$out" = "$want" ] || fail "podman pulled $out, not $want" || return
}

# docker save format (written by skopeo: plain tar layers): the tool names each layer by the
# sha256 of its bytes as they are, i.e. the config's diff_ids, and keeps the config's digest.
tool_push_docker_archive() {
  local config want got d
  skcopy "oci:$SRC_APP:latest" "docker-archive:$WORK/app-save.tar:app:v1" || return 1
  d=$(tool push "docker-archive:$WORK/app-save.tar" "$REGISTRY/$NS/archive:v1" | tail -n 1) || return 1
  [ "$(raw_digest "$REGISTRY/$NS/archive:v1")" = "$d" ] || fail "the registry holds another manifest than the tool's $d" || return
  config=$(jq -r .config.digest "$(blob "$SRC_APP" "$APP_DIGEST")")
  sk inspect --tls-verify=false --raw "docker://$REGISTRY/$NS/archive:v1" >"$WORK/tmp/archive.json" || return 1
  cat "$WORK/tmp/archive.json"; echo
  [ "$(jq -r .config.digest "$WORK/tmp/archive.json")" = "$config" ] || fail "config digest is not the source's $config" || return
  want=$(jq -c .rootfs.diff_ids "$(blob "$SRC_APP" "$config")")
  got=$(jq -c '[.layers[].digest]' "$WORK/tmp/archive.json")
  [ "$want" = "$got" ] || fail "layers are $got, not the archive's $want" || return
  pm pull --tls-verify=false "$REGISTRY/$NS/archive:v1" || return 1
  [ "$(pm image inspect --format '{{.Id}}' "$REGISTRY/$NS/archive:v1")" = "${config#sha256:}" ] || fail "podman's image id is not the config digest" || return
}

# podman:<image> goes through `podman save`.
tool_push_podman() {
  local config
  skcopy "oci:$SRC_APP:latest" "containers-storage:localhost/tool-src:v1" || return 1
  tool push "podman:localhost/tool-src:v1" "$REGISTRY/$NS/from-podman:v1" || return 1
  config=$(jq -r .config.digest "$(blob "$SRC_APP" "$APP_DIGEST")")
  [ "$(sk inspect --tls-verify=false --raw "docker://$REGISTRY/$NS/from-podman:v1" | jq -r .config.digest)" = "$config" ] \
    || fail "pushed config is not the source's $config" || return
}

# Registry to registry: the index with every platform; same registry, so blobs are mounted.
tool_copy_index() {
  local out
  out=$(tool copy "$REGISTRY/$NS/multi:v1" "$REGISTRY/$NS/multi-copy:v1" 2>"$WORK/tmp/copy.err") || { cat "$WORK/tmp/copy.err"; return 1; }
  cat "$WORK/tmp/copy.err"
  [ "$(tail -n 1 <<<"$out")" = "$MULTI_DIGEST" ] || fail "copy printed $out" || return
  grep -q ', 4 mounted' "$WORK/tmp/copy.err" || fail "blobs were not mounted" || return
  rm -rf "$WORK/pull/multi-copy"
  skcopy --all --preserve-digests "docker://$REGISTRY/$NS/multi-copy:v1" "oci:$WORK/pull/multi-copy:v1" || return 1
  same_blobs "$SRC_MULTI" "$WORK/pull/multi-copy"
}

# Any distribution-spec registry: CNCF distribution (Debian's docker-registry) on the same port,
# once ours is stopped; the big image in 64 MiB chunks and the index, pulled back by skopeo.
tool_push_distribution() {
  stop_registry
  mkdir -p "$WORK/distribution"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$WORK/distribution/storage" "$PORT" >"$WORK/distribution/config.yml"
  local i
  for i in $(seq 1 100); do port_busy "$PORT" || break; sleep 0.1; done
  # distribution reads REGISTRY_* variables as settings: REGISTRY_AUTH_FILE would be `auth.file`.
  env -u REGISTRY_AUTH_FILE setsid docker-registry serve "$WORK/distribution/config.yml" >"$WORK/distribution/log" 2>&1 </dev/null &
  REG_PID=$!
  for i in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$REGISTRY/v2/")" = 200 ] && break
    sleep 0.2
  done
  [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$REGISTRY/v2/")" = 200 ] || { cat "$WORK/distribution/log"; fail "docker-registry did not start"; return; }
  push_and_check "oci:$SRC_BIG:latest" "dist/big:v1" "$BIG_DIGEST" || return
  push_and_check "oci:$SRC_MULTI:latest" "dist/multi:v1" "$MULTI_DIGEST" || return
  rm -rf "$WORK/pull/dist-big"
  skcopy --preserve-digests "docker://$REGISTRY/dist/big:v1" "oci:$WORK/pull/dist-big:v1" || return 1
  same_blobs "$SRC_BIG" "$WORK/pull/dist-big"
}

# ---------------------------------------------------------------- the run

echo "# work dir $WORK, repositories under $NS, MAX_CHUNK_BYTES=$CHUNK"
step install-tools install_tools || { summary; exit 1; }
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
[ -f /etc/containers/policy.json ] || { mkdir -p /etc/containers && cp "$WORK/policy.json" /etc/containers/policy.json; }
step registry-start start_registry || { tail -n 30 "$WORK/registry.log" >&2; summary; exit 1; }
step build-images build_images "$WORK" "$CACHE" || { summary; exit 1; }

step skopeo-push-refused-413 skopeo_refused
step tool-push-big tool_push_big
step tool-push-index push_and_check "oci:$SRC_MULTI:latest" "$NS/multi:v1" "$MULTI_DIGEST"
step tool-push-again-skips tool_push_again_skips
step skopeo-pull-big skopeo_pull_big
step skopeo-pull-index skopeo_pull_index
step podman-pull-big podman_pull_big
step podman-pull-arm64 podman_pull_arm64
step tool-push-docker-archive tool_push_docker_archive
step tool-push-podman tool_push_podman
step tool-copy-index tool_copy_index
step tool-push-distribution tool_push_distribution

echo "# total $(($(date +%s) - STARTED_AT)) s"
summary
