#!/usr/bin/env bash
# End-to-end: keyless CI push. A local OIDC issuer (e2e/oidc-issuer.mjs: discovery, JWKS, and a
# GitHub-Actions-shaped token endpoint) and `npm start` with token auth trusting it, configured by
# running the `.dev.vars` block of docs/authentication.md ("Trying it locally") as it is: its
# `${repository}` written plainly inside single quotes; skopeo and podman sign in as user `oidc`
# with an identity token as password, push and pull.
#
#   bash e2e/oidc.sh        (E2E_PORT: registry port, default 8860; E2E_KEEP=1 keeps the work dir.
#                            The issuer listens on 8865 and the audience is https://localhost:8787,
#                            as the documented block says; OIDC_PORT moves the issuer, and then
#                            its port in the written .dev.vars, for parallel runs)
#
# One line per step, `PASS name` or `FAIL name: reason`, then `N passed, M failed`.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/e2e/images.sh"
PORT=${E2E_PORT:-8860}
OIDC_PORT=${OIDC_PORT:-8865}
REGISTRY=localhost:$PORT
ISSUER=http://127.0.0.1:$OIDC_PORT
AUDIENCE=https://localhost:8787
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-registry-oidc.XXXXXX")
REG_PID= ISS_PID= STARTED_AT=$(date +%s)
mkdir -p "$WORK/logs" "$WORK/tmp" "$WORK/podman/root" "$WORK/podman/runroot" "$WORK/podman/tmp"
export REGISTRY_AUTH_FILE=$WORK/auth.json TMPDIR=$WORK/tmp
printf '{"auths":{}}' >"$REGISTRY_AUTH_FILE"
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"

. "$ROOT/e2e/lib.sh"
STEP_REASON_CHARS=300
sk() { skopeo --policy "$WORK/policy.json" "$@"; }
pm() {
  podman --root "$WORK/podman/root" --runroot "$WORK/podman/runroot" --tmpdir "$WORK/podman/tmp" \
    --storage-driver vfs --events-backend none --cgroup-manager cgroupfs "$@"
}

cleanup() {
  stop_registry
  stop_session "$ISS_PID"
  restore_dev_vars
  remove_work
}

install_tools() { install_missing skopeo podman jq curl setsid:util-linux; }

start_issuer() {
  port_busy "$OIDC_PORT" && { fail "port $OIDC_PORT is in use"; return; }
  (cd "$ROOT" && OIDC_PORT=$OIDC_PORT exec setsid node e2e/oidc-issuer.mjs) >"$WORK/issuer.log" 2>&1 &
  ISS_PID=$!
  for _ in $(seq 1 100); do grep -q 'issuer ready' "$WORK/issuer.log" && return 0; sleep 0.1; done
  fail "issuer did not start: $(tail -n 1 "$WORK/issuer.log")"
}

# The rules under test, from the documented block: main of acme/app pushes to ci/<its repository>;
# every branch of acme pulls ci/acme/*.
write_dev_vars() {
  run_dev_vars_block "$ROOT/docs/authentication.md" '<!-- e2e/oidc.sh runs the next block' || fail "the documented block failed" || return
  if [ "$OIDC_PORT" != 8865 ]; then
    sed -i "s|http://127.0.0.1:8865|$ISSUER|" "$DEV_VARS" && note "OIDC_PORT=$OIDC_PORT: the issuer's port in .dev.vars changed to it"
  fi
  grep -qF '"repos":"ci/${repository}"' "$DEV_VARS" || fail ".dev.vars does not hold \${repository} as written"
}

start_registry() {
  npm_start "$PORT" "$WORK/state" || return
  wait_answer "http://$REGISTRY/v2/" 401 120
}

# id_token CLAIM=VALUE...: a token for the registry's audience, as a CI job fetches one.
id_token() {
  local args=(--data-urlencode "audience=${AUDIENCE_OVERRIDE:-$AUDIENCE}") kv
  for kv in "$@"; do args+=(--data-urlencode "$kv"); done
  curl -sf -G "${args[@]}" "$ISSUER/token" | jq -r .value
}
main_token() { id_token sub=repo:acme/app:ref:refs/heads/main repository=acme/app repository_owner=acme ref=refs/heads/main "$@"; }
feature_token() { id_token sub=repo:acme/app:ref:refs/heads/feature repository=acme/app repository_owner=acme ref=refs/heads/feature; }

build_image() {
  SRC=$WORK/src
  oci_init "$SRC"
  random_tree "$WORK/tree" app.dat 1500000
  local l m
  l=$(oci_layer "$SRC" "$WORK/tree") && m=$(oci_image "$SRC" amd64 "$l") || return 1
  oci_tag "$SRC" application/vnd.oci.image.manifest.v1+json "$m" latest
  DIGEST=${m% *}
  echo "image $DIGEST"
}

login_with_id_token() {
  main_token | sk login --tls-verify=false -u oidc --password-stdin "$REGISTRY" || return 1
  sk logout "$REGISTRY"
}

push_main() {
  sk copy --dest-tls-verify=false --dest-creds "oidc:$(main_token)" "oci:$SRC:latest" "docker://$REGISTRY/ci/acme/app:v1" || return 1
  [ "$(sk inspect --tls-verify=false --creds "oidc:$(main_token)" --raw "docker://$REGISTRY/ci/acme/app:v1" | sha256sum | cut -d' ' -f1)" = "${DIGEST#sha256:}" ] \
    || fail "pushed manifest is not $DIGEST"
}

pull_feature() {
  sk copy --src-tls-verify=false --src-creds "oidc:$(feature_token)" "docker://$REGISTRY/ci/acme/app:v1" "oci:$WORK/pulled:v1" || return 1
  [ "$(jq -r '.manifests[0].digest' "$WORK/pulled/index.json")" = "$DIGEST" ] || fail "pulled another manifest"
  local f
  for f in "$SRC"/blobs/sha256/*; do cmp -s "$f" "$WORK/pulled/blobs/sha256/$(basename "$f")" || fail "blob $(basename "$f") differs" || return; done
}

# log_has TEXT: the registry log says TEXT (within 5 s: wrangler writes it out a little later).
log_has() {
  for _ in $(seq 1 50); do grep -qF "$1" "$WORK/registry.log" && return 0; sleep 0.1; done
  return 1
}

# podman logs in as docker would (`login -u oidc --password-stdin`), pulls, pushes under a new tag.
podman_login_push() {
  [ -f /etc/containers/policy.json ] || { mkdir -p /etc/containers && cp "$WORK/policy.json" /etc/containers/policy.json; }
  main_token | pm login --tls-verify=false -u oidc --password-stdin "$REGISTRY" || return 1
  pm pull --tls-verify=false "$REGISTRY/ci/acme/app:v1" || return 1
  pm push --tls-verify=false "$REGISTRY/ci/acme/app:v1" "docker://$REGISTRY/ci/acme/app:podman" || return 1
  pm logout "$REGISTRY"
  sk inspect --tls-verify=false --creds "oidc:$(main_token)" "docker://$REGISTRY/ci/acme/app:podman" | jq -r .Digest
}

# refused COMMAND...: the command fails, and the registry log says why (not the client).
refused() { ! "$@"; }

push_feature_denied() {
  refused sk copy --dest-tls-verify=false --dest-creds "oidc:$(feature_token)" "oci:$SRC:latest" "docker://$REGISTRY/ci/acme/app:feature"
}
push_other_repo_denied() {
  # main of acme/app maps to ci/acme/app only.
  refused sk copy --dest-tls-verify=false --dest-creds "oidc:$(main_token)" "oci:$SRC:latest" "docker://$REGISTRY/ci/acme/tools:v1"
}
wrong_audience_401() {
  local token code
  token=$(AUDIENCE_OVERRIDE=https://another-registry.example main_token)
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "oidc:$token" "http://$REGISTRY/token?scope=repository:ci/acme/app:pull")
  [ "$code" = 401 ] || fail "/token answered $code" || return
  log_has "event: 'oidc.refused'" && log_has "reason: 'aud: " || fail "the log does not say the audience check failed"
}
expired_401() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "oidc:$(main_token exp_offset=-120)" "http://$REGISTRY/v2/")
  [ "$code" = 401 ] || fail "/v2/ answered $code"
}
no_refresh_token() {
  local body
  body=$(curl -sf -u "oidc:$(main_token)" "http://$REGISTRY/token?offline_token=true&scope=repository:ci/acme/app:pull,push,delete") || return 1
  echo "$body" | jq -c '{scope, refresh_token}'
  [ "$(jq -r .scope <<<"$body")" = repository:ci/acme/app:pull,push ] || fail "scope is $(jq -r .scope <<<"$body")" || return
  [ "$(jq -r '.refresh_token // "none"' <<<"$body")" = none ] || fail "an OIDC caller got a refresh token"
}
identity_logged() {
  log_has "event: 'oidc.signed-in'" && log_has "identity: 'oidc:local:repo:acme/app:ref:refs/heads/main'" || fail "no sign-in event for oidc:local:<sub>"
}
jwks_fetched_once() {
  local n
  n=$(grep -c '^GET /keys' "$WORK/issuer.log")
  echo "JWKS fetched $n time(s), discovery $(grep -c 'openid-configuration' "$WORK/issuer.log")"
  [ "$n" = 1 ] || fail "JWKS fetched $n times (the edge cache should keep it)"
}

echo "# work dir $WORK"
step install-tools install_tools || exit 1
step dev-vars-from-docs write_dev_vars && step issuer-start start_issuer && step registry-start start_registry || { summary; exit 1; }
step build-image build_image
step login-with-id-token login_with_id_token
step push-main push_main
step pull-other-branch pull_feature
step podman-login-push podman_login_push
step push-other-branch-denied push_feature_denied
step push-other-repository-denied push_other_repo_denied
step wrong-audience-401 wrong_audience_401
step expired-401 expired_401
step no-refresh-token no_refresh_token
step identity-in-log identity_logged
step jwks-fetched-once jwks_fetched_once
echo "# total $(($(date +%s) - STARTED_AT)) s"
summary
