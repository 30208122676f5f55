#!/usr/bin/env bash
# Upload sessions with curl against `npm start` (issues 8, 10 and 18): a re-sent chunk, a stale GET,
# spent Locations, digest-algorithm=sha512, MAX_CHUNK_BYTES and its 413 (also to a client that
# stops sending), a junk upload id.
# Integrity under hostile use (issue 19): a spent Location replayed with a sha512 digest, a
# monolithic POST racing a session close (then GET/DELETE of the Location and a collection), two
# concurrent PATCHes at one offset in both body modes; what small chunks cost (issue 20).
#   bash e2e/uploads.sh          starts `npm start` on E2E_PORT (default 8810), fresh state, stops it
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${E2E_PORT:-8810}
BASE=http://localhost:$PORT
WORK=$(mktemp -d)
LIMIT=52428800 # 50 MiB
. "$ROOT/e2e/lib.sh"

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILED=1; }
# check <what> <expected> <actual>
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi; }

# req <method> <url> [curl args…]: sets STATUS, LOCATION, RANGE, CODE (OCI error code), HDRS, BODY
req() {
  local method=$1 url=$2
  shift 2
  HDRS=$WORK/headers BODY=$WORK/body
  STATUS=$(curl -s -X "$method" -o "$BODY" -D "$HDRS" -w '%{http_code}' "$@" "$url")
  LOCATION=$(grep -i '^location:' "$HDRS" | tail -1 | cut -d' ' -f2- | tr -d '\r')
  RANGE=$(grep -i '^range:' "$HDRS" | tail -1 | cut -d' ' -f2- | tr -d '\r')
  CODE=$(jq -r '.errors[0].code // empty' "$BODY" 2>/dev/null)
}
abs() { case $1 in http*) echo "$1" ;; *) echo "$BASE$1" ;; esac; }

# stalled HEAD BYTES [chunked]: one connection sends the request HEAD (lines joined by CRLF) and
# BYTES zero bytes of body (one chunk when `chunked`), then nothing more; sets STATUS, CODE and
# TOOK (seconds until the answer has come and the connection is closed; 10 s at most, after
# which STATUS is empty: a front that waits for the rest of the body never answers).
stalled() {
  local t0
  t0=$(date +%s.%N)
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || { STATUS=none CODE= TOOK=0; return; }
  {
    printf '%s\r\n\r\n' "$1"
    if [ "${3:-}" = chunked ]; then printf '%x\r\n' "$2"; head -c "$2" /dev/zero; printf '\r\n'; else head -c "$2" /dev/zero; fi
  } >&3
  timeout 10 cat <&3 >"$WORK/stalled"
  exec 3<&-
  TOOK=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  STATUS=$(head -n 1 "$WORK/stalled" | cut -d' ' -f2)
  CODE=$(sed '1,/^\r$/d' "$WORK/stalled" | jq -r '.errors[0].code // empty' 2>/dev/null)
}

{ npm_start "$PORT" "$WORK/state" --var "MAX_CHUNK_BYTES:$LIMIT" --var GC_GRACE_SECONDS:0 --var GC_SETTLE_SECONDS:2 \
  --var GC_TEST_SHORT_GRACE:true && wait_answer "$BASE/v2/" 200; } >"$WORK/start.log" \
  || { cat "$WORK/start.log"; echo "npm start did not answer"; exit 1; }

# Two connections that never complete a request head, one silent, one stopping mid-head: the
# front closes both (15 s for a head); checked at the end, when that time has passed.
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
exec 5<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /v2/ HTTP/1.1\r\nHost: localhost\r\n' >&5
OPENED_AT=$(date +%s)

head -c 3000000 /dev/urandom >"$WORK/blob"
head -c 1000000 "$WORK/blob" >"$WORK/first"
tail -c 2000000 "$WORK/blob" >"$WORK/rest"
DIGEST=sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)
REPO=e2e/uploads-$(date +%s)

echo "— the POST advertises MAX_CHUNK_BYTES"
req POST "$BASE/v2/$REPO/blobs/uploads/"
check "POST opens a session" 202 "$STATUS"
check "OCI-Chunk-Max-Length" "$LIMIT" "$(grep -i '^oci-chunk-max-length:' "$HDRS" | cut -d' ' -f2 | tr -d '\r')"
L0=$(abs "$LOCATION")

echo "— a chunk re-sent with the Location from before it"
req PATCH "$L0" --data-binary @"$WORK/first" -H 'Content-Range: 0-999999' -H 'Content-Type: application/octet-stream'
check "first chunk" "202 0-999999" "$STATUS $RANGE"
L1=$(abs "$LOCATION")
req PATCH "$L0" --data-binary @"$WORK/first" -H 'Content-Range: 0-999999' -H 'Content-Type: application/octet-stream'
check "re-sent: 416 with the true Range" "416 0-999999 RANGE_INVALID" "$STATUS $RANGE $CODE"
req GET "$L0"
check "GET with the POST's Location: the true progress" "204 0-999999" "$STATUS $RANGE"

echo "— bodies over MAX_CHUNK_BYTES (413 DENIED: a code docker and podman do not retry)"
head -c $((LIMIT + 1)) /dev/zero >"$WORK/big"
req PATCH "$L1" --data-binary @"$WORK/big" -H 'Content-Type: application/octet-stream'
check "PATCH with Content-Length over the limit: 413" "413 DENIED" "$STATUS $CODE"
grep -q 'npx edge-registry push' "$BODY" && ok "the 413 says how to push big layers" || bad "the 413 names no tool: $(cat "$BODY")"
req PATCH "$L1" -T - -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' <"$WORK/big"
check "chunked PATCH over the limit: 413" "413 DENIED" "$STATUS $CODE"
P1=${L1#"$BASE"}
# Accept-Encoding as Go clients (docker, skopeo, podman) send it: wrangler dev gzips error answers.
stalled "PATCH $P1 HTTP/1.1"$'\r\n'"Host: localhost:$PORT"$'\r\n'"Accept-Encoding: gzip"$'\r\n'"Content-Length: $((3 * LIMIT))" 65536
check "PATCH declaring 3× the limit, then silent: answered ($TOOK s), not left waiting" "413 DENIED" "$STATUS $CODE"
stalled "PATCH $P1 HTTP/1.1"$'\r\n'"Host: localhost:$PORT"$'\r\n'"Accept-Encoding: gzip"$'\r\n'"Transfer-Encoding: chunked" $((LIMIT + 1)) chunked
check "chunked PATCH one byte past the limit, then silent: answered ($TOOK s)" "413 DENIED" "$STATUS $CODE"
req GET "$L1"
check "the session stays where it was" "204 0-999999" "$STATUS $RANGE"

echo "— the last chunk on the PUT, then every Location is spent"
req PUT "$L1&digest=$DIGEST" --data-binary @"$WORK/rest" -H 'Content-Range: 1000000-2999999' -H 'Content-Type: application/octet-stream'
check "PUT closes" 201 "$STATUS"
for L in "$L0" "$L1"; do
  req GET "$L"; check "GET spent Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
  req PATCH "$L" --data-binary @"$WORK/first" -H 'Content-Type: application/octet-stream'; check "PATCH spent Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
  req PUT "$L&digest=$DIGEST"; check "PUT spent Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
  req DELETE "$L"; check "DELETE spent Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
done
curl -s "$BASE/v2/$REPO/blobs/$DIGEST" -o "$WORK/pulled"
cmp -s "$WORK/blob" "$WORK/pulled" && ok "the blob is served byte for byte" || bad "the blob differs"

echo "— digest-algorithm=sha512"
D512=sha512:$(sha512sum "$WORK/blob" | cut -d' ' -f1)
req POST "$BASE/v2/$REPO/blobs/uploads/?digest-algorithm=sha512"
check "POST ?digest-algorithm=sha512" 202 "$STATUS"
req PATCH "$(abs "$LOCATION")" -T - -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' <"$WORK/blob"
req PUT "$(abs "$LOCATION")&digest=$D512"
check "closed with the sha512 digest" 201 "$STATUS"
curl -s "$BASE/v2/$REPO/blobs/$D512" -o "$WORK/pulled512"
cmp -s "$WORK/blob" "$WORK/pulled512" && ok "served by its sha512 digest" || bad "the sha512 blob differs"
req POST "$BASE/v2/$REPO/blobs/uploads/?digest-algorithm=md5"
check "an unsupported algorithm" "400 DIGEST_INVALID" "$STATUS $CODE"

echo "— an upload id that cannot be one"
STATUS=$(curl -s --path-as-is -o "$WORK/body" -w '%{http_code}' "$BASE/v2/$REPO/blobs/uploads/..")
check "GET …/uploads/.." "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $(jq -r '.errors[0].code' "$WORK/body")"

sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
# served REPO DIGEST FILE: GET of the blob answers FILE's bytes exactly
served() { curl -s "$BASE/v2/$1/blobs/$2" -o "$WORK/served"; cmp -s "$3" "$WORK/served"; }
# push_session REPO FILE: POST, one PATCH with Content-Length; leaves its Location in L
push_session() {
  req POST "$BASE/v2/$1/blobs/uploads/"
  req PATCH "$(abs "$LOCATION")" --data-binary @"$2" -H 'Content-Type: application/octet-stream'
  L=$(abs "$LOCATION")
}
# tag_image REPO LAYER-DIGEST LAYER-SIZE: a config and a manifest naming the layer, tagged v1
tag_image() {
  printf '{"architecture":"amd64","os":"linux","n":"%s"}' "$RANDOM$1" >"$WORK/config.json"
  local cd cs
  cd=$(sha "$WORK/config.json") cs=$(stat -c %s "$WORK/config.json")
  curl -s -o /dev/null -X POST --data-binary @"$WORK/config.json" "$BASE/v2/$1/blobs/uploads/?digest=$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$cd" "$cs" "$2" "$3" >"$WORK/manifest.json"
  curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$WORK/manifest.json" \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' "$BASE/v2/$1/manifests/v1"
}
r2_bytes() { du -sb "$WORK/state" | cut -f1; }

echo "— a spent Location replayed with the other algorithm's digest (issue 19)"
head -c 20222 /dev/urandom >"$WORK/layer"
LD=$(sha "$WORK/layer")
push_session "team-a/x$RANDOM" "$WORK/layer"
S1=$L
req PUT "$S1&digest=$LD"
check "closed with its sha256" 201 "$STATUS"
req PUT "$S1&digest=sha512:$(printf '0%.0s' $(seq 128))"
check "the spent Location replayed with sha512:000…" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
req PUT "$S1&digest=sha512:$(sha512sum "$WORK/layer" | cut -d' ' -f1)"
check "… and with the bytes' own sha512" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
for M in GET DELETE; do req $M "$S1"; check "$M of the spent Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"; done
VICTIM=team-b/victim$RANDOM
push_session "$VICTIM" "$WORK/layer"
req PUT "$L&digest=$LD"
check "a later push of the same bytes elsewhere" 201 "$STATUS"
served "$VICTIM" "$LD" "$WORK/layer" && ok "and it pulls the 20,222 bytes" || bad "the blob lost its bytes: $(stat -c %s "$WORK/served") bytes served"

echo "— a monolithic POST racing a session close of the same blob (issue 19)"
head -c 20971520 /dev/urandom >"$WORK/race"
RD=$(sha "$WORK/race")
MONO=race/mono$RANDOM SESS=race/sess$RANDOM
curl -s -o /dev/null -w '%{http_code}' --limit-rate 4M -X POST --data-binary @"$WORK/race" \
  -H 'Content-Type: application/octet-stream' "$BASE/v2/$MONO/blobs/uploads/?digest=$RD" >"$WORK/mono.status" &
MONO_PID=$!
sleep 1.5 # the POST has looked for the blob (absent) and is streaming it, slowly
req POST "$BASE/v2/$SESS/blobs/uploads/"
L0=$(abs "$LOCATION")
req PUT "$L0&digest=$RD" --data-binary @"$WORK/race" -H 'Content-Type: application/octet-stream'
check "the session's PUT with the whole body, meanwhile" 201 "$STATUS"
wait $MONO_PID
check "the slow monolithic POST" 201 "$(cat "$WORK/mono.status")"
req GET "$L0"
check "GET of the session's Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
req DELETE "$L0"
check "DELETE of the session's Location" "404 BLOB_UPLOAD_UNKNOWN" "$STATUS $CODE"
for R in "$SESS" "$MONO" "$SESS" "$MONO"; do # twice each: the second from the edge cache
  served "$R" "$RD" "$WORK/race" && ok "$R serves the 20 MiB" || bad "$R serves $(stat -c %s "$WORK/served") bytes"
done
check "both repositories tag an image of it" "201 201" "$(tag_image "$SESS" "$RD" 20971520) $(tag_image "$MONO" "$RD" 20971520)"
if (cd "$ROOT" && npm run -s gc -- --url "$BASE" --untagged --json) >"$WORK/gc.json" 2>"$WORK/gc.err"; then
  ok "a collection ran ($(jq -c .totals "$WORK/gc.json"))"
else
  bad "the collection failed: $(tail -2 "$WORK/gc.err")"
fi
for R in "$SESS" "$MONO"; do
  served "$R" "$RD" "$WORK/race" && ok "after it, $R still serves the 20 MiB" || bad "after the collection $R serves $(stat -c %s "$WORK/served") bytes"
done

echo "— two PATCHes at one offset of a session with multipart parts, several runs (issue 19)"
head -c 12582912 /dev/urandom >"$WORK/c1"
for RUN in 1 2 3; do
  for MODE in length chunked; do
    head -c 12582912 /dev/urandom >"$WORK/ca"
    head -c 12582912 /dev/urandom >"$WORK/cb"
    req POST "$BASE/v2/race/par$RANDOM/blobs/uploads/"
    REPO_P=$(echo "$LOCATION" | sed -E 's#^(https?://[^/]+)?/v2/(.+)/blobs/uploads/.*#\2#')
    req PATCH "$(abs "$LOCATION")" --data-binary @"$WORK/c1" -H 'Content-Range: 0-12582911' -H 'Content-Type: application/octet-stream'
    L1=$(abs "$LOCATION")
    PIDS=()
    for X in a b; do
      if [ $MODE = length ]; then
        { curl -s -D "$WORK/h$X" -o /dev/null -X PATCH --data-binary @"$WORK/c$X" -H 'Content-Range: 12582912-25165823' \
          -H 'Content-Type: application/octet-stream' "$L1"; echo $? >"$WORK/e$X"; } &
      else
        { curl -s -D "$WORK/h$X" -o /dev/null -X PATCH -T - -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
          "$L1" <"$WORK/c$X"; echo $? >"$WORK/e$X"; } &
      fi
      PIDS+=($!)
    done
    wait "${PIDS[@]}" # (a bare `wait` would wait for npm start too)
    # The final status line (after "100 Continue"). The loser's claim on the offset fails before
    # its body is in; it is answered 416 once the rest is read and dropped (an answer sent before
    # was lost now and then: 502/503 through wrangler dev, or the connection closed while curl sent).
    status() { local s; s=$(grep '^HTTP/' "$WORK/h$1" | tail -1 | cut -d' ' -f2); [ "$s" = 100 ] || [ -z "$s" ] && s="closed($(cat "$WORK/e$1"))"; echo "$s"; }
    SA=$(status a) SB=$(status b)
    GOT=$(printf '%s\n%s\n' "$SA" "$SB" | sort | tr '\n' ' ' | sed 's/ $//')
    case "$GOT" in "202 416") ok "run $RUN ($MODE): one 202, the other refused ($GOT)" ;;
      *) bad "run $RUN ($MODE): expected one 202 and one 416, got '$GOT'" ;; esac
    W=a; [ "$SB" = 202 ] && W=b
    cat "$WORK/c1" "$WORK/c$W" >"$WORK/whole"
    WL=$(abs "$(grep -i '^location:' "$WORK/h$W" | cut -d' ' -f2- | tr -d '\r')")
    req PUT "$WL&digest=$(sha "$WORK/whole")"
    check "run $RUN ($MODE): the winner's Location closes the blob" 201 "$STATUS"
    served "$REPO_P" "$(sha "$WORK/whole")" "$WORK/whole" || bad "run $RUN ($MODE): the blob differs"
  done
done

echo "— what small chunks cost (issue 20)"
head -c 50331648 /dev/urandom >"$WORK/big" # 48 MiB, under MAX_CHUNK_BYTES
printf 'x' >"$WORK/one"
for MODE in length chunked; do
  TINY=cost/five$RANDOM
  push_session "$TINY" "$WORK/big"
  check "a 48 MiB first write ($MODE)" "202 0-50331647" "$STATUS $RANGE"
  BEFORE=$(r2_bytes)
  PIDS=()
  for I in 1 2 3 4 5; do
    if [ $MODE = length ]; then
      curl -s -o /dev/null -w '%{http_code}\n' -X PATCH --data-binary @"$WORK/one" -H 'Content-Range: 50331648-50331648' \
        -H 'Content-Type: application/octet-stream' -D "$WORK/t$I" "$L" >"$WORK/s$I" &
    else
      curl -s -o /dev/null -w '%{http_code}\n' -X PATCH -T - -H 'Transfer-Encoding: chunked' \
        -H 'Content-Type: application/octet-stream' -D "$WORK/t$I" "$L" <"$WORK/one" >"$WORK/s$I" &
    fi
    PIDS+=($!)
  done
  wait "${PIDS[@]}"
  GREW=$(($(r2_bytes) - BEFORE))
  check "five concurrent 1-byte PATCHes ($MODE): one 202" "202 416 416 416 416" "$(cat "$WORK"/s? | sort | tr '\n' ' ' | sed 's/ $//')"
  # each lands as a piece (one of unknown length is read whole first, being small): never the
  # first write read back and folded into parts once per request
  LIMIT_GREW=1048576
  [ "$GREW" -lt "$LIMIT_GREW" ] && ok "they added $GREW bytes to R2 (under $LIMIT_GREW)" || bad "they added $GREW bytes to R2"
  for I in 1 2 3 4 5; do [ "$(cat "$WORK/s$I")" = 202 ] && WL=$(abs "$(grep -i '^location:' "$WORK/t$I" | cut -d' ' -f2- | tr -d '\r')"); done
  cat "$WORK/big" "$WORK/one" >"$WORK/whole"
  req PUT "$WL&digest=$(sha "$WORK/whole")"
  check "the winner closes the blob ($MODE)" 201 "$STATUS"
  served "$TINY" "$(sha "$WORK/whole")" "$WORK/whole" && ok "served byte for byte" || bad "the blob differs"
done
head -c 10385760 /dev/urandom >"$WORK/tail" # a part less 100,000 bytes
push_session "cost/forty$RANDOM" "$WORK/tail"
FORTY=$(echo "$L" | sed -E 's#^https?://[^/]+/v2/(.+)/blobs/uploads/.*#\1#')
cp "$WORK/tail" "$WORK/whole"
BEFORE=$(r2_bytes)
AT=10385760
for I in $(seq 40); do
  printf '%02x' "$I" | head -c 1 >"$WORK/one"
  req PATCH "$L" --data-binary @"$WORK/one" -H "Content-Range: $AT-$AT" -H 'Content-Type: application/octet-stream'
  [ "$STATUS" = 202 ] || { bad "1-byte PATCH $I: $STATUS $CODE"; break; }
  L=$(abs "$LOCATION") AT=$((AT + 1))
  cat "$WORK/one" >>"$WORK/whole"
done
GREW=$(($(r2_bytes) - BEFORE))
[ "$GREW" -lt 20971520 ] && ok "40 one-byte PATCHes on a 10 MiB tail added $GREW bytes to R2 (under 20 MiB; 400 MiB before)" || bad "40 one-byte PATCHes added $GREW bytes"
req PUT "$L&digest=$(sha "$WORK/whole")"
check "closed" 201 "$STATUS"
served "$FORTY" "$(sha "$WORK/whole")" "$WORK/whole" && ok "served byte for byte" || bad "the blob differs"

echo "— connections that never complete a request head"
left=$((OPENED_AT + 20 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
# closed FD: the front has closed the connection (cat reads to its end; 124: still open).
closed() { timeout 2 cat <&"$1" >/dev/null; [ $? -ne 124 ]; }
closed 4 && ok "a connection that says nothing is closed" || bad "a silent connection is still open after 20 s"
closed 5 && ok "a connection that stops mid-head is closed" || bad "a connection with half a request head is still open after 20 s"

[ $FAILED = 0 ] && echo "e2e/uploads.sh: all passed" || { echo "e2e/uploads.sh: FAILED"; tail -5 "$WORK/registry.log"; }
exit $FAILED
