#!/usr/bin/env bash
# End-to-end events (docs/events.md) against `npm start`: a local receiver (e2e/events-receiver.mjs,
# which verifies every Standard Webhooks signature with the `standardwebhooks` package) behind
# three NOTIFICATIONS endpoints, real Cloudflare Queues under wrangler dev:
#   ok     distribution format, every action (pulls too): sees skopeo's push, pull and delete;
#   flaky  CloudEvents, answers 503 twice then 204: still gets every push, each with its first id;
#   down   always 503, maxRetries 1: its deliveries end in the dead-letter queue and /admin/events.
# PULL_STATS counts skopeo's pulls (and docker's, when dockerd is installed: docker push and pull
# through its own daemon, `E2E_DOCKER=0` skips it).
#
#   bash e2e/events.sh     Env: E2E_PORT (default 8900; the receiver takes E2E_PORT+1), E2E_KEEP=1
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"
PORT=${E2E_PORT:-8900}
RECV_PORT=$((PORT + 1))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-events.XXXXXX")
REG=localhost:$PORT
RECV=http://127.0.0.1:$RECV_PORT
REPO=events/app$RANDOM
export TMPDIR=$WORK/tmp && mkdir -p "$TMPDIR"
. "$ROOT/e2e/lib.sh"
STEP_REASON_CHARS=400
SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
RECV_PID= DOCKERD_PID=
DOCKER_SOCK=$WORK/docker.sock

cleanup() {
  stop_registry
  [ -n "$RECV_PID" ] && stop_session "$RECV_PID"
  [ -n "$DOCKERD_PID" ] && stop_session "$DOCKERD_PID"
  remove_work
}

tools() { install_missing skopeo jq curl node setsid:util-linux; }

receiver() {
  port_busy "$RECV_PORT" && { fail "port $RECV_PORT is in use"; return; }
  (cd "$ROOT" && WEBHOOK_SECRET=$SECRET exec setsid node e2e/events-receiver.mjs "$RECV_PORT" "$WORK/received.jsonl") >"$WORK/receiver.log" 2>&1 </dev/null &
  RECV_PID=$!
  local i
  for i in $(seq 1 50); do curl -sf "$RECV/log" >/dev/null && return 0; sleep 0.2; done
  cat "$WORK/receiver.log"
  fail "the receiver did not start"
}

start() {
  local endpoints secrets
  endpoints=$(jq -cn --arg r "$RECV" '[
    {name: "ok", url: "\($r)/ok", actions: ["push", "pull", "mount", "delete"]},
    {name: "flaky", url: "\($r)/flaky", format: "cloudevents", actions: ["push"]},
    {name: "down", url: "\($r)/down", actions: ["push"], maxRetries: 1}]')
  secrets=$(jq -cn --arg k "$SECRET" '{ok: $k, flaky: $k, down: $k}')
  npm_start "$PORT" "$WORK/state" --var "NOTIFICATIONS:$endpoints" --var "NOTIFICATION_SECRETS:$secrets" --var PULL_STATS:true || return
  wait_answer "http://$REG/v2/" 200 120
}

images() {
  local l m
  oci_init "$WORK/img"
  random_tree "$WORK/tree" data.bin 300000
  l=$(oci_layer "$WORK/img" "$WORK/tree") && m=$(oci_image "$WORK/img" amd64 "$l") || return
  oci_tag "$WORK/img" application/vnd.oci.image.manifest.v1+json "$m" v1
  echo "${m%% *}" >"$WORK/manifest.digest"
}

# received [JQ-FILTER]: what the receiver got, as a JSON list (filtered).
received() { curl -sf "$RECV/log" | jq -c "${1:-.}"; }

# until_true SECONDS JQ-FILTER: until the receiver's log satisfies the filter.
until_true() {
  local deadline=$(($(date +%s) + $1))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(received "$2")" = true ] && return 0
    sleep 1
  done
  return 1
}

push() {
  skopeo copy --dest-tls-verify=false "oci:$WORK/img:v1" "docker://$REG/$REPO:v1" || return
  local digest
  digest=$(cat "$WORK/manifest.digest")
  # ok hears the manifest push with its tag and one push per blob (config, layer), all signed.
  until_true 30 "[.[] | select(.path == \"/ok\" and .body.events[0].action == \"push\")] | length >= 3" \
    || fail "ok got $(received '[.[] | select(.path == "/ok")] | length') deliveries, not the 3 pushes"
  [ "$(received "[.[] | select(.path == \"/ok\") | .body.events[] | select(.target.tag == \"v1\" and .target.digest == \"$digest\" and .target.repository == \"$REPO\" and .action == \"push\" and .actor.name == \"anonymous\" and (.request.useragent | startswith(\"skopeo\")))] | length == 1")" = true ] \
    || fail "no push event for $REPO:v1 ($digest) from skopeo: $(received '[.[] | select(.path == "/ok") | .body.events[] | {action, tag: .target.tag, digest: .target.digest}]')"
  [ "$(received 'all(.[]; .verified)')" = true ] || fail "a delivery failed signature verification"
  [ "$(received '[.[] | select(.path == "/ok") | .contentType] | unique')" = '["application/vnd.docker.distribution.events.v2+json"]' ] || fail "wrong content type"
}

pull() {
  skopeo copy --src-tls-verify=false "docker://$REG/$REPO:v1" "oci:$WORK/pulled:v1" || return
  skopeo copy --src-tls-verify=false "docker://$REG/$REPO@$(cat "$WORK/manifest.digest")" "oci:$WORK/pulled2:v1" || return
  until_true 30 '[.[] | select(.path == "/ok") | .body.events[] | select(.action == "pull")] | length >= 2' \
    || fail "ok got $(received '[.[] | select(.path == "/ok") | .body.events[] | select(.action == "pull")] | length') pull events, not 2"
  [ "$(received '[.[] | select(.path == "/ok") | .body.events[] | select(.action == "pull") | .request.method] | unique')" = '["GET"]' ] || fail "a pull event from a method other than GET"
}

# flaky: every push (config, layer, manifest) delivered in the end, each tried three times under one id.
flaky() {
  until_true 90 '[.[] | select(.path == "/flaky" and .answered == 204)] | length >= 3' \
    || fail "flaky got $(received '[.[] | select(.path == "/flaky" and .answered == 204)] | length') of 3 deliveries through: $(received '[.[] | select(.path == "/flaky") | [.id[0:8], .answered]]')"
  [ "$(received '[.[] | select(.path == "/flaky")] | group_by(.id) | map([.[].answered]) | unique')" = '[[503,503,204]]' ] \
    || fail "not 503, 503, 204 per id: $(received '[.[] | select(.path == "/flaky")] | group_by(.id) | map([.[].answered])')"
  [ "$(received '[.[] | select(.path == "/flaky" and .answered == 204) | .id == .body.id] | all')" = true ] || fail "webhook-id is not the CloudEvent id"
  [ "$(received '[.[] | select(.path == "/flaky" and .answered == 204) | .body.type] | sort')" = '["dev.edge-registry.blob.pushed","dev.edge-registry.blob.pushed","dev.edge-registry.image.pushed"]' ] \
    || fail "types: $(received '[.[] | select(.path == "/flaky") | .body.type]')"
}

# down: two attempts each (maxRetries 1), then the dead-letter queue; /admin/events counts them.
down() {
  local deadline=$(($(date +%s) + 60)) dead
  while [ "$(date +%s)" -lt "$deadline" ]; do
    dead=$(curl -sf "http://$REG/admin/events" | jq '.endpoints[] | select(.name == "down") | .deadLetters')
    [ "${dead:-0}" -ge 3 ] && break
    sleep 1
  done
  [ "${dead:-0}" -ge 3 ] || fail "down: $dead dead letters, not 3: $(curl -sf "http://$REG/admin/events" | jq -c '.endpoints[] | select(.name == "down")')"
  [ "$(received '[.[] | select(.path == "/down")] | group_by(.id) | map(length) | unique')" = '[2]' ] || fail "down was not tried exactly twice per delivery"
  [ "$(grep -c '"message":"dead letter","endpoint":"down"' "$WORK/registry.log")" -ge 3 ] || fail "the registry log shows no send to the dead-letter queue"
  curl -sf "http://$REG/admin/events" | jq -e '.endpoints[] | select(.name == "ok") | .deadLetters == 0 and (.deliveries | length) >= 5 and all(.deliveries[]; .status == 204)' >/dev/null \
    || fail "ok's deliveries in /admin/events: $(curl -sf "http://$REG/admin/events" | jq -c '.endpoints[] | select(.name == "ok")')"
  # Whole pages into variables: `curl | grep -q` fails under pipefail when grep stops reading first.
  local page
  page=$(curl -sf "http://$REG/events") && [[ $page == *'<h2 id="ep-down">down</h2>'* ]] || fail "the web UI's Events page does not show the endpoint"
}

# pulls_of [REPO]: the pull count of the repository's first manifest (/admin/stats).
pulls_of() { curl -sf "http://$REG/admin/stats/${1:-$REPO}" | jq '[.manifests[].pulls] | add'; }

stats() {
  local deadline=$(($(date +%s) + 60)) n
  while [ "$(date +%s)" -lt "$deadline" ]; do
    n=$(pulls_of) && [ "${n:-0}" -ge 2 ] && break
    sleep 2
  done
  [ "${n:-0}" -eq 2 ] || fail "PULL_STATS counted $n pulls of 2 skopeo pulls: $(curl -sf "http://$REG/admin/stats/$REPO")"
  curl -sf "http://$REG/admin/stats/$REPO" | jq -e --arg d "$(cat "$WORK/manifest.digest")" \
    '.repository != null and (.manifests[] | select(.digest == $d) | .tags == ["v1"] and (.lastPulled | fromdate) > (now - 600))' >/dev/null \
    || fail "stats shape: $(curl -sf "http://$REG/admin/stats/$REPO")"
  local page
  page=$(curl -sf "http://$REG/r/$REPO") && [[ $page == *'Last pulled'* ]] || fail "the repository page shows no pulls"
}

delete() {
  skopeo delete --tls-verify=false "docker://$REG/$REPO@$(cat "$WORK/manifest.digest")" || return
  until_true 30 "[.[] | select(.path == \"/ok\") | .body.events[] | select(.action == \"delete\" and .target.digest == \"$(cat "$WORK/manifest.digest")\" and .target.tags == [\"v1\"])] | length == 1" \
    || fail "no delete event with its tag: $(received '[.[] | select(.path == "/ok") | .body.events[] | select(.action == "delete")]')"
}

docker_available() { [ "${E2E_DOCKER:-1}" != 0 ] && command -v dockerd >/dev/null && command -v docker >/dev/null && [ "$(id -u)" = 0 ]; }

dockerd_start() {
  (exec setsid dockerd --storage-driver vfs --iptables=false --ip6tables=false --bridge=none --data-root "$WORK/docker" \
    --exec-root "$WORK/docker-exec" --pidfile "$WORK/docker.pid" -H "unix://$DOCKER_SOCK") >"$WORK/dockerd.log" 2>&1 </dev/null &
  DOCKERD_PID=$!
  local i
  for i in $(seq 1 60); do DOCKER_HOST=unix://$DOCKER_SOCK docker info >/dev/null 2>&1 && return 0; sleep 1; done
  tail -n 5 "$WORK/dockerd.log"
  fail "dockerd did not start"
}

docker_push_pull() {
  local d=(env DOCKER_HOST=unix://$DOCKER_SOCK docker) before after
  skopeo copy "oci:$WORK/img:v1" "docker-archive:$WORK/img.tar:$REG/$REPO-docker:v1" || return
  "${d[@]}" load -i "$WORK/img.tar" || return
  "${d[@]}" push "$REG/$REPO-docker:v1" || return
  until_true 30 "[.[] | select(.path == \"/ok\") | .body.events[] | select(.action == \"push\" and .target.repository == \"$REPO-docker\" and .target.tag == \"v1\" and (.request.useragent | test(\"docker\")))] | length == 1" \
    || fail "no push event from docker: $(received "[.[] | select(.path == \"/ok\") | .body.events[] | select(.target.repository == \"$REPO-docker\") | {action, tag: .target.tag, ua: .request.useragent}]")"
  "${d[@]}" rmi "$REG/$REPO-docker:v1" >/dev/null || return
  "${d[@]}" pull "$REG/$REPO-docker:v1" || return
  local deadline=$(($(date +%s) + 60))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    after=$(pulls_of "$REPO-docker") && [ "${after:-0}" -ge 1 ] && break
    sleep 2
  done
  [ "${after:-0}" -ge 1 ] || fail "PULL_STATS counted no docker pull: $(curl -sf "http://$REG/admin/stats/$REPO-docker")"
  echo "docker pull counted $after"
}

step tools tools && step receiver receiver && step registry-start start && step images images \
  && step push push && step pull pull && step stats stats && step flaky-retried flaky && step down-dead-lettered down \
  && step delete delete
if docker_available; then
  step dockerd-start dockerd_start && step docker-push-pull docker_push_pull
else
  note "docker steps skipped (no dockerd, not root, or E2E_DOCKER=0)"
fi
summary
