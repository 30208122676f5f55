#!/usr/bin/env bash
# End-to-end garbage collection against `npm start` (README "Garbage collection"):
# push two images with skopeo, delete one's tag, `npm run gc -- --dry-run --untagged --json`,
# then a real run: both report the same deletions, the untagged image's blobs are gone (report
# and a 404), the tagged image still pulls. Short grace and settle (GC_TEST_SHORT_GRACE).
#
#   bash e2e/gc.sh            Env: E2E_PORT (default 8830), E2E_KEEP=1 (keep the work dir)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"
PORT=${E2E_PORT:-8830}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-gc.XXXXXX")
REG=localhost:$PORT
REPO=gc/app$RANDOM
PID= PASSED=0 FAILED=0
export TMPDIR=$WORK/tmp && mkdir -p "$TMPDIR" "$WORK/logs"

step() {
  local name=$1
  shift
  if "$@" >"$WORK/logs/$name.log" 2>&1 </dev/null; then PASSED=$((PASSED + 1)); echo "PASS $name"
  else FAILED=$((FAILED + 1)); echo "FAIL $name: $(grep -v '^\s*$' "$WORK/logs/$name.log" | tail -n 1 | cut -c1-300)"; return 1; fi
}
fail() { echo "$*"; return 1; }
stop() {
  [ -n "$PID" ] && kill -TERM -- "-$PID" 2>/dev/null
  for _ in $(seq 1 50); do ps -eo sid= | grep -qw "$PID" || break; sleep 0.1; done
  [ "${E2E_KEEP:-0}" = 1 ] && echo "work dir: $WORK" || rm -rf "$WORK"
}
trap stop EXIT

tools() {
  local missing=() t
  for t in skopeo jq curl setsid:util-linux; do command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}: apt-get install -y ${missing[*]}" || return
  DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

start() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && fail "port $PORT is in use"
  (cd "$ROOT" && PORT=$PORT WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false exec setsid npm start -- \
    --persist-to "$WORK/state" --var GC_GRACE_SECONDS:0 --var GC_SETTLE_SECONDS:2 --var GC_TEST_SHORT_GRACE:true) \
    >"$WORK/registry.log" 2>&1 </dev/null &
  PID=$!
  for _ in $(seq 1 600); do curl -sf "http://$REG/v2/" >/dev/null && return 0; sleep 0.2; done
  tail -n 5 "$WORK/registry.log"; fail "registry did not answer"
}

images() {
  local l m n
  for n in keep drop; do
    oci_init "$WORK/$n"
    random_tree "$WORK/tree/$n" data.bin 400000
    l=$(oci_layer "$WORK/$n" "$WORK/tree/$n") && m=$(oci_image "$WORK/$n" amd64 "$l") || return 1
    oci_tag "$WORK/$n" application/vnd.oci.image.manifest.v1+json "$m" "$n"
    echo "${l%% *}" >"$WORK/$n.layer"
  done
}

push() {
  local n
  for n in keep drop; do
    skopeo copy --dest-tls-verify=false "oci:$WORK/$n:$n" "docker://$REG/$REPO:$n" || return
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$REG/v2/$REPO/manifests/drop")" = 202 ] || fail "tag delete failed"
}

gc_dry() {
  (cd "$ROOT" && npm run -s gc -- --url "http://$REG" --dry-run --untagged --json) >"$WORK/dry.json" || return
  jq -e '.dryRun == true and .totals.manifests >= 1 and .totals.blobs >= 2 and .totals.bytes > 0' "$WORK/dry.json" >/dev/null \
    || fail "dry run report: $(jq -c .totals "$WORK/dry.json")"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/$REPO/blobs/$(cat "$WORK/drop.layer")")" = 200 ] || fail "the dry run deleted a blob"
}

gc_real() {
  (cd "$ROOT" && npm run -s gc -- --url "http://$REG" --untagged --json) >"$WORK/real.json" || return
  jq -e '.dryRun == false' "$WORK/real.json" >/dev/null || fail "not a real run"
  [ "$(jq -c .totals "$WORK/real.json")" = "$(jq -c .totals "$WORK/dry.json")" ] \
    || fail "real run $(jq -c .totals "$WORK/real.json") differs from the dry run $(jq -c .totals "$WORK/dry.json")"
  jq -e --arg r "$REPO" '.repositories[$r].manifests.count == 1' "$WORK/real.json" >/dev/null || fail "the untagged manifest was not reported"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/$REPO/blobs/$(cat "$WORK/drop.layer")")" = 404 ] || fail "the untagged image's layer still answers"
  curl -sf "http://$REG/admin/gc" | jq -e --arg id "$(jq -r .id "$WORK/real.json")" '.reports | map(.id) | index($id) != null' >/dev/null \
    || fail "report not stored under _registry/gc/"
}

pull() {
  skopeo copy --src-tls-verify=false "docker://$REG/$REPO:keep" "oci:$WORK/pulled:keep" || return
  [ -f "$WORK/pulled/blobs/sha256/$(cut -d: -f2 "$WORK/keep.layer")" ] || fail "layer missing from the pull"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/$REPO/manifests/drop")" = 404 ] || fail "dropped tag still answers"
}

step tools tools && step start start && step images images && step push push && step gc-dry-run gc_dry && step gc-run gc_real && step pull-tagged pull
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
