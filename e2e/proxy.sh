#!/usr/bin/env bash
# End-to-end for the pull-through cache (docs/pull-through-cache.md): a real upstream, real clients.
#
#   bash e2e/proxy.sh
#
# 1. CNCF distribution (Debian's `docker-registry`) on 127.0.0.1:$UP_PORT with htpasswd Basic
#    auth holds a multi-arch image and a ${BIG_MB} MB layer (built by e2e/images.sh).
# 2. `npm start` on $PORT with UPSTREAMS pointing at it (prefix `up`, host 127.0.0.1:$PORT,
#    ns `upstream.test`, tagTtlSeconds $TTL) and its credentials in UPSTREAM_CREDENTIALS.
# 3. skopeo (prefix and host mode), podman (host mode) and containerd's ctr (a mirror in a
#    hosts.toml, so its requests carry ?ns=upstream.test) pull through the cache, byte for byte;
#    a tag moved upstream is seen after the TTL; a push to the proxy namespace is refused.
# 4. Two more entries, `tk` (with credentials) and `anon` (without), point at one upstream with
#    token auth: this registry itself, started with AUTH_MODE=token on $TK_PORT, holding a private
#    team-a/private and a public public/open. anon cannot read team-a/private, before or after tk
#    pulled it (tokens and cached content are per entry and credentials); a blob pushed to a local
#    private repository of the proxy is not readable by digest through any proxied namespace, nor
#    is a local manifest by digest; a malformed Host gets 400, not 500.
#    A fourth entry, `evil`, points at e2e/hostile-upstream.mjs: a manifest body that never ends is
#    read no further than MANIFEST_MAX_BYTES (502), and a tag list of nested arrays is refused unparsed.
# 5. The upstream is STOPPED; the same pulls still succeed byte for byte (stale tags are
#    served with a Warning).
#
# Env: E2E_PROXY_PORT (8840), E2E_UPSTREAM_PORT (8845), E2E_TOKEN_UPSTREAM_PORT (8848),
# E2E_HOSTILE_UPSTREAM_PORT (8849), E2E_BIG_MB
# (300), E2E_CACHE (where the big image is kept between runs, shared with e2e/run.sh), E2E_KEEP=1
# (keep the work dir). Each registry's wrangler inspector is on its port + 10000.
# One line per step, `PASS name` or `FAIL name: reason`; non-zero exit when anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"

PORT=${E2E_PROXY_PORT:-8840}
UP_PORT=${E2E_UPSTREAM_PORT:-8845}
TK_PORT=${E2E_TOKEN_UPSTREAM_PORT:-8848}
EVIL_PORT=${E2E_HOSTILE_UPSTREAM_PORT:-8849}
BIG_MB=${E2E_BIG_MB:-300}
TTL=4
CACHE=${E2E_CACHE:-${TMPDIR:-/tmp}/edge-registry-e2e-cache}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-proxy.XXXXXX")
UPSTREAM=127.0.0.1:$UP_PORT
PREFIXED=localhost:$PORT/up   # prefix mode: /v2/up/<upstream name>/…
HOSTED=127.0.0.1:$PORT        # host mode: this Host header is the upstream at the root
UP_USER=e2e UP_PASSWORD=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
TK_UPSTREAM=127.0.0.1:$TK_PORT   # this registry with token auth: the upstream of entries tk and anon
TK_PASSWORD=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
REG_PID= UP_PID= CTD_PID= TK_PID= EVIL_PID= STARTED_AT=$(date +%s)
mkdir -p "$WORK/logs" "$WORK/pull" "$CACHE" "$WORK/tmp"
export TMPDIR=$WORK/tmp
export REGISTRY_AUTH_FILE=$WORK/auth.json
printf '{"auths":{}}' >"$REGISTRY_AUTH_FILE"

# ---------------------------------------------------------------- plumbing (e2e/lib.sh)

. "$ROOT/e2e/lib.sh"
STEP_TIMED=1

sk() { skopeo --policy "$WORK/policy.json" "$@"; }
skcopy() { sk copy --src-tls-verify=false --dest-tls-verify=false "$@"; }
pm() {
  podman --root "$WORK/podman/root" --runroot "$WORK/podman/runroot" --tmpdir "$WORK/podman/tmp" \
    --storage-driver vfs --events-backend none --cgroup-manager cgroupfs "$@"
}
ctrc() { ctr --address "$WORK/containerd/containerd.sock" --namespace e2e "$@"; }

# ctr_same_blobs SRC: containerd's content store holds every blob of layout SRC, byte for byte.
ctr_same_blobs() {
  local f n=0
  for f in $(ls "$1/blobs/sha256"); do
    ctrc content get "sha256:$f" | cmp -s - "$1/blobs/sha256/$f" || fail "containerd's sha256:$f differs" || return
    n=$((n + 1))
  done
  echo "$n blobs identical in containerd"
}

raw_digest() { sk inspect --tls-verify=false --raw "docker://$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }

cleanup() {
  stop_registry
  stop_session "$TK_PID"
  stop_session "$UP_PID"
  stop_session "$CTD_PID"
  stop_session "$EVIL_PID"
  remove_work
}

# ---------------------------------------------------------------- setup

install_tools() {
  install_missing skopeo podman jq curl docker-registry htpasswd:apache2-utils containerd ctr:containerd setsid:util-linux
}

write_policy() {
  printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
  mkdir -p "$WORK/podman/root" "$WORK/podman/runroot" "$WORK/podman/tmp"
  [ -f /etc/containers/policy.json ] || { mkdir -p /etc/containers && cp "$WORK/policy.json" /etc/containers/policy.json; }
}

# The upstream: distribution with its own config, filesystem storage here, Basic auth (bcrypt htpasswd).
start_upstream() {
  port_busy "$UP_PORT" && { fail "port $UP_PORT is in use"; return; }
  mkdir -p "$WORK/upstream/data"
  htpasswd -Bbn "$UP_USER" "$UP_PASSWORD" >"$WORK/upstream/htpasswd"
  cat >"$WORK/upstream/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $WORK/upstream/data
  delete:
    enabled: true
http:
  addr: $UPSTREAM
auth:
  htpasswd:
    realm: upstream
    path: $WORK/upstream/htpasswd
EOF
  # distribution reads REGISTRY_* variables as settings: REGISTRY_AUTH_FILE (skopeo's) is not one.
  env -u REGISTRY_AUTH_FILE setsid docker-registry serve "$WORK/upstream/config.yml" >"$WORK/upstream.log" 2>&1 </dev/null &
  UP_PID=$!
  local i
  for i in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$UPSTREAM/v2/")" = 401 ] && { echo "upstream up (session $UP_PID)"; return 0; }
    sleep 0.1
  done
  tail -n 5 "$WORK/upstream.log"
  fail "the upstream did not start"
}

upstream_push() { skcopy --dest-creds "$UP_USER:$UP_PASSWORD" --preserve-digests "$@"; }

seed_upstream() {
  upstream_push --all "oci:$SRC_MULTI:latest" "docker://$UPSTREAM/e2e/multi:v1" || return
  upstream_push "oci:$SRC_BIG:latest" "docker://$UPSTREAM/e2e/big:v1" || return
  upstream_push "oci:$SRC_APP:latest" "docker://$UPSTREAM/e2e/moving:v1"
}

# The token upstream: this registry (`npm start`) with AUTH_MODE=token; user admin pushes and pulls
# team-a/* (private) and public/* (anyone may pull). Its own session, TK_PID.
start_token_upstream() {
  local hash rules
  hash=$(cd "$ROOT" && printf %s "$TK_PASSWORD" | node scripts/hash-password.mjs --iterations 10000) || return
  rules='[{"repos":"team-a/*","users":["admin"],"actions":["pull","push"]},{"repos":"public/*","users":["admin"],"actions":["pull","push"],"anonymous":["pull"]}]'
  NPM_START_LOG=$WORK/token-upstream.log npm_start "$TK_PORT" "$WORK/token-upstream" --var AUTH_MODE:token \
    --var "AUTH_TOKEN_SECRET:$(head -c 36 /dev/urandom | base64)" --var "AUTH_USERS:{\"admin\":\"$hash\"}" --var "AUTH_RULES:$rules" || return
  TK_PID=$REG_PID REG_PID=
  wait_answer "http://$TK_UPSTREAM/v2/" 401
}

# A small image of its own (random bytes): OPEN_SRC, for public/open on the token upstream.
build_open_image() {
  local l m
  OPEN_SRC=$WORK/src/open
  oci_init "$OPEN_SRC"
  random_tree "$WORK/tree/open" open.dat 100000
  l=$(oci_layer "$OPEN_SRC" "$WORK/tree/open") && m=$(oci_image "$OPEN_SRC" amd64 "$l") || return
  oci_tag "$OPEN_SRC" application/vnd.oci.image.manifest.v1+json "$m" latest
  OPEN_DIGEST=${m% *}
}

seed_token_upstream() {
  build_open_image || return
  skcopy --dest-creds "admin:$TK_PASSWORD" --preserve-digests "oci:$SRC_APP:latest" "docker://$TK_UPSTREAM/team-a/private:v1" || return
  skcopy --dest-creds "admin:$TK_PASSWORD" --preserve-digests "oci:$OPEN_SRC:latest" "docker://$TK_UPSTREAM/public/open:v1" || return
  # The upstream itself: private to anonymous, public to anyone.
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$TK_UPSTREAM/v2/team-a/private/manifests/v1")" = 401 ] || fail "the upstream's team-a/private is not private"
}

start_proxy() {
  local upstreams credentials
  upstreams="[{\"prefix\":\"up\",\"host\":\"$HOSTED\",\"ns\":[\"upstream.test\"],\"url\":\"http://$UPSTREAM\",\"tagTtlSeconds\":$TTL},"
  upstreams+="{\"prefix\":\"tk\",\"url\":\"http://$TK_UPSTREAM\"},{\"prefix\":\"anon\",\"url\":\"http://$TK_UPSTREAM\"},"
  upstreams+="{\"prefix\":\"evil\",\"url\":\"http://127.0.0.1:$EVIL_PORT\"}]"
  credentials="{\"up\":\"$UP_USER:$UP_PASSWORD\",\"tk\":\"admin:$TK_PASSWORD\"}"
  npm_start "$PORT" "$WORK/state" --var "UPSTREAMS:$upstreams" --var "UPSTREAM_CREDENTIALS:$credentials" || return
  wait_answer "https://localhost:$PORT/v2/" 200
}

# containerd as this script's own daemon: private root, state and socket; a hosts.toml that
# makes localhost:$PORT the mirror of registry "upstream.test" (which does not resolve: only
# the mirror can answer). containerd adds ?ns=upstream.test to every mirror request.
start_containerd() {
  local d=$WORK/containerd
  mkdir -p "$d/root" "$d/state" "$WORK/certs.d/upstream.test"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$d/containerd.sock"
EOF
  cat >"$WORK/certs.d/upstream.test/hosts.toml" <<EOF
server = "https://upstream.test"

[host."http://localhost:$PORT"]
  capabilities = ["pull", "resolve"]
EOF
  setsid containerd --config "$d/config.toml" >"$WORK/containerd.log" 2>&1 </dev/null &
  CTD_PID=$!
  local i
  for i in $(seq 1 100); do
    ctrc version >/dev/null 2>&1 && { echo "containerd up (session $CTD_PID)"; return 0; }
    sleep 0.1
  done
  tail -n 5 "$WORK/containerd.log"
  fail "containerd did not start"
}

# ---------------------------------------------------------------- the checks

# pull_layout NAME REF SRC [--all]: skopeo copy REF into an OCI layout, compared with SRC.
pull_layout() {
  local name=$1 ref=$2 src=$3
  shift 3
  skcopy --preserve-digests "$@" "docker://$ref" "oci:$WORK/pull/$name:v1" || return
  same_blobs "$src" "$WORK/pull/$name"
}

podman_pull() {
  pm rmi -f "$1" >/dev/null 2>&1
  pm pull --tls-verify=false "$1" || return
  [ "$(pm image inspect --format '{{.Digest}}' "$1")" = "$2" ] || fail "podman sees another digest"
}

# ctr_pull REF SRC [flags]: pull through the mirror (hosts.toml), every blob compared with SRC.
ctr_pull() {
  local ref=$1 src=$2
  shift 2
  ctrc images rm --sync "$ref" >/dev/null 2>&1
  ctrc images pull --hosts-dir "$WORK/certs.d" --snapshotter native "$@" "$ref" || return
  ctr_same_blobs "$src"
}

# The mirror requests containerd sent carried ?ns= (and were routed by it: OCI-Namespace).
ns_was_used() {
  local h
  h=$(curl -sk -D - -o /dev/null "https://localhost:$PORT/v2/e2e/multi/manifests/v1?ns=upstream.test" | tr -d '\r')
  grep -qi '^oci-namespace: upstream.test' <<<"$h" || fail "no OCI-Namespace on an ns request: $h"
}

moved_tag_seen() {
  [ "$(raw_digest "$PREFIXED/e2e/moving:v1")" = "$APP_DIGEST" ] || fail "moving:v1 is not the first image" || return
  upstream_push --all "oci:$SRC_MULTI:latest" "docker://$UPSTREAM/e2e/moving:v1" || return
  sleep $((TTL + 1))
  local d
  d=$(raw_digest "$PREFIXED/e2e/moving:v1")
  [ "$d" = "$MULTI_DIGEST" ] || fail "after the TTL moving:v1 is still $d, not $MULTI_DIGEST"
  echo "moved to $d"
}

push_refused() {
  local out code
  if out=$(skcopy "oci:$SRC_APP:latest" "docker://$PREFIXED/e2e/pushed:v1" 2>&1); then fail "the push was accepted"; return; fi
  echo "$out" | tail -n 2
  code=$(curl -sk -o "$WORK/push.json" -w '%{http_code}' -X POST "https://localhost:$PORT/v2/up/e2e/pushed/blobs/uploads/")
  [ "$code" = 405 ] || fail "POST upload answered $code" || return
  jq -e '.errors[0].code == "UNSUPPORTED" and (.errors[0].detail | test("read-only cache"))' "$WORK/push.json" || fail "not UNSUPPORTED: $(cat "$WORK/push.json")"
}

# code URL: the HTTP status of a GET (or of curl's other arguments) on the proxy.
code() { curl -sk -o /dev/null -w '%{http_code}' "$@"; }

# Issue 21, 1: anon cannot pull the private image, on a fresh instance.
anon_refused_cold() {
  if skcopy "docker://localhost:$PORT/anon/team-a/private:v1" "oci:$WORK/pull/anon-cold:v1" >"$WORK/tmp/anon-cold.out" 2>&1; then
    fail "anon/ pulled the upstream's private image"; return
  fi
  tail -n 1 "$WORK/tmp/anon-cold.out"
}

tk_pulls_private() { pull_layout tk-private "localhost:$PORT/tk/team-a/private:v1" "$SRC_APP"; }

# After tk pulled it (a token earned with tk's credentials exists, and the content is cached under tk/),
# nothing of it is readable through anon/: by tag, by digest, its blobs, its tag list; skopeo fails.
anon_refused_after_tk() {
  local d c path
  for path in manifests/v1 "manifests/$APP_DIGEST" tags/list; do
    c=$(code "https://localhost:$PORT/v2/anon/team-a/private/$path")
    [ "$c" != 200 ] || fail "anon/team-a/private/$path answered 200" || return
    echo "anon/team-a/private/$path: $c"
  done
  for d in $(ls "$SRC_APP/blobs/sha256"); do
    c=$(code "https://localhost:$PORT/v2/anon/team-a/private/blobs/sha256:$d")
    [ "$c" != 200 ] || fail "anon/ read blob sha256:$d of the private image" || return
  done
  if skcopy "docker://localhost:$PORT/anon/team-a/private:v1" "oci:$WORK/pull/anon-after:v1" >/dev/null 2>&1; then
    fail "anon/ pulled the private image after tk/ did"; return
  fi
  # The upstream answered one manifest GET of it with 200 (tk's), anon's with 401.
  local ok
  ok=$(grep -c 'GET /v2/team-a/private/manifests/v1 200' "$WORK/token-upstream.log" || true)
  [ "$ok" -le 1 ] || fail "the upstream answered $ok manifest GETs of team-a/private with 200, not only tk's one"
}

anon_pulls_public() { pull_layout anon-open "localhost:$PORT/anon/public/open:v1" "$OPEN_SRC"; }

# Issue 21, 2: a blob pushed to a local private repository of the proxy is not readable by digest
# through any proxied namespace (its upstream does not serve it there); nor is a local manifest;
# nor a layer cached through tk/ by anon/ in a repository the upstream does not hold it in.
private_blob_not_proxied() {
  local blob d c ns layer
  blob=$WORK/tmp/secret.bin
  head -c 20000 /dev/urandom >"$blob"
  d=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
  c=$(code -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$blob" "https://localhost:$PORT/v2/local/secret/blobs/uploads/?digest=$d")
  [ "$c" = 201 ] || fail "pushing the local blob answered $c" || return
  [ "$(code "https://localhost:$PORT/v2/local/secret/blobs/$d")" = 200 ] || fail "the local blob does not read back" || return
  [ "$(code "https://localhost:$PORT/v2/local/other/blobs/$d")" = 404 ] || fail "local/other reads it" || return
  # The upstream answers 404, or refuses the entry that repository (502): never the local bytes.
  for ns in anon tk up; do
    c=$(code "https://localhost:$PORT/v2/$ns/any/repo/blobs/$d")
    [ "$c" = 404 ] || [ "$c" = 502 ] || fail "$ns/any/repo/blobs answered $c" || return
    echo "GET $ns/any/repo/blobs/<local private blob>: $c"
    c=$(code -I "https://localhost:$PORT/v2/$ns/any/repo/blobs/$d")
    [ "$c" = 404 ] || [ "$c" = 502 ] || fail "HEAD $ns/any/repo/blobs answered $c" || return
  done
  c=$(code "https://localhost:$PORT/v2/anon/any/repo/manifests/$APP_DIGEST")
  [ "$c" != 200 ] || fail "a manifest by digest was served through anon/" || return
  echo "a manifest the registry holds, by digest through anon/any/repo: $c"
  layer=$(jq -r '.layers[0].digest' "$SRC_APP/blobs/sha256/${APP_DIGEST#sha256:}")
  c=$(code "https://localhost:$PORT/v2/anon/public/open/blobs/$layer")
  [ "$c" = 404 ] || fail "anon/public/open served the private image's layer ($c)" || return
  echo "the private image's layer through anon/public/open: 404"
}

# The hostile upstream (e2e/hostile-upstream.mjs), its own session EVIL_PID.
start_hostile_upstream() {
  port_busy "$EVIL_PORT" && { fail "port $EVIL_PORT is in use"; return; }
  (cd "$ROOT" && exec setsid node e2e/hostile-upstream.mjs "$EVIL_PORT" "$WORK/hostile.log") >"$WORK/hostile.out" 2>&1 </dev/null &
  EVIL_PID=$!
  wait_answer "http://127.0.0.1:$EVIL_PORT/v2/" 200 20
}

# What a hostile upstream answers costs what the limits say: a manifest that never ends is cut at
# MANIFEST_MAX_BYTES (502; the upstream saw only a few MiB read), a tag list nested 2 Mi deep is
# refused unparsed (the cache has none: 404), and the registry still answers.
hostile_upstream_bounded() {
  local c
  c=$(curl -sk -m 60 -o "$WORK/tmp/evil.json" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "https://localhost:$PORT/v2/evil/endless/manifests/v1")
  [ "$c" = 502 ] || fail "the endless manifest answered $c" || return
  jq -e '.errors[0].detail.upstream | test("larger than 4194304 bytes")' "$WORK/tmp/evil.json" >/dev/null || fail "not the size limit: $(cat "$WORK/tmp/evil.json")" || return
  local i read=
  for i in $(seq 1 50); do read=$(sed -n 's/^endless: \([0-9]*\) MiB read$/\1/p' "$WORK/hostile.log"); [ -n "$read" ] && break; sleep 0.1; done
  [ -n "$read" ] && [ "$read" -le 64 ] || fail "the registry read ${read:-all} MiB of the endless manifest" || return
  echo "endless manifest: 502 after ${read} MiB sent (socket buffers included)"
  c=$(curl -sk -m 60 -o "$WORK/tmp/evil.json" -w '%{http_code}' "https://localhost:$PORT/v2/evil/deep/tags/list")
  [ "$c" = 404 ] || fail "the nested tag list answered $c: $(head -c 200 "$WORK/tmp/evil.json")" || return
  [ "$(code "https://localhost:$PORT/v2/")" = 200 ] || fail "the registry no longer answers"
}

# A Host the front cannot route: 400 with an error body, never 500.
bad_host_400() {
  local body c
  c=$(curl -s -o "$WORK/tmp/host.json" -w '%{http_code}' -H "Host: 127.0.0.1:$PORT." "http://127.0.0.1:$PORT/v2/")
  [ "$c" = 400 ] || fail "Host 127.0.0.1:$PORT. answered $c" || return
  jq -e '.errors[0].code == "BAD_REQUEST"' "$WORK/tmp/host.json" >/dev/null || fail "no error JSON: $(cat "$WORK/tmp/host.json")"
}

stop_upstream() {
  stop_session "$UP_PID"
  UP_PID=
  ! curl -s -m 2 "http://$UPSTREAM/v2/" >/dev/null || fail "the upstream still answers"
}

stale_with_warning() {
  sleep $((TTL + 1))
  local h
  h=$(curl -sk -D - -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' "https://localhost:$PORT/v2/up/e2e/multi/manifests/v1" | tr -d '\r')
  grep -q '^HTTP/[0-9.]* 200' <<<"$h" || fail "not 200: $(head -n 1 <<<"$h")" || return
  grep -qi '^warning: 110' <<<"$h" || fail "no Warning header: $h"
}

# Manifest GETs the upstream saw (its access log), for the request count in docs/pull-through-cache.md.
upstream_manifest_gets() { grep -c '"GET /v2/[^ ]*/manifests/' "$WORK/upstream.log" || true; }

# ---------------------------------------------------------------- the run

echo "# work dir $WORK"
step install-tools install_tools || { summary; exit 1; }
write_policy
step build-images build_images "$WORK" "$CACHE"
step upstream-start start_upstream
step upstream-seed seed_upstream
step token-upstream-start start_token_upstream
step token-upstream-seed seed_token_upstream
step hostile-upstream-start start_hostile_upstream
step proxy-start start_proxy
step containerd-start start_containerd
if [ $FAILED -gt 0 ]; then summary; exit 1; fi

step skopeo-prefix-multi pull_layout prefix-multi "$PREFIXED/e2e/multi:v1" "$SRC_MULTI" --all
step skopeo-prefix-big-cold pull_layout prefix-big "$PREFIXED/e2e/big:v1" "$SRC_BIG"; note "cold ${BIG_MB} MiB pull: $TOOK s"
step skopeo-prefix-big-warm pull_layout prefix-big-warm "$PREFIXED/e2e/big:v1" "$SRC_BIG"; note "warm ${BIG_MB} MiB pull: $TOOK s"
step skopeo-host-multi pull_layout host-multi "$HOSTED/e2e/multi:v1" "$SRC_MULTI" --all
step podman-host-big podman_pull "$HOSTED/e2e/big:v1" "$BIG_DIGEST"
step ctr-mirror-multi ctr_pull upstream.test/e2e/multi:v1 "$SRC_MULTI" --all-platforms
step ctr-mirror-big ctr_pull upstream.test/e2e/big:v1 "$SRC_BIG"
step ns-routed ns_was_used
step tag-moved-after-ttl moved_tag_seen
step push-refused push_refused
step anon-refused-cold anon_refused_cold
step tk-pulls-private tk_pulls_private
step anon-refused-after-tk anon_refused_after_tk
step anon-pulls-public anon_pulls_public
step private-blob-not-proxied private_blob_not_proxied
step bad-host-400 bad_host_400
step hostile-upstream-bounded hostile_upstream_bounded
note "upstream manifest GETs so far: $(upstream_manifest_gets)"

step upstream-stop stop_upstream
step stale-tag-warning stale_with_warning
step offline-skopeo-prefix-multi pull_layout offline-prefix-multi "$PREFIXED/e2e/multi:v1" "$SRC_MULTI" --all
step offline-skopeo-prefix-big pull_layout offline-prefix-big "$PREFIXED/e2e/big:v1" "$SRC_BIG"
step offline-skopeo-host-multi pull_layout offline-host-multi "$HOSTED/e2e/multi:v1" "$SRC_MULTI" --all
step offline-podman-host-big podman_pull "$HOSTED/e2e/big:v1" "$BIG_DIGEST"
step offline-ctr-mirror-multi ctr_pull upstream.test/e2e/multi:v1 "$SRC_MULTI" --all-platforms
step offline-ctr-mirror-big ctr_pull upstream.test/e2e/big:v1 "$SRC_BIG"

note "total $(($(date +%s) - STARTED_AT)) s"
summary
