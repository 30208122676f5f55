#!/usr/bin/env bash
# End-to-end with containerd's `ctr` (what Kubernetes nodes pull with): pushes the test images,
# then pulls every platform back into a content store of its own and compares them byte for byte.
#
#   bash e2e/containerd.sh            runs e2e/run.sh with only these steps (it starts `npm start`,
#                                     builds the images and logs in; same env: E2E_PORT, E2E_AUTH=1, …)
#   . e2e/containerd.sh               from e2e/run.sh: runs the steps there, with its plumbing
#                                     (step, fail, same_blobs, raw_digest, REGISTRY, NS, WORK, SRC_*)
#
# It starts its own containerd (Debian's package, installed when missing) on a private socket and
# root under $WORK, so it touches no system daemon, and stops it at the end. Content is isolated
# per containerd namespace (content_sharing_policy), so the pull really downloads what the push
# uploaded. With E2E_AUTH=1, ctr logs in with `--user` (containerd's token flow: a POSTed form).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  exec env E2E_ONLY='^containerd-' bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$@"
fi

CTD=$WORK/containerd CTD_PID=

# ctr against the private daemon, in containerd namespace $1.
ctrn() { local ns=$1; shift; ctr --address "$CTD/containerd.sock" --namespace "$ns" "$@"; }

# What every ctr call to the registry needs: plain HTTP on the local port (it speaks both),
# TLS without verification elsewhere unless asked; credentials when auth is on.
ctr_remote_args() {
  CTR_REMOTE=()
  if [ "$LOCAL" = 1 ] || [ "$SCHEME" = http ]; then CTR_REMOTE+=(--plain-http)
  elif [ "$TLS_VERIFY" != true ]; then CTR_REMOTE+=(--skip-verify); fi
  [ "${E2E_AUTH:-0}" = 1 ] && CTR_REMOTE+=(--user "$REGISTRY_USER:$REGISTRY_PASSWORD")
  return 0
}

containerd_start() {
  if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "containerd missing and not root: apt-get install -y containerd" || return
    DEBIAN_FRONTEND=noninteractive apt-get install -y containerd || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y containerd; } || return
  fi
  [ "$(id -u)" = 0 ] || fail "containerd needs root" || return
  mkdir -p "$CTD"
  # Only the content store, images and a snapshotter that needs no kernel support are used:
  # no CRI, no other snapshotters, no /opt plugin.
  cat >"$CTD/config.toml" <<EOF
version = 2
root = "$CTD/root"
state = "$CTD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CTD/containerd.sock"
[ttrpc]
  address = "$CTD/containerd.sock.ttrpc"
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
EOF
  setsid containerd --config "$CTD/config.toml" </dev/null >"$WORK/logs/containerd-daemon.log" 2>&1 &
  CTD_PID=$!
  local i
  for i in $(seq 1 100); do
    ctrn default version >/dev/null 2>&1 && { ctrn default version; return 0; }
    kill -0 "$CTD_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 5 "$WORK/logs/containerd-daemon.log"
  fail "containerd did not start"
}

containerd_stop() {
  [ -n "$CTD_PID" ] || return 0
  kill -TERM -- "-$CTD_PID" 2>/dev/null
  local i
  for i in $(seq 1 50); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$CTD_PID" 2>/dev/null
  CTD_PID=
  rm -rf "$CTD"
}

# ctr_push LAYOUT NAME WANT_DIGEST: imports the OCI layout (every platform) into namespace
# "push", pushes it as NAME:v1, and checks the registry serves the same manifest digest.
ctr_push() {
  local layout=$1 ref=$REGISTRY/$NS/ctr/$2 want=$3
  tar -C "$layout" -cf "$CTD/$2.tar" . || return
  ctrn push images import --all-platforms --no-unpack --base-name "$ref" "$CTD/$2.tar" || return
  ctrn push images tag "$ref:latest" "$ref:v1" || return
  ctrn push images push "${CTR_REMOTE[@]}" "$ref:v1" || return
  [ "$(raw_digest "$ref:v1")" = "$want" ] || fail "the registry holds $(raw_digest "$ref:v1") for $2:v1, not $want" || return
}

containerd_push() {
  ctr_remote_args
  ctr_push "$SRC_APP" app "$APP_DIGEST" && ctr_push "$SRC_MULTI" multi "$MULTI_DIGEST"
}

# ctr_pull NAME WANT_DIGEST SRC_LAYOUT: pulls NAME:v1, every platform, into namespace "pull"
# (nothing shared with "push"), then exports it and compares every blob with the source.
ctr_pull() {
  local ref=$REGISTRY/$NS/ctr/$1:v1 got out=$CTD/pulled-$1
  ctrn pull images pull --all-platforms --snapshotter native "${CTR_REMOTE[@]}" "$ref" || return
  got=$(ctrn pull images ls | awk -v r="$ref" '$1 == r { print $3 }')
  [ "$got" = "$2" ] || fail "ctr pulled $ref as '$got', not $2" || return
  ctrn pull images export --all-platforms --skip-manifest-json "$out.tar" "$ref" || return
  mkdir -p "$out" && tar -C "$out" -xf "$out.tar" || return
  blobs_match_names "$out" && same_blobs "$3" "$out"
}

containerd_pull_all_platforms() {
  ctr_remote_args
  ctr_pull app "$APP_DIGEST" "$SRC_APP" && ctr_pull multi "$MULTI_DIGEST" "$SRC_MULTI" || return
  # Both platforms' layers came down: the pulled index names two manifests, each present.
  ctrn pull content ls -q | sort >"$CTD/pulled.txt"
  local m
  for m in "$AMD64_DIGEST" "$ARM64_DIGEST"; do
    grep -qx "$m" "$CTD/pulled.txt" || fail "platform manifest $m was not pulled" || return
  done
}

step containerd-start containerd_start
step containerd-push containerd_push;                 timed containerd-push "ctr import + push, app and two platforms"
step containerd-pull containerd_pull_all_platforms;   timed containerd-pull "every platform, blobs compared byte for byte"
containerd_stop
