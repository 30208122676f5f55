#!/usr/bin/env bash
# End-to-end: real clients (skopeo, podman, umoci, curl) against the registry.
#
#   npm run e2e                       starts `npm start` on fresh state, tests it, stops it
#   REGISTRY=host:port npm run e2e    tests that registry instead (e.g. a deployed worker)
#   npm run e2e -- host:port          same
#
# Also runs e2e/containerd.sh (containerd's ctr). Env: E2E_ONLY=REGEX (only the steps whose
# names match, besides setup), E2E_PORT (local port, default 8787 or the next free one), E2E_BIG_MB (size of the big
# layer, default 300), E2E_CACHE (where the big image is kept between runs), E2E_KEEP=1 (keep
# the work dir), E2E_TLS_VERIFY=true (verify the registry's certificate; default false),
# E2E_AUTH=1 (token auth: the registry started here is configured by the .dev.vars block in docs/authentication.md,
# user alice; with REGISTRY, log in as REGISTRY_USER/REGISTRY_PASSWORD; tokens for curl steps).
#
# One line per step, `PASS name` or `FAIL name: reason`, then `N passed, M failed`; the exit
# status is non-zero when anything failed. Each step's full output is in $WORK/logs/<step>.log.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"

REGISTRY=${1:-${REGISTRY:-}}
BIG_MB=${E2E_BIG_MB:-300}
CACHE=${E2E_CACHE:-${TMPDIR:-/tmp}/edge-registry-e2e-cache}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-e2e.XXXXXX")
RUN=run-$(date +%Y%m%d%H%M%S)-$RANDOM   # repositories are new on every run
NS=e2e/$RUN
REG_PID= STARTED_AT=$(date +%s)
mkdir -p "$WORK/logs" "$WORK/pull" "$CACHE"
. "$ROOT/e2e/lib.sh"   # step, fail, note, summary, install_missing, port_busy, npm_start, stop_session, same_blobs
export REGISTRY_AUTH_FILE=$WORK/auth.json   # skopeo and podman both read it
printf '{"auths":{}}' >"$REGISTRY_AUTH_FILE"
export TMPDIR=$WORK/tmp                     # podman's and skopeo's temporary layer copies
mkdir -p "$TMPDIR"

# ---------------------------------------------------------------- plumbing

# E2E_ONLY=REGEX runs only the steps whose names match, besides the setup ones (e2e/containerd.sh
# run alone uses it).
SETUP_STEPS='^(dev-vars-from-readme|install-tools|registry-start|registry-ready|login|build-images)$'
step_skipped() { [ -n "${E2E_ONLY:-}" ] && ! [[ $1 =~ $SETUP_STEPS || $1 =~ $E2E_ONLY ]]; }

# Each push must really upload: the blob-info caches remember where blobs were seen and
# would let skopeo and podman skip or mount instead.
clear_blob_caches() {
  rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb \
    "${XDG_DATA_HOME:-${HOME:-/root}/.local/share}/containers/cache/blob-info-cache-v1.boltdb" \
    "$WORK/podman/root/cache/blob-info-cache-v1.boltdb"
}

TLS_VERIFY=${E2E_TLS_VERIFY:-false}
sk() { skopeo --policy "$WORK/policy.json" "$@"; }
skcopy() { sk copy --src-tls-verify="$TLS_VERIFY" --dest-tls-verify="$TLS_VERIFY" "$@"; }
pm() {
  podman --root "$WORK/podman/root" --runroot "$WORK/podman/runroot" --tmpdir "$WORK/podman/tmp" \
    --storage-driver vfs --events-backend none --cgroup-manager cgroupfs "$@"
}

# blobs_match_names DIR: every blob in an OCI layout hashes to its file name.
blobs_match_names() {
  local f
  for f in "$1"/blobs/sha256/*; do
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || fail "blob $(basename "$f") does not match its digest" || return
  done
}

# layout_digest DIR: the digest index.json names (one entry).
layout_digest() { jq -r '.manifests[0].digest' "$1/index.json"; }
raw_digest() { sk inspect --tls-verify="$TLS_VERIFY" --raw "docker://$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }

# rcurl CURL-ARGS... URL: curl, with a token (or Basic credentials) when E2E_AUTH=1. The token's
# scope is pull,push on the repository the URL names.
rcurl() {
  [ "${E2E_AUTH:-0}" = 1 ] || { curl -sk "$@"; return; }
  local url=${*: -1} chal realm service repo from token
  chal=$(curl -sk -D - -o /dev/null "$SCHEME://$REGISTRY/v2/" | tr -d '\r' | grep -i '^www-authenticate:' | head -n 1)
  case $chal in
    *[Bb]earer*)
      realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$chal")
      service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$chal")
      repo=$(sed -E 's#^[a-z]+://[^/]+/v2/(.*)/(blobs|manifests|tags)/.*#\1#' <<<"$url")
      from=$(sed -n 's/.*[?&]from=\([^&]*\).*/\1/p' <<<"$url")   # a mount also reads its source
      token=$(curl -sk -G -u "$REGISTRY_USER:$REGISTRY_PASSWORD" --data-urlencode "service=$service" \
        --data-urlencode "scope=repository:$repo:pull,push" ${from:+--data-urlencode "scope=repository:$from:pull"} \
        "$realm" | jq -r '.token // .access_token')
      curl -sk -H "Authorization: Bearer $token" "$@"
      ;;
    *) curl -sk -u "$REGISTRY_USER:$REGISTRY_PASSWORD" "$@" ;;
  esac
}

# ---------------------------------------------------------------- setup

install_tools() { install_missing skopeo podman umoci jq curl gzip:gzip setsid:util-linux openssl; }

write_policy() {
  printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
  mkdir -p "$WORK/podman/root" "$WORK/podman/runroot" "$WORK/podman/tmp"
  # podman reads the system policy; Debian ships one, a minimal system may not.
  [ -f /etc/containers/policy.json ] || { mkdir -p /etc/containers && cp "$WORK/policy.json" /etc/containers/policy.json; }
}

# Starts `npm start` in its own session on fresh state (a new persist dir under $WORK), on
# E2E_PORT or else the first free port from 8787 (trying the next when another process wins it).
start_registry() {
  local port=${E2E_PORT:-8787} tries=0 i
  while [ $tries -lt 10 ]; do
    tries=$((tries + 1))
    if port_busy "$port"; then
      [ -n "${E2E_PORT:-}" ] && { fail "port $port is in use"; return; }
      port=$((port + 1))
      continue
    fi
    REGISTRY=localhost:$port
    # MAX_CHUNK_BYTES: the big layer goes in one request, as a plan without Free/Pro's 100 MB body limit takes it.
    npm_start "$port" "$WORK/state" --var MAX_CHUNK_BYTES:4294967296 "${AUTH_ARGS[@]}" || { [ -z "${E2E_PORT:-}" ] || return; port=$((port + 1)); continue; }
    # The front binds its port at once; a lost race shows within seconds.
    for i in $(seq 1 100); do
      port_busy "$port" && return 0
      kill -0 "$REG_PID" 2>/dev/null || break
      sleep 0.1
    done
    grep -q EADDRINUSE "$WORK/registry.log" && [ -z "${E2E_PORT:-}" ] || { tail -n 5 "$WORK/registry.log"; fail "npm start did not listen on $port"; return; }
    stop_registry
    port=$((port + 1))
  done
  fail "no free port found"
}

# Runs docs/authentication.md's .dev.vars block (the one after its "e2e/run.sh (E2E_AUTH=1)"
# marker) in the project root, the password on stdin for `npm run -s hash-password -- alice`.
# A .dev.vars already there is kept aside until the end (lib.sh).
write_dev_vars() {
  # Not in a pipeline: run_dev_vars_block must run in this shell, which restores .dev.vars at the end.
  run_dev_vars_block "$ROOT/docs/authentication.md" '<!-- e2e/run.sh (E2E_AUTH=1) runs the next block' \
    2>"$WORK/tmp/dev-vars.err" < <(printf %s "$REGISTRY_PASSWORD")
  local rc=$?
  sed -E 's/pbkdf2-sha256[^"]*/pbkdf2-sha256…/g' "$WORK/tmp/dev-vars.err"   # what it printed, without the hash
  [ $rc -eq 0 ] || fail "the documented block failed" || return
  cut -d= -f1 "$DEV_VARS"   # the names only: the file holds a password hash
  grep -qE "^AUTH_USERS='[{]\"alice\":\"pbkdf2-sha256([$][A-Za-z0-9+/=]+){3}\"[}]'$" "$DEV_VARS" || fail "no AUTH_USERS line for alice in the documented form" || return
}

# Waits until /v2/ answers (200, or 401 when auth is on); picks https when it speaks it.
wait_for_registry() {
  local deadline=$(($(date +%s) + ${E2E_START_TIMEOUT:-180})) code
  while [ "$(date +%s)" -lt "$deadline" ]; do
    for SCHEME in https http; do
      code=$(curl -sk -o /dev/null -m 5 -w '%{http_code}' "$SCHEME://$REGISTRY/v2/")
      case $code in 200 | 401) echo "$SCHEME://$REGISTRY/v2/ answers $code"; return 0 ;; esac
    done
    if [ -n "$REG_PID" ] && ! kill -0 "$REG_PID" 2>/dev/null; then
      tail -n 20 "$WORK/registry.log"
      fail "npm start exited: $(grep -v '^[[:space:]]*$' "$WORK/registry.log" | tail -n 1)"; return
    fi
    sleep 1
  done
  fail "no answer from $REGISTRY/v2/ within ${E2E_START_TIMEOUT:-180} s"
}

cleanup() {
  declare -F containerd_stop >/dev/null && containerd_stop
  stop_registry
  restore_dev_vars
  if [ "${E2E_KEEP:-0}" = 1 ]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- the local front (npm start)

# TLS on the plain port: a handshake answered at once, not after the clients' 10 s timeout.
https_answers() {
  local t
  t=$(curl -sk -o /dev/null -m 5 -w '%{http_code} %{time_total}' "https://$REGISTRY/v2/") || fail "no TLS answer" || return
  echo "https /v2/: $t"
  # With auth on, /v2/ asks for credentials: 401 is the right answer.
  local want=200
  [ "${E2E_AUTH:-0}" = 1 ] && want=401
  [ "${t% *}" = "$want" ] || fail "https /v2/ answered ${t% *}, not $want" || return
}

skopeo_answers_at_once() {
  local t0 t
  t0=$(date +%s%N)
  sk --debug inspect --tls-verify=false "docker://$REGISTRY/$NS/absent:x" >"$WORK/tmp/inspect.out" 2>&1
  t=$(( ($(date +%s%N) - t0) / 1000000 ))
  grep -E 'GET|Ping' "$WORK/tmp/inspect.out" | head -n 4
  note "skopeo inspect took $t ms"
  grep -Eq "Ping https://$REGISTRY/v2/ status (200|401)" "$WORK/tmp/inspect.out" || fail "skopeo did not reach /v2/ over https" || return
  [ "$t" -lt 3000 ] || fail "skopeo inspect took $t ms" || return
}

# A blob through POST, the Location it returns, and PUT ?digest=, over one scheme; read back.
upload_follows_location() {
  local scheme=$1 base="$1://$REGISTRY" f loc hex code
  f=$WORK/tmp/blob-$scheme
  head -c 100000 /dev/urandom >"$f"
  hex=$(sha256sum "$f" | cut -d' ' -f1)
  loc=$(rcurl -X POST -D - -o /dev/null "$base/v2/$NS/curl/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  echo "Location: $loc"
  [ -n "$loc" ] || fail "POST gave no Location" || return
  case $loc in
    /*) loc=$base$loc ;;
    http://"$REGISTRY"/* | https://"$REGISTRY"/*) ;;
    *) fail "Location is not on $REGISTRY: $loc"; return ;;
  esac
  case $loc in *\?*) loc="$loc&digest=sha256:$hex" ;; *) loc="$loc?digest=sha256:$hex" ;; esac
  code=$(rcurl -X PUT -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' --data-binary "@$f" "$loc")
  [ "$code" = 201 ] || fail "PUT to the Location answered $code" || return
  rcurl -o "$f.back" "$base/v2/$NS/curl/blobs/sha256:$hex"
  cmp -s "$f" "$f.back" || fail "blob read back differs" || return
}

# A raw backslash in a repository name (which URL parsing would turn into "/"): 400 NAME_INVALID,
# before auth, on the front's both schemes.
backslash_name_refused() {
  local scheme out
  for scheme in http https; do
    out=$(curl -sk --path-as-is -X POST -w ' %{http_code}' "$scheme://$REGISTRY/v2/$NS/a\\b/blobs/uploads/")
    echo "$scheme: $out"
    [ "${out##* }" = 400 ] && [[ $out == *NAME_INVALID* ]] || fail "POST …/a\\b/blobs/uploads/ over $scheme answered ${out##* }" || return
  done
}

# ---------------------------------------------------------------- skopeo

login_all() {
  sk login --tls-verify="$TLS_VERIFY" -u "$REGISTRY_USER" --password-stdin "$REGISTRY" <<<"$REGISTRY_PASSWORD" || return 1
  pm login --tls-verify="$TLS_VERIFY" -u "$REGISTRY_USER" --password-stdin "$REGISTRY" <<<"$REGISTRY_PASSWORD"
}

skopeo_push() {
  clear_blob_caches
  skcopy --preserve-digests "oci:$SRC_APP:latest" "docker://$REGISTRY/$NS/app:v1" || return 1
  [ "$(raw_digest "$REGISTRY/$NS/app:v1")" = "$APP_DIGEST" ] || fail "manifest digest in the registry is not $APP_DIGEST" || return
}

skopeo_inspect() {
  local out
  out=$(sk inspect --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/app:v1") || return 1
  echo "$out"
  [ "$(jq -r .Digest <<<"$out")" = "$APP_DIGEST" ] || fail "Digest is $(jq -r .Digest <<<"$out")" || return
  [ "$(jq -r .Architecture <<<"$out")" = amd64 ] || fail "Architecture is $(jq -r .Architecture <<<"$out")" || return
  [ "$(jq '.Layers | length' <<<"$out")" = 2 ] || fail "expected 2 layers" || return
}

skopeo_tags() {
  local tags
  skcopy "docker://$REGISTRY/$NS/app:v1" "docker://$REGISTRY/$NS/app:v2" || return 1
  tags=$(sk list-tags --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/app") || return 1
  echo "$tags"
  [ "$(jq -c '.Tags | sort' <<<"$tags")" = '["v1","v2"]' ] || fail "tags are $(jq -c .Tags <<<"$tags")" || return
  [ "$(raw_digest "$REGISTRY/$NS/app:v2")" = "$APP_DIGEST" ] || fail "v2 is not the same manifest" || return
}

skopeo_pull() {
  skcopy --preserve-digests "docker://$REGISTRY/$NS/app:v1" "oci:$WORK/pull/app:v1" || return 1
  [ "$(layout_digest "$WORK/pull/app")" = "$APP_DIGEST" ] || fail "pulled manifest is $(layout_digest "$WORK/pull/app")" || return
  same_blobs "$SRC_APP" "$WORK/pull/app"
}

# The pulled layout unpacks to the files that went in.
umoci_unpack() {
  umoci unpack --image "$WORK/pull/app:v1" "$WORK/bundle" || return 1
  cmp "$WORK/tree/app1/bin.dat" "$WORK/bundle/rootfs/bin.dat" && cmp "$WORK/tree/app2/lib.dat" "$WORK/bundle/rootfs/lib.dat"
}

skopeo_push_index() {
  clear_blob_caches
  skcopy --all --preserve-digests "oci:$SRC_MULTI:latest" "docker://$REGISTRY/$NS/multi:v1" || return 1
  [ "$(raw_digest "$REGISTRY/$NS/multi:v1")" = "$MULTI_DIGEST" ] || fail "index digest in the registry is not $MULTI_DIGEST" || return
}

# skopeo inspect reports the index's digest; the platform shows in Architecture and the layers.
skopeo_inspect_platforms() {
  local arch want got
  for arch in amd64 arm64; do
    [ $arch = amd64 ] && want=$AMD64_DIGEST || want=$ARM64_DIGEST
    want="$arch $(jq -c '[.layers[].digest]' "$(blob "$SRC_MULTI" "$want")")"
    got=$(sk --override-arch $arch inspect --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/multi:v1" | jq -r '.Architecture + " " + (.Layers | tojson)')
    echo "$arch: $got"
    [ "$got" = "$want" ] || fail "$arch resolves to $got, not $want" || return
  done
}

skopeo_pull_index() {
  skcopy --all --preserve-digests "docker://$REGISTRY/$NS/multi:v1" "oci:$WORK/pull/multi:v1" || return 1
  [ "$(layout_digest "$WORK/pull/multi")" = "$MULTI_DIGEST" ] || fail "pulled index is $(layout_digest "$WORK/pull/multi")" || return
  same_blobs "$SRC_MULTI" "$WORK/pull/multi"
}

# Registry to registry, same registry, other repository: skopeo mounts the blobs it knows are
# there (its blob-info cache remembers the push above) instead of uploading them.
skopeo_mount() {
  local out=$WORK/tmp/mount.out n
  sk --debug copy --src-tls-verify="$TLS_VERIFY" --dest-tls-verify="$TLS_VERIFY" \
    "docker://$REGISTRY/$NS/app:v1" "docker://$REGISTRY/$NS/mounted/app:v1" >"$out" 2>&1 || { tail -n 5 "$out"; return 1; }
  grep -E 'Trying to mount|mount OK|Skipping blob|PATCH' "$out" | cut -c1-200
  # Layers are mounted; skopeo always uploads the config (small) again.
  n=$(grep -c 'mount OK' "$out")
  [ "$n" = 2 ] || fail "$n of 2 layers mounted" || return
  skcopy "docker://$REGISTRY/$NS/mounted/app:v1" "oci:$WORK/pull/mounted:v1" || return 1
  same_blobs "$SRC_APP" "$WORK/pull/mounted"
}

# The mount request itself: 201 and the blob visible (with its length) in the new repository.
curl_mount() {
  local layer base="$SCHEME://$REGISTRY" code len
  layer=$(jq -r '.layers[0].digest' "$(blob "$SRC_APP" "$APP_DIGEST")")
  code=$(rcurl -X POST -o /dev/null -w '%{http_code}' "$base/v2/$NS/curl-mount/blobs/uploads/?mount=$layer&from=$NS/app")
  [ "$code" = 201 ] || fail "mount answered $code" || return
  len=$(rcurl -I "$base/v2/$NS/curl-mount/blobs/$layer" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ength: //p')
  [ "$len" = "$(stat -c %s "$(blob "$SRC_APP" "$layer")")" ] || fail "HEAD of the mounted blob gives length '$len'" || return
}

skopeo_delete() {
  sk delete --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/mounted/app:v1" || return 1
  if sk inspect --tls-verify="$TLS_VERIFY" --raw "docker://$REGISTRY/$NS/mounted/app:v1"; then fail "still there after delete"; return; fi
  sk delete --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/multi@$MULTI_DIGEST" || return 1
  if sk inspect --tls-verify="$TLS_VERIFY" --raw "docker://$REGISTRY/$NS/multi@$MULTI_DIGEST"; then fail "index still there after delete"; return; fi
  # Shared blobs survive: the original repository still pulls in full.
  rm -rf "$WORK/pull/after-delete"
  skcopy "docker://$REGISTRY/$NS/app:v1" "oci:$WORK/pull/after-delete:v1" || return 1
  same_blobs "$SRC_APP" "$WORK/pull/after-delete"
}

# ---------------------------------------------------------------- bounds (docs/limits.md)

# A manifest body of 4 MiB of nested arrays is refused at once, naming the limit (issue 20).
deep_json_refused() {
  local body="$WORK/tmp/deep.json" out
  python3 -c "import sys; sys.stdout.write('[' * 2097152 + ']' * 2097152)" >"$body"
  out=$(rcurl -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$body" \
    -w '\n%{http_code}' "$SCHEME://$REGISTRY/v2/$NS/deep/manifests/v1")
  echo "$out"
  [ "$(tail -n 1 <<<"$out")" = 400 ] || fail "answered $(tail -n 1 <<<"$out")" || return
  grep -q 'MANIFEST_INVALID' <<<"$out" && grep -q 'nested deeper than 32 levels' <<<"$out" || fail "no MANIFEST_INVALID naming the limit"
}

# 1,050 tags on one manifest (?tag=, 53 PUTs of 20): skopeo lists them all, following
# Links that carry where KV resumes; then skopeo deletes the manifest by digest: past 100 tags the
# untag Workflow removes them (under wrangler dev too), the manifest last.
MANY_TAGS=1050
many_tags_listed() {
  local manifest type i j q code tags
  skcopy "docker://$REGISTRY/$NS/app:v1" "docker://$REGISTRY/$NS/many:v0" || return 1
  manifest=$(blob "$SRC_APP" "$APP_DIGEST")
  type=$(jq -r .mediaType "$manifest")
  for ((i = 0; i < MANY_TAGS; i += 20)); do
    q=$(for ((j = i; j < i + 20 && j < MANY_TAGS; j++)); do printf 'tag=t%05d&' "$j"; done)
    code=$(rcurl -X PUT -o /dev/null -w '%{http_code}' -H "Content-Type: $type" --data-binary "@$manifest" \
      "$SCHEME://$REGISTRY/v2/$NS/many/manifests/$APP_DIGEST?${q%&}")
    [ "$code" = 201 ] || fail "PUT with ?tag= answered $code" || return
  done
  tags=$(sk list-tags --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/many") || return 1
  [ "$(jq '.Tags | length' <<<"$tags")" = $((MANY_TAGS + 1)) ] || fail "skopeo listed $(jq '.Tags | length' <<<"$tags") tags" || return
  [ "$(jq '.Tags | unique | length' <<<"$tags")" = $((MANY_TAGS + 1)) ] || fail "skopeo listed a tag twice"
}

many_tags_deleted() {
  local i left
  sk delete --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/many@$APP_DIGEST" || return 1
  for ((i = 0; i < 120; i++)); do
    left=$(sk list-tags --tls-verify="$TLS_VERIFY" "docker://$REGISTRY/$NS/many" 2>/dev/null | jq '.Tags | length')
    [ "${left:-0}" = 0 ] && break
    sleep 1
  done
  echo "tags left: ${left:-0} after $i s"
  [ "${left:-0}" = 0 ] || fail "$left tags still listed after 120 s" || return
  if sk inspect --tls-verify="$TLS_VERIFY" --raw "docker://$REGISTRY/$NS/many@$APP_DIGEST"; then fail "the manifest is still there"; return; fi
  # The same manifest in the original repository is untouched.
  [ "$(raw_digest "$REGISTRY/$NS/app:v1")" = "$APP_DIGEST" ] || fail "app:v1 changed"
}

# ---------------------------------------------------------------- podman

# podman recompresses layers from its storage, so what it pushes differs from the source in
# compressed bytes only: the registry must hold exactly what podman sent (digest file, every
# blob's hash) and the layers must unpack to the source's diff_ids.
podman_push() {
  local d
  skcopy "oci:$SRC_APP:latest" "containers-storage:[vfs@$WORK/podman/root+$WORK/podman/runroot]$REGISTRY/$NS/podman-app:v1" || return 1
  clear_blob_caches
  pm push --tls-verify="$TLS_VERIFY" --format oci --digestfile "$WORK/tmp/podman.digest" "$REGISTRY/$NS/podman-app:v1" || return 1
  d=$(cat "$WORK/tmp/podman.digest")
  [ "$(raw_digest "$REGISTRY/$NS/podman-app:v1")" = "$d" ] || fail "registry manifest is not podman's $d" || return
  skcopy --preserve-digests "docker://$REGISTRY/$NS/podman-app:v1" "oci:$WORK/pull/podman-app:v1" || return 1
  [ "$(layout_digest "$WORK/pull/podman-app")" = "$d" ] || fail "pulled manifest is not $d" || return
  blobs_match_names "$WORK/pull/podman-app" || return 1
  local m want got
  m=$(blob "$WORK/pull/podman-app" "$d")
  want=$(jq -c .rootfs.diff_ids "$(blob "$SRC_APP" "$(jq -r .config.digest "$(blob "$SRC_APP" "$APP_DIGEST")")")")
  got=$(for l in $(jq -r '.layers[].digest' "$m"); do
    echo "sha256:$(gzip -dc "$(blob "$WORK/pull/podman-app" "$l")" | sha256sum | cut -d' ' -f1)"
  done | jq -Rsc 'split("\n") | map(select(. != ""))')
  [ "$want" = "$got" ] || fail "layers unpack to $got, not $want" || return
}

podman_pull() {
  pm rmi -af >/dev/null
  pm pull --tls-verify="$TLS_VERIFY" "$REGISTRY/$NS/app:v1" || return 1
  local d
  d=$(pm image inspect --format '{{.Digest}}' "$REGISTRY/$NS/app:v1") || return 1
  [ "$d" = "$APP_DIGEST" ] || fail "podman sees $d" || return
}

podman_pull_arch() {
  skcopy --all --preserve-digests "oci:$SRC_MULTI:latest" "docker://$REGISTRY/$NS/multi2:v1" || return 1
  pm pull --tls-verify="$TLS_VERIFY" --arch arm64 "$REGISTRY/$NS/multi2:v1" || return 1
  # The image id is its config's digest.
  local out want
  want="$(jq -r .config.digest "$(blob "$SRC_MULTI" "$ARM64_DIGEST")" | cut -d: -f2) arm64"
  out=$(pm image inspect --format '{{.Id}} {{.Architecture}}' "$REGISTRY/$NS/multi2:v1") || return 1
  echo "$out"
  [ "$out" = "$want" ] || fail "podman pulled $out, not $want" || return
}

# ---------------------------------------------------------------- the big image

big_push() {
  clear_blob_caches
  skcopy --preserve-digests "oci:$SRC_BIG:latest" "docker://$REGISTRY/$NS/big:v1" || return 1
  [ "$(raw_digest "$REGISTRY/$NS/big:v1")" = "$BIG_DIGEST" ] || fail "manifest digest is not $BIG_DIGEST" || return
}

big_pull() {
  skcopy --preserve-digests "docker://$REGISTRY/$NS/big:v1" "oci:$WORK/pull/big:v1" || return 1
  same_blobs "$SRC_BIG" "$WORK/pull/big"
}

podman_pull_big() {
  pm rmi -af >/dev/null
  pm pull --tls-verify="$TLS_VERIFY" "$REGISTRY/$NS/big:v1" || return 1
  [ "$(pm image inspect --format '{{.Digest}}' "$REGISTRY/$NS/big:v1")" = "$BIG_DIGEST" ] || fail "podman sees another digest" || return
  pm rmi -af >/dev/null
}

# ---------------------------------------------------------------- the run

timed() { step_skipped "$1" || note "$(printf '%-18s %6s s%s' "$1" "$TOOK" "${2:+  $2}")"; }

echo "# work dir $WORK, repositories under $NS"
# With auth on and no registry given, the registry started here is set up as docs/authentication.md says:
# its .dev.vars block runs as it is (user alice, a password made up for this run unless
# REGISTRY_PASSWORD is set), so the documented form cannot drift. Without auth, AUTH_MODE is
# forced to "none" whatever a developer's own .dev.vars says.
AUTH_ARGS=()
if [ "${E2E_AUTH:-0}" = 1 ] && [ -z "$REGISTRY" ]; then
  REGISTRY_USER=alice
  REGISTRY_PASSWORD=${REGISTRY_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
  step dev-vars-from-readme write_dev_vars || { echo "$PASSED passed, $FAILED failed"; exit 1; }
elif [ -z "$REGISTRY" ]; then
  AUTH_ARGS=(--var AUTH_MODE:none)
fi
if [ "${E2E_AUTH:-0}" = 1 ] && { [ -z "${REGISTRY_USER:-}" ] || [ -z "${REGISTRY_PASSWORD:-}" ]; }; then
  echo "FAIL auth-settings: E2E_AUTH=1 needs REGISTRY_USER and REGISTRY_PASSWORD"
  echo "0 passed, 1 failed"
  exit 1
fi
step install-tools install_tools || { echo "$PASSED passed, $FAILED failed"; exit 1; }
write_policy
clear_blob_caches

if [ -z "$REGISTRY" ]; then
  LOCAL=1
  step registry-start start_registry
  step registry-ready wait_for_registry
  timed registry-ready
else
  LOCAL=0
  step registry-ready wait_for_registry
fi
if [ $FAILED -gt 0 ]; then
  [ -f "$WORK/registry.log" ] && tail -n 30 "$WORK/registry.log" >&2
  echo "$PASSED passed, $FAILED failed"
  exit 1
fi
note "registry $SCHEME://$REGISTRY"
[ "${E2E_AUTH:-0}" = 1 ] && step login login_all

step build-images build_images "$WORK" "$CACHE"
timed build-images "(big layer: ${BIG_MB} MiB, cached in $CACHE)"

if [ "$LOCAL" = 1 ]; then
  step https-on-plain-port https_answers
  step skopeo-no-tls-wait skopeo_answers_at_once
  timed skopeo-no-tls-wait
  step upload-location-http upload_follows_location http
  step upload-location-https upload_follows_location https
  step backslash-name-refused backslash_name_refused
else
  step "upload-location-$SCHEME" upload_follows_location "$SCHEME"
fi

step skopeo-push skopeo_push
step skopeo-inspect skopeo_inspect
step skopeo-list-tags skopeo_tags
step skopeo-pull skopeo_pull
step umoci-unpack umoci_unpack
step skopeo-cross-repo-mount skopeo_mount   # before the caches are cleared again
step curl-mount curl_mount
step skopeo-push-index skopeo_push_index
step skopeo-inspect-platforms skopeo_inspect_platforms
step skopeo-pull-index skopeo_pull_index
step podman-push podman_push
step podman-pull podman_pull
step podman-pull-arm64 podman_pull_arch
step big-push big_push;             timed big-push "${BIG_MB} MiB"
step big-pull big_pull;             timed big-pull "${BIG_MB} MiB, compared byte for byte"
step podman-pull-big podman_pull_big; timed podman-pull-big "${BIG_MB} MiB into vfs storage"
. "$ROOT/e2e/containerd.sh"   # containerd's ctr, its own daemon: pushes, then pulls every platform
step skopeo-delete skopeo_delete
step deep-json-refused deep_json_refused
step many-tags-listed many_tags_listed
step many-tags-deleted many_tags_deleted

note "total $(($(date +%s) - STARTED_AT)) s"
summary
