# Test images as OCI layouts, written by hand: sha256sum, tar, gzip and jq, no network.
# Sourced by run.sh. Every function takes the layout directory first.

# oci_init DIR: an empty OCI image layout.
oci_init() {
  mkdir -p "$1/blobs/sha256"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
  printf '{"schemaVersion":2,"manifests":[]}' >"$1/index.json"
}

# oci_blob DIR FILE: moves FILE into DIR's blobs; prints "sha256:<hex> <size>".
oci_blob() {
  local hex size
  hex=$(sha256sum "$2" | cut -d' ' -f1)
  size=$(stat -c %s "$2")
  mv "$2" "$1/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

# oci_layer DIR SRC_DIR: a gzip tar layer of SRC_DIR's contents; prints "digest size diff_id".
oci_layer() {
  local tmp diff_id
  tmp=$(mktemp "$1/layer.XXXXXX")
  # Fixed owner and mtime: the tar depends only on the files.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$2" -cf "$tmp.tar" .
  diff_id=sha256:$(sha256sum "$tmp.tar" | cut -d' ' -f1)
  gzip -n -1 -c "$tmp.tar" >"$tmp" && rm -f "$tmp.tar"
  echo "$(oci_blob "$1" "$tmp") $diff_id"
}

# oci_image DIR ARCH LAYER_LINE...: config and manifest for the layers (lines from oci_layer);
# prints the manifest's "digest size".
oci_image() {
  local dir=$1 arch=$2 tmp layers='[]' diff_ids='[]' d s i config
  shift 2
  for line in "$@"; do
    read -r d s i <<<"$line"
    layers=$(jq -c --arg d "$d" --argjson s "$s" \
      '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<<"$layers")
    diff_ids=$(jq -c --arg i "$i" '. + [$i]' <<<"$diff_ids")
  done
  tmp=$(mktemp "$dir/config.XXXXXX")
  jq -cn --arg arch "$arch" --argjson ids "$diff_ids" '{
    created: "2024-01-01T00:00:00Z", architecture: $arch, os: "linux",
    config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"]},
    rootfs: {type: "layers", diff_ids: $ids}}' | tr -d '\n' >"$tmp"
  read -r d s <<<"$(oci_blob "$dir" "$tmp")"
  tmp=$(mktemp "$dir/manifest.XXXXXX")
  jq -cn --arg d "$d" --argjson s "$s" --argjson layers "$layers" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s},
    layers: $layers}' | tr -d '\n' >"$tmp"
  oci_blob "$dir" "$tmp"
}

# oci_index DIR "digest size arch"...: an image index of platform manifests; prints "digest size".
oci_index() {
  local dir=$1 tmp entries='[]' d s a
  shift
  for line in "$@"; do
    read -r d s a <<<"$line"
    entries=$(jq -c --arg d "$d" --argjson s "$s" --arg a "$a" '. + [{
      mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
      platform: {architecture: $a, os: "linux"}}]' <<<"$entries")
  done
  tmp=$(mktemp "$dir/index.XXXXXX")
  jq -cn --argjson m "$entries" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: $m}' \
    | tr -d '\n' >"$tmp"
  oci_blob "$dir" "$tmp"
}

# oci_tag DIR MEDIA_TYPE "digest size" TAG: names a manifest or index in index.json.
oci_tag() {
  local d s
  read -r d s <<<"$3"
  jq -c --arg t "$2" --arg d "$d" --argjson s "$s" --arg tag "$4" '.manifests += [{mediaType: $t, digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": $tag}}]' "$1/index.json" >"$1/index.json.new"
  mv "$1/index.json.new" "$1/index.json"
}

# random_tree DIR NAME BYTES: DIR/NAME filled with BYTES of random data (plus a small text file).
random_tree() {
  mkdir -p "$1"
  head -c "$3" /dev/urandom >"$1/$2"
  echo "$2 $(date +%s%N)" >"$1/$2.txt"
}

# build_images WORK CACHE: the three test images; sets SRC_APP SRC_MULTI SRC_BIG (layout dirs)
# and APP_DIGEST MULTI_DIGEST AMD64_DIGEST ARM64_DIGEST BIG_DIGEST.
build_images() {
  local work=$1 cache=$2 l1 l2 m
  SRC_APP=$work/src/app SRC_MULTI=$work/src/multi SRC_BIG=$cache/big-${BIG_MB}mb

  # Two gzip layers and a config; random content so every run pushes new blobs.
  oci_init "$SRC_APP"
  random_tree "$work/tree/app1" bin.dat 2000000
  random_tree "$work/tree/app2" lib.dat 3000000
  l1=$(oci_layer "$SRC_APP" "$work/tree/app1") && l2=$(oci_layer "$SRC_APP" "$work/tree/app2") || return 1
  m=$(oci_image "$SRC_APP" amd64 "$l1" "$l2") || return 1
  oci_tag "$SRC_APP" application/vnd.oci.image.manifest.v1+json "$m" latest
  APP_DIGEST=${m% *}

  # Two platforms, each with its own layer, under one index.
  local amd arm idx
  oci_init "$SRC_MULTI"
  random_tree "$work/tree/amd64" amd64.dat 1500000
  random_tree "$work/tree/arm64" arm64.dat 1500000
  l1=$(oci_layer "$SRC_MULTI" "$work/tree/amd64") && amd=$(oci_image "$SRC_MULTI" amd64 "$l1") || return 1
  l2=$(oci_layer "$SRC_MULTI" "$work/tree/arm64") && arm=$(oci_image "$SRC_MULTI" arm64 "$l2") || return 1
  idx=$(oci_index "$SRC_MULTI" "$amd amd64" "$arm arm64") || return 1
  oci_tag "$SRC_MULTI" application/vnd.oci.image.index.v1+json "$idx" latest
  AMD64_DIGEST=${amd% *} ARM64_DIGEST=${arm% *} MULTI_DIGEST=${idx% *}

  # One layer of >= 300 MB random data, kept between runs (it takes a while to make).
  if [ ! -f "$SRC_BIG/index.json" ] || ! jq -e '.manifests | length == 1' "$SRC_BIG/index.json" >/dev/null; then
    rm -rf "$SRC_BIG" "$cache/tree"
    oci_init "$SRC_BIG"
    random_tree "$cache/tree" big.dat $((BIG_MB * 1024 * 1024))
    l1=$(oci_layer "$SRC_BIG" "$cache/tree") && m=$(oci_image "$SRC_BIG" amd64 "$l1") || return 1
    rm -rf "$cache/tree"
    oci_tag "$SRC_BIG" application/vnd.oci.image.manifest.v1+json "$m" latest
  fi
  BIG_DIGEST=$(jq -r '.manifests[0].digest' "$SRC_BIG/index.json")
}
