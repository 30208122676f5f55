#!/usr/bin/env bash
# Upload sessions with curl against `npm start` (issues 8, 10 and 18): a re-sent chunk, a stale GET,
# spent Locations, digest-algorithm=sha512, MAX_CHUNK_BYTES and its 413 (also to a client that
# stops sending), a junk upload id.
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

{ npm_start "$PORT" "$WORK/state" --var "MAX_CHUNK_BYTES:$LIMIT" && wait_answer "$BASE/v2/" 200; } >"$WORK/start.log" \
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

echo "— connections that never complete a request head"
left=$((OPENED_AT + 20 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
# closed FD: the front has closed the connection (cat reads to its end; 124: still open).
closed() { timeout 2 cat <&"$1" >/dev/null; [ $? -ne 124 ]; }
closed 4 && ok "a connection that says nothing is closed" || bad "a silent connection is still open after 20 s"
closed 5 && ok "a connection that stops mid-head is closed" || bad "a connection with half a request head is still open after 20 s"

[ $FAILED = 0 ] && echo "e2e/uploads.sh: all passed" || { echo "e2e/uploads.sh: FAILED"; tail -5 "$WORK/registry.log"; }
exit $FAILED
