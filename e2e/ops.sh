#!/usr/bin/env bash
# End-to-end operations (docs/operating.md) against `npm start` with token auth:
# - /_health and X-Request-Id;
# - the request log: a signed-in push (skopeo, and curl step by step) leaves one line per request
#   with who, what and how it went, and no password, token, upload state or secret anywhere in it;
# - sign-in throttling: wrong passwords from one address reach 429 TOOMANYREQUESTS with
#   Retry-After; the mark holds whatever Host the next attempt names; the right password from
#   another address (::1) still signs in; then what docker, podman and skopeo print on `login`
#   (kept in the step logs, quoted in docs/operating.md);
# - npm start's front: a client's CF-Ray is not the request id; odd request targets are 400, not 500.
#
#   bash e2e/ops.sh      Env: E2E_PORT (default 8880), E2E_KEEP=1 (keep the work dir)
#
# One line per step, `PASS name` or `FAIL name: reason`, then `N passed, M failed`.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"
PORT=${E2E_PORT:-8880}
REG=localhost:$PORT
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-ops.XXXXXX")
REPO=ops/app$RANDOM
PASSWORD=ops-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
SECRET=$(head -c 36 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
DOCKER_PID=
mkdir -p "$WORK/tmp" "$WORK/podman/root" "$WORK/podman/runroot" "$WORK/podman/tmp" "$WORK/docker/config"
export TMPDIR=$WORK/tmp REGISTRY_AUTH_FILE=$WORK/auth.json DOCKER_CONFIG=$WORK/docker/config
printf '{"auths":{}}' >"$REGISTRY_AUTH_FILE"
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
. "$ROOT/e2e/lib.sh"
STEP_REASON_CHARS=300
STEP_REASON_LINES=2

sk() { skopeo --policy "$WORK/policy.json" "$@"; }
pm() {
  podman --root "$WORK/podman/root" --runroot "$WORK/podman/runroot" --tmpdir "$WORK/podman/tmp" \
    --storage-driver vfs --events-backend none --cgroup-manager cgroupfs "$@"
}
dk() { DOCKER_HOST=unix://$WORK/docker/sock docker "$@"; }

cleanup() {
  stop_registry
  stop_session "$DOCKER_PID"
  remove_work
}

tools() { install_missing skopeo podman jq curl dockerd:docker.io setsid:util-linux; }

start() {
  local hash
  hash=$(cd "$ROOT" && printf %s "$PASSWORD" | npm run -s hash-password -- alice --iterations 1000 2>/dev/null | sed -E "s/^AUTH_USERS='(.*)'$/\1/") || return
  [ -n "$hash" ] || fail "hash-password printed nothing" || return
  npm_start "$PORT" "$WORK/state" --var AUTH_MODE:token --var "AUTH_TOKEN_SECRET:$SECRET" --var "AUTH_USERS:$hash" \
    --var 'AUTH_RULES:[{"repos":"ops/*","users":["alice"],"actions":["pull","push"]}]' || return
  wait_answer "http://$REG/v2/" 401 120
}

# The registry log's request lines (wrangler dev prints each logged object over several lines,
# `{` to `}`), one per output line, so grep can match several fields of one request.
request_lines() { awk '/^\{$/ { block = ""; inside = 1 } inside { block = block " " $0 } /^\}$/ && inside { inside = 0; if (block ~ /event: .request./) print block }' "$WORK/registry.log"; }

# log_line PATTERN...: some request line matches every PATTERN (extended regexps), within 5 s.
log_line() {
  local i p lines
  for i in $(seq 1 50); do
    lines=$(request_lines)
    for p in "$@"; do lines=$(grep -E -- "$p" <<<"$lines"); done
    [ -n "$lines" ] && { head -n 1 <<<"$lines" | tr -s ' '; return 0; }
    sleep 0.1
  done
  fail "no request line matches: $*"
}

health() {
  local body
  body=$(curl -s -D "$WORK/health.headers" "http://$REG/_health")
  echo "$body"
  [ "$body" = '{"r2":"ok","kv":"ok","settings":"ok"}' ] || fail "/_health answered $body" || return
  grep -qi '^x-request-id: [0-9a-f]\{16\}-LOCAL' "$WORK/health.headers" || fail "no X-Request-Id on /_health"
}

request_id() {
  local id
  id=$(curl -s -D - -o /dev/null "http://$REG/v2/$REPO/manifests/none" | tr -d '\r' | awk 'tolower($1) == "x-request-id:" { print $2 }')
  [ -n "$id" ] || fail "no X-Request-Id" || return
  log_line "requestId: '$id'" "status: 401" "code: 'UNAUTHORIZED'" "route: '/v2/:name\+/manifests/:reference'"
}

# npm start's front: a client's own CF-Ray never becomes the request id (Cloudflare sets it, the
# front drops it); an absolute-form target is served as its path, other targets are 400, never 500.
front_targets() {
  local id c
  id=$(curl -s -D - -o /dev/null -H 'CF-Ray: 0123456789abcdef-FRA' "http://$REG/v2/" | tr -d '\r' | awk 'tolower($1) == "x-request-id:" { print $2 }')
  [[ $id == *-LOCAL ]] || fail "the client's CF-Ray became the request id: $id" || return
  c=$(curl -s -o "$WORK/target.json" -w '%{http_code}' --request-target "http://$REG/v2/" "http://$REG/")
  [ "$c" = 401 ] && jq -e '.errors[0].code == "UNAUTHORIZED"' "$WORK/target.json" >/dev/null || fail "an absolute-form /v2/ answered $c: $(head -c 200 "$WORK/target.json")" || return
  c=$(curl -s -o "$WORK/target.json" -w '%{http_code}' -X OPTIONS --request-target '*' "http://$REG/")
  [ "$c" = 400 ] && jq -e '.errors[0].code == "BAD_REQUEST"' "$WORK/target.json" >/dev/null || fail "OPTIONS * answered $c: $(head -c 200 "$WORK/target.json")" || return
  echo "CF-Ray dropped ($id); absolute-form served as its path; OPTIONS * 400"
}

build() {
  oci_init "$WORK/img"
  random_tree "$WORK/tree" data.bin 300000
  local l m
  l=$(oci_layer "$WORK/img" "$WORK/tree") && m=$(oci_image "$WORK/img" amd64 "$l") || return 1
  oci_tag "$WORK/img" application/vnd.oci.image.manifest.v1+json "$m" v1
  LAYER=$WORK/img/blobs/sha256/$(cut -d' ' -f1 <<<"${l#sha256:}")
}

push_skopeo() {
  sk copy --dest-tls-verify=false --dest-creds "alice:$PASSWORD" "oci:$WORK/img:v1" "docker://$REG/$REPO:v1" || return
  log_line "method: 'PUT'" "route: '/v2/:name\+/manifests/:reference'" "repository: '$REPO'" "reference: 'v1'" "status: 201" "identity: 'alice'"
}

# A push by hand: the token, the upload Location (with its _state) and every reply are known here,
# so the log can be searched for each of them.
push_curl() {
  local token location digest size
  token=$(curl -sf -u "alice:$PASSWORD" "http://$REG/token?service=$REG&scope=repository:$REPO:pull,push" | jq -r .token) || return
  [ -n "$token" ] && echo "$token" >"$WORK/token" || fail "no token" || return
  location=$(curl -s -D - -o /dev/null -X POST -H "Authorization: Bearer $token" "http://$REG/v2/$REPO/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  [[ $location == *_state=* ]] || fail "no upload state in $location" || return
  echo "$location" >"$WORK/locations"
  # Chunked, no Content-Length: the log counts the bytes as they are read.
  location=$(curl -s -D - -o /dev/null -X PATCH -H "Authorization: Bearer $token" -H 'Transfer-Encoding: chunked' \
    --data-binary "@$LAYER" "http://$REG$location" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  echo "$location" >>"$WORK/locations"
  digest=sha256:$(sha256sum "$LAYER" | cut -d' ' -f1)
  size=$(stat -c %s "$LAYER")
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $token" "http://$REG$location&digest=$digest")" = 201 ] || fail "PUT did not answer 201" || return
  log_line "method: 'PATCH'" "repository: '$REPO'" "status: 202" "bytesIn: $size," "identity: 'alice'" || return
  log_line "method: 'PUT'" "route: '/v2/:name\+/blobs/uploads/:uuid'" "status: 201" "identity: 'alice'"
}

pull_anonymous_refused() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/$REPO/manifests/v1")" = 401 ] || fail "anonymous pull was not refused" || return
  log_line "method: 'GET'" "status: 401" "identity: 'anonymous'" "code: 'UNAUTHORIZED'"
}

# What the worker logged: everything after `npm start` said it was ready (before it, npm echoes
# the command line with its --var settings, this script's own doing).
worker_log() { sed -n '/registry ready on/,$p' "$WORK/registry.log"; }

no_secrets() {
  local s found=0 state
  worker_log >"$WORK/worker.log"
  for s in "$PASSWORD" "$SECRET" "$(cat "$WORK/token")" "$(cut -d. -f3 "$WORK/token")"; do
    grep -qF -- "$s" "$WORK/worker.log" && { echo "found a secret (${#s} characters)"; found=1; }
  done
  while read -r state; do
    state=${state##*_state=}
    state=${state%%&*}
    grep -qF -- "$state" "$WORK/worker.log" && { echo "found an upload state"; found=1; }
  done <"$WORK/locations"
  grep -q '_state' "$WORK/worker.log" && { echo "found _state"; found=1; }
  [ "$found" = 0 ] || fail "the log holds a secret" || return
  echo "$(request_lines | wc -l) request lines, none with the password, the token secret, the token or an upload state"
}

# Wrong passwords from this host (127.0.0.1) until the 429: the limit is SIGNIN_FAILURES_BY_ADDRESS (10 a minute).
wrong_passwords() {
  local i code statuses=
  # wrangler dev counts in fixed minutes: start well inside one, so no count restarts mid-run.
  [ "$((10#$(date +%S)))" -lt 55 ] || sleep $((61 - 10#$(date +%S)))
  for i in $(seq 1 12); do
    code=$(curl -s -D "$WORK/last.headers" -o "$WORK/last.body" -w '%{http_code}' -u "alice:wrong-$i" "http://$REG/token?scope=repository:$REPO:pull")
    statuses="$statuses $code"
  done
  echo "statuses:$statuses"
  [ "$statuses" = "$(printf ' 401%.0s' $(seq 1 10)) 429 429" ] || fail "statuses:$statuses" || return
  grep -qi '^retry-after: [0-9]' "$WORK/last.headers" || fail "no Retry-After" || return
  jq -e '.errors[0].code == "TOOMANYREQUESTS"' "$WORK/last.body" >/dev/null || fail "body $(cat "$WORK/last.body")" || return
  cat "$WORK/last.body"; echo
  log_line "route: '/token'" "status: 429" "code: 'TOOMANYREQUESTS'" "throttled: 'signin'" "signIn: \{ user: 'alice', outcome: 'throttled' \}"
}

# The throttled address tries the right password under other names of this registry (any Host
# reaches npm start): still 429, checked against the same mark.
mark_holds_across_hosts() {
  local host c
  for host in "other.localhost:$PORT" "127.0.0.1:$PORT" "LOCALHOST.:$PORT"; do
    c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -u "alice:$PASSWORD" "http://$REG/token?scope=repository:$REPO:pull")
    [ "$c" = 429 ] || fail "the right password with Host $host answered $c, not 429" || return
  done
  echo "429 under every Host"
}

# CLIENT login with the right password, from the throttled address: refused; prints what it says.
login_throttled() {
  local out
  case $1 in
    skopeo) out=$(sk login --tls-verify=false -u alice -p "$PASSWORD" "$REG" 2>&1) ;;
    podman) out=$(pm login --tls-verify=false -u alice -p "$PASSWORD" "$REG" 2>&1) ;;
    docker) out=$(printf %s "$PASSWORD" | dk login "$REG" -u alice --password-stdin 2>&1) ;;
  esac && { echo "$out"; fail "$1 login succeeded from a throttled address"; return; }
  echo "$1 printed: $out"
  grep -qiE "too ?many ?requests" <<<"$out" || fail "$1 did not say too many requests: $out"
}

start_docker() {
  local d=$WORK/docker i
  mkdir -p "$d/data" "$d/exec"
  (exec setsid dockerd --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" -H "unix://$d/sock") >"$d/log" 2>&1 </dev/null &
  DOCKER_PID=$!
  for i in $(seq 1 60); do dk version >/dev/null 2>&1 && { dk version --format 'docker {{.Client.Version}}, dockerd {{.Server.Version}}'; return 0; }; sleep 0.5; done
  tail -n 5 "$d/log"
  fail "dockerd did not start"
}

# Another address: ::1, which the front also listens on (a CF-Connecting-IP header of the
# client's own is dropped by the front, so it cannot stand for one), while 127.0.0.1 is still throttled.
other_address_signs_in() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "alice:wrong-again" "http://$REG/token?scope=repository:$REPO:pull")
  [ "$code" = 429 ] || fail "127.0.0.1 is no longer throttled ($code): this step would prove nothing" || return
  code=$(curl -sg -o /dev/null -w '%{http_code}' -u "alice:$PASSWORD" "http://[::1]:$PORT/token?scope=repository:$REPO:pull")
  [ "$code" = 200 ] || fail "/token from ::1 answered $code"
}

echo "# work dir $WORK"
step install-tools tools || exit 1
step registry-start start || { summary; exit 1; }
step health health
step request-id-in-reply-and-log request_id
step front-targets front_targets
step build-image build
step push-signed-in-skopeo push_skopeo
step push-signed-in-curl push_curl
step anonymous-pull-refused pull_anonymous_refused
step no-secret-in-log no_secrets
step wrong-passwords-429 wrong_passwords
step mark-holds-across-hosts mark_holds_across_hosts
step other-address-signs-in other_address_signs_in
step skopeo-login-429 login_throttled skopeo
step podman-login-429 login_throttled podman
step dockerd-start start_docker && step docker-login-429 login_throttled docker
summary
