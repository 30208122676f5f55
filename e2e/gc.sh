#!/usr/bin/env bash
# End-to-end garbage collection against `npm start` (docs/garbage-collection.md):
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
export TMPDIR=$WORK/tmp && mkdir -p "$TMPDIR"
. "$ROOT/e2e/lib.sh"
STEP_REASON_CHARS=300

tools() { install_missing skopeo jq curl setsid:util-linux; }

start() {
  npm_start "$PORT" "$WORK/state" --var GC_GRACE_SECONDS:0 --var GC_SETTLE_SECONDS:2 --var GC_TEST_SHORT_GRACE:true || return
  wait_answer "http://$REG/v2/" 200 120
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
summary
