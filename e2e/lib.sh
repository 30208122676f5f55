# Shared plumbing of the end-to-end scripts (sourced by e2e/run.sh, gc.sh, oidc.sh, proxy.sh, …).
#
# Before sourcing, a script sets ROOT and WORK (step logs go to $WORK/logs). Step options:
# STEP_REASON_LINES (log lines in a FAIL reason, default 1), STEP_REASON_CHARS (default 400),
# STEP_TIMED=1 (`PASS name (T s)`, T with STEP_TIME_DECIMALS decimals, default 2). A script may
# define step_skipped NAME (true: the step is not run, nothing printed; e2e/run.sh's E2E_ONLY).
PASSED=0 FAILED=0 TOOK=
mkdir -p "$WORK/logs"

fail() { echo "$*"; return 1; }
note() { echo "# $*"; }

# step NAME COMMAND...: runs it in this shell (so it may set variables), output to its log;
# prints `PASS name` or `FAIL name: <the log's last line>` and counts.
step() {
  local name=$1 t0 rc reason
  shift
  declare -F step_skipped >/dev/null && step_skipped "$name" && return 0
  t0=$(date +%s.%N)
  "$@" >"$WORK/logs/$name.log" 2>&1 </dev/null
  rc=$?
  TOOK=$(awk -v a="$t0" -v b="$(date +%s.%N)" -v d="${STEP_TIME_DECIMALS:-2}" 'BEGIN { printf "%.*f", d, b - a }')
  if [ $rc -eq 0 ]; then
    PASSED=$((PASSED + 1))
    if [ "${STEP_TIMED:-0}" = 1 ]; then echo "PASS $name ($TOOK s)"; else echo "PASS $name"; fi
  else
    FAILED=$((FAILED + 1))
    # Without the long signed upload state clients quote in errors.
    reason=$(grep -v '^[[:space:]]*$' "$WORK/logs/$name.log" | tail -n "${STEP_REASON_LINES:-1}" | tr '\n' ' ' | sed -E 's/ $//; s/_state=[A-Za-z0-9._-]+/_state=…/g' | cut -c1-"${STEP_REASON_CHARS:-400}")
    echo "FAIL $name: ${reason:-exit status $rc}"
  fi
  return $rc
}

# summary: the last line, `N passed, M failed`; its status is non-zero when anything failed.
summary() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# install_missing COMMAND[:PACKAGE]...: apt-get installs the packages of the commands not found.
install_missing() {
  local missing=() t
  for t in "$@"; do command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}"); done
  [ ${#missing[@]} -eq 0 ] && { echo "all present"; return 0; }
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]} and not root: apt-get install -y ${missing[*]}" || return
  export DEBIAN_FRONTEND=noninteractive
  apt-get update && apt-get install -y "${missing[@]}"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# npm_start PORT STATE-DIR [WRANGLER-ARGS...]: `npm start` in its own session (setsid), stdin
# closed, log in $WORK/registry.log (or $NPM_START_LOG); REG_PID is the session. Fails when PORT is taken. wrangler's
# inspector gets PORT+10000: its default (9229) is picked before it is bound, so two registries
# starting at once (parallel e2e runs) could collide on it.
npm_start() {
  local port=$1 state=$2
  shift 2
  port_busy "$port" && { fail "port $port is in use"; return; }
  (cd "$ROOT" && PORT=$port WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false exec setsid npm start -- \
    --persist-to "$state" --inspector-port $((port + 10000)) "$@") >"${NPM_START_LOG:-$WORK/registry.log}" 2>&1 </dev/null &
  REG_PID=$!
  echo "npm start (session $REG_PID) on port $port, log ${NPM_START_LOG:-$WORK/registry.log}"
}

# wait_answer URL CODE [SECONDS]: until URL answers CODE (curl -k); fails early when the
# REG_PID session's leader exits, with the tail of the registry log.
wait_answer() {
  local url=$1 want=$2 t0=$(date +%s) deadline=$(($(date +%s) + ${3:-180}))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(curl -sk -o /dev/null -m 5 -w '%{http_code}' "$url")" = "$want" ] && { echo "$url answers $want after $(($(date +%s) - t0)) s"; return 0; }
    if [ -n "${REG_PID:-}" ] && ! kill -0 "$REG_PID" 2>/dev/null; then tail -n 20 "$WORK/registry.log"; fail "npm start exited"; return; fi
    sleep 1
  done
  tail -n 20 "$WORK/registry.log"
  fail "no $want from $url"
}

# stop_session SID: every process of the session setsid started (npm, node, wrangler, workerd).
stop_session() {
  local sid=$1 i left
  [ -n "$sid" ] || return 0
  kill -TERM -- "-$sid" 2>/dev/null
  for i in $(seq 1 100); do
    left=$(ps -eo pid=,sid= | awk -v s="$sid" '$2 == s { print $1 }')
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  kill -KILL $left 2>/dev/null
}
stop_registry() { stop_session "${REG_PID:-}"; REG_PID=; }

# docs_block FILE MARKER: the ```sh block right after the line holding MARKER in FILE. Documented
# blocks that an e2e script runs as they are (so the docs stay true) are marked this way.
docs_block() {
  awk -v marker="$2" 'index($0, marker) { marked = 1; next }
       marked && !inside && /^```sh$/ { inside = 1; next }
       inside && /^```$/ { exit }
       inside { print }' "$1"
}

# wrangler dev reads .dev.vars from the project root. run_dev_vars_block FILE MARKER runs the
# documented block after MARKER there (stdin passed on), a developer's own .dev.vars kept in the
# work dir meanwhile; restore_dev_vars (cleanup) puts it back. Call it in the script's own shell
# (not in a pipeline or $(…)), or restore_dev_vars never learns there is one to restore.
DEV_VARS=$ROOT/.dev.vars DEV_VARS_WRITTEN=0
run_dev_vars_block() {
  local block
  block=$(docs_block "$1" "$2")
  echo "$block"
  [ -n "$block" ] || fail "$1 has no block after \"$2\"" || return
  if [ -e "$DEV_VARS" ]; then mv "$DEV_VARS" "$WORK/dev.vars.kept" || return; fi
  DEV_VARS_WRITTEN=1
  (cd "$ROOT" && bash -euo pipefail -c "$block")
}
restore_dev_vars() {
  [ "$DEV_VARS_WRITTEN" = 1 ] || return 0
  rm -f "$DEV_VARS"
  if [ -e "$WORK/dev.vars.kept" ]; then mv "$WORK/dev.vars.kept" "$DEV_VARS"; fi
  DEV_VARS_WRITTEN=0
}

# remove_work: the work dir, or keep it with E2E_KEEP=1.
remove_work() {
  if [ "${E2E_KEEP:-0}" = 1 ]; then echo "# kept $WORK" >&2; else chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; fi
}

# On exit (and on INT/TERM) `cleanup` runs: by default it stops the registry and removes the work
# dir; a script that starts more redefines cleanup after sourcing this file.
cleanup() { stop_registry; restore_dev_vars; remove_work; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# same_blobs SRC DST: the two OCI layouts hold the same blobs, byte for byte.
same_blobs() {
  local a b f
  a=$(ls "$1/blobs/sha256" | sort) b=$(ls "$2/blobs/sha256" | sort)
  [ "$a" = "$b" ] || fail "blob sets differ: $(diff <(echo "$a") <(echo "$b") | grep '^[<>]' | head -n 3 | tr '\n' ' ')" || return
  for f in $a; do
    cmp -s "$1/blobs/sha256/$f" "$2/blobs/sha256/$f" || fail "blob sha256:$f differs" || return
  done
  echo "$(echo "$a" | wc -l) blobs identical"
}
