#!/usr/bin/env bash
# The web UI in a real browser: Debian's chromium driven by playwright-core (e2e/ui.mjs) against
# `npm start` with token auth on. Pushes an image (a label holding <script>), a multi-arch index,
# a private image and a signature (a referrer with a subject) with skopeo and curl, then browses
# as anonymous, signs in, deletes a tag, signs out. Screenshots go to e2e/screenshots/ (git-ignored).
#
#   bash e2e/ui.sh          E2E_PORT (default 8850), E2E_KEEP=1 keeps the work dir
#
# One line per step, `PASS name` or `FAIL name: reason`; exit status non-zero when anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"

PORT=${E2E_PORT:-8850}
REGISTRY=localhost:$PORT
BASE=http://$REGISTRY
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-ui.XXXXXX")
SHOTS=$ROOT/e2e/screenshots
REG_PID=
ADMIN=admin ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
READER=reader READER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
mkdir -p "$WORK/logs" "$WORK/tmp" "$SHOTS"
export TMPDIR=$WORK/tmp

. "$ROOT/e2e/lib.sh"
STEP_REASON_LINES=3 STEP_REASON_CHARS=600

install_tools() { install_missing chromium skopeo jq curl setsid:util-linux; }

start_registry() {
  local admin_hash reader_hash rules
  admin_hash=$(cd "$ROOT" && printf %s "$ADMIN_PASSWORD" | node scripts/hash-password.mjs --iterations 10000)
  reader_hash=$(cd "$ROOT" && printf %s "$READER_PASSWORD" | node scripts/hash-password.mjs --iterations 10000)
  # admin: everything and the catalog; reader: pulls ui/pub/* only; anonymous: pulls ui/pub/*.
  rules='[{"repos":"*","users":["admin"],"actions":["pull","push","delete"]},{"catalog":["admin"]},'
  rules+='{"repos":"ui/pub/*","users":["reader"],"actions":["pull"],"anonymous":["pull"]}]'
  npm_start "$PORT" "$WORK/state" --var AUTH_MODE:token --var "AUTH_TOKEN_SECRET:$(head -c 36 /dev/urandom | base64)" \
    --var "AUTH_USERS:{\"admin\":\"$admin_hash\",\"reader\":\"$reader_hash\"}" --var "AUTH_RULES:$rules" || return
  wait_answer "$BASE/v2/" 401
}

sk() { skopeo --policy "$WORK/policy.json" "$@"; }
# push LAYOUT TAG REPO:TAG [skopeo flags]
push() { sk copy --dest-tls-verify=false --dest-creds "$ADMIN:$ADMIN_PASSWORD" "${@:4}" "oci:$1:$2" "docker://$REGISTRY/$3"; }

# An image whose config has labels (one of them markup), ports, entrypoint and history.
build_app() {
  local dir=$WORK/src/app l1 l2 d1 s1 i1 d2 s2 i2 cfg cd cs m
  oci_init "$dir"
  random_tree "$WORK/tree/a1" bin.dat 300000
  random_tree "$WORK/tree/a2" lib.dat 900000
  l1=$(oci_layer "$dir" "$WORK/tree/a1") && l2=$(oci_layer "$dir" "$WORK/tree/a2") || return 1
  read -r d1 s1 i1 <<<"$l1"
  read -r d2 s2 i2 <<<"$l2"
  cfg=$(mktemp "$dir/config.XXXXXX")
  jq -cn --arg i1 "$i1" --arg i2 "$i2" '{
    created: "2026-11-30T12:00:00Z", architecture: "amd64", os: "linux",
    config: {Entrypoint: ["/bin/app"], Cmd: ["--serve"], ExposedPorts: {"8080/tcp": {}},
      Labels: {"org.opencontainers.image.title": "ui test app", "evil": "<script>window.__pwned = 1</script><b>bold</b>"}},
    rootfs: {type: "layers", diff_ids: [$i1, $i2]},
    history: [{created: "2026-11-30T11:00:00Z", created_by: "COPY bin.dat /"}, {created: "2026-11-30T11:30:00Z", created_by: "COPY lib.dat /lib"},
      {created: "2026-11-30T12:00:00Z", created_by: "ENTRYPOINT [\"/bin/app\"]", empty_layer: true}]}' | tr -d '\n' >"$cfg"
  read -r cd cs <<<"$(oci_blob "$dir" "$cfg")"
  m=$(mktemp "$dir/manifest.XXXXXX")
  jq -cn --arg cd "$cd" --argjson cs "$cs" --arg d1 "$d1" --argjson s1 "$s1" --arg d2 "$d2" --argjson s2 "$s2" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d1, size: $s1},
             {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d2, size: $s2}]}' | tr -d '\n' >"$m"
  m=$(oci_blob "$dir" "$m")
  oci_tag "$dir" application/vnd.oci.image.manifest.v1+json "$m" v1
  oci_tag "$dir" application/vnd.oci.image.manifest.v1+json "$m" v2
  APP_DIGEST=${m% *}
}

build_multi() {
  local dir=$WORK/src/multi l amd arm idx
  oci_init "$dir"
  random_tree "$WORK/tree/amd64" amd64.dat 200000
  random_tree "$WORK/tree/arm64" arm64.dat 200000
  l=$(oci_layer "$dir" "$WORK/tree/amd64") && amd=$(oci_image "$dir" amd64 "$l") || return 1
  l=$(oci_layer "$dir" "$WORK/tree/arm64") && arm=$(oci_image "$dir" arm64 "$l") || return 1
  idx=$(oci_index "$dir" "$amd amd64" "$arm arm64") || return 1
  oci_tag "$dir" application/vnd.oci.image.index.v1+json "$idx" latest
  ARM64_DIGEST=${arm% *}
}

push_images() {
  printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
  build_app && build_multi || return 1
  push "$WORK/src/app" v1 ui/pub/app:v1 && push "$WORK/src/app" v2 ui/pub/app:v2 \
    && push "$WORK/src/multi" latest ui/pub/multi:latest --all && push "$WORK/src/app" v1 ui/secret/app:v1
}

# A signature: an artifact manifest (one blob, the empty config) whose subject is the app image.
push_signature() {
  local auth=(-u "$ADMIN:$ADMIN_PASSWORD") sig=$WORK/tmp/sig.json empty='{}' sd ed m code
  printf '{"critical":{"image":{"docker-manifest-digest":"%s"}}}' "$APP_DIGEST" >"$sig"
  sd=sha256:$(sha256sum "$sig" | cut -d' ' -f1)
  ed=sha256:$(printf %s "$empty" | sha256sum | cut -d' ' -f1)
  code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "@$sig" "$BASE/v2/ui/pub/app/blobs/uploads/?digest=$sd")
  [ "$code" = 201 ] || fail "signature blob: $code" || return
  code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "$empty" "$BASE/v2/ui/pub/app/blobs/uploads/?digest=$ed")
  [ "$code" = 201 ] || fail "empty config: $code" || return
  m=$(jq -cn --arg sd "$sd" --argjson ss "$(stat -c %s "$sig")" --arg ed "$ed" --arg subject "$APP_DIGEST" \
    --argjson size "$(jq '.manifests[0].size' "$WORK/src/app/index.json")" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/vnd.dev.cosign.simplesigning.v1+json",
    config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $ed, size: 2},
    layers: [{mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", digest: $sd, size: $ss}],
    subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $subject, size: $size},
    annotations: {"dev.sigstore.cosign/signer": "<img src=x onerror=alert(1)>ci"}}')
  SIG_DIGEST=sha256:$(printf %s "$m" | sha256sum | cut -d' ' -f1)
  code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "$m" "$BASE/v2/ui/pub/app/manifests/$SIG_DIGEST")
  [ "$code" = 201 ] || fail "signature manifest: $code" || return
  echo "signature $SIG_DIGEST"
}

# The API's catalog for a signed-in user without the catalog right: what it may pull, not 403.
catalog_filtered() {
  local body
  body=$(curl -s -u "$READER:$READER_PASSWORD" "$BASE/v2/_catalog")
  echo "$body"
  [ "$(jq -c '.repositories' <<<"$body")" = '["ui/pub/app","ui/pub/multi"]' ] || fail "reader's catalog: $body"
}

# Garbage collector reports for the storage chart, written into the local R2 as the collector
# writes them (CONTRACTS 3), before the registry starts: workerd does not see objects another
# process adds to its open local R2. One wrangler process for all of them (~14 s).
seed_reports() {
  local i id kept r list='[]'
  for i in 1 2 3 4; do
    id=2026110${i}T030000Z-ui$i kept=$((9000000000 - i * 1500000000 + (i % 2) * 700000000))
    r=$WORK/tmp/report-$i.json
    jq -cn --arg id "$id" --arg at "2026-11-0${i}T03:00:00Z" --argjson kept "$kept" '{id: $id, started: $at, finished: $at,
      dryRun: false, untagged: false, repo: null, repositories: {},
      totals: {manifests: 3, links: 5, blobs: 7, uploads: 1, bytes: 1200000000}, kept: {blobs: 900, bytes: $kept}}' >"$r"
    list=$(jq -c --arg key "_registry/gc/$id.json" --arg file "$r" '. + [{key: $key, file: $file}]' <<<"$list")
  done
  echo "$list" >"$WORK/tmp/reports.json"
  cd "$ROOT" && WRANGLER_SEND_METRICS=false npx wrangler r2 bulk put edge-registry-blobs --filename "$WORK/tmp/reports.json" \
    --content-type application/json --local --persist-to "$WORK/state" --force
}

browser() {
  cd "$ROOT" && BASE=$BASE SHOTS=$SHOTS ADMIN=$ADMIN ADMIN_PASSWORD=$ADMIN_PASSWORD APP_DIGEST=$APP_DIGEST \
    ARM64_DIGEST=$ARM64_DIGEST SIG_DIGEST=$SIG_DIGEST USER_DATA_DIR=$WORK/chromium node e2e/ui.mjs
}

STARTED=$(date +%s)
step install-tools install_tools || { summary; exit 1; }
step seed-gc-reports seed_reports
step registry-start start_registry || { tail -n 20 "$WORK/registry.log"; summary; exit 1; }
step push-images push_images && step push-signature push_signature && step catalog-filtered catalog_filtered
[ $FAILED -eq 0 ] && { step browser browser; cat "$WORK/logs/browser.log" | sed 's/^/  /'; }
echo "# screenshots in $SHOTS; total $(($(date +%s) - STARTED)) s"
summary
