#!/usr/bin/env bash
# Build the codemem image (`make image`): with docker where a docker engine answers (`docker info`),
# else with buildah (vfs storage, chroot isolation: works without a daemon, in a container, as root).
# Where the base image cannot be pulled (no registry reachable), it first makes a local Debian
# bookworm base with debootstrap from the apt mirror this machine uses.
#
# Settings (environment or make variables):
#   IMAGE=codemem            the tag to build
#   TORCH_VARIANT=cuda|cpu   torch 2.13.0's CUDA build (PyPI, ~3 GB) or its CPU build
#   TORCH_WHEELS=DIR         cpu only: a folder holding torch-2.13.0+cpu-cp311-*.whl, linked into the
#                            build context's pip-inputs/ (git-ignored); then TORCH_CPU_INDEX defaults to ''
#   PIP_CERT=FILE            a CA bundle pip trusts (as for pip itself): copied to pip-inputs/ca.crt, for
#                            a network whose proxy re-signs HTTPS; unset it to use certifi's roots
#   TORCH_CPU_INDEX=URL      cpu only: PyTorch's CPU index (default https://download.pytorch.org/whl/cpu)
#   BASE_IMAGE=REF           the base (default debian:bookworm-slim, or the local debootstrap base)
#   BUILDER=docker|buildah   force one (default: docker if its engine answers, else buildah)
#   DEBIAN_MIRROR=URL        for debootstrap (default: the first Debian URI in /etc/apt/sources.list*)
#   FRESH_BASE=1             remake the local debootstrap base even if it exists
#   ROOTFS_DIR=DIR           where debootstrap works (default /var/tmp/codemem-rootfs; removed after)
# Examples: make image; make image TORCH_VARIANT=cpu; make image TORCH_VARIANT=cpu TORCH_WHEELS=/opt/wheels
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-codemem}
TORCH_VARIANT=${TORCH_VARIANT:-cuda}
TORCH_WHEELS=${TORCH_WHEELS:-}
BUILDER=${BUILDER:-auto}
BASE_IMAGE=${BASE_IMAGE:-}
DEFAULT_BASE=debian:bookworm-slim
LOCAL_BASE=localhost/codemem-base:bookworm
ROOTFS_DIR=${ROOTFS_DIR:-/var/tmp/codemem-rootfs}
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}

say() { printf 'image.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s; }

case "$TORCH_VARIANT" in
  cuda) [ -z "$TORCH_WHEELS" ] || die "TORCH_WHEELS is for TORCH_VARIANT=cpu (the CUDA build comes from PyPI)" ;;
  cpu) ;;
  *) die "TORCH_VARIANT must be cuda or cpu, not '$TORCH_VARIANT'" ;;
esac

# pip-inputs/ of the build context: local CPU wheels and a CA bundle (a bind mount at build time,
# not in the image; removed again on exit when this script made it).
made_inputs=0
cleanup() { if [ "$made_inputs" = 1 ]; then rm -rf pip-inputs; fi; }
trap cleanup EXIT
if [ -n "$TORCH_WHEELS" ] || [ -n "${PIP_CERT:-}" ]; then
  if [ ! -d pip-inputs ]; then mkdir pip-inputs; made_inputs=1; fi
fi
if [ -n "${PIP_CERT:-}" ]; then
  [ -f "$PIP_CERT" ] || die "PIP_CERT=$PIP_CERT is not a file"
  cp "$PIP_CERT" pip-inputs/ca.crt
  say "pip in the build trusts the CA bundle $PIP_CERT (PIP_CERT)"
fi
if [ -n "$TORCH_WHEELS" ]; then
  shopt -s nullglob
  found=("$TORCH_WHEELS"/torch-2.13.0+cpu-cp311-cp311-*.whl)
  shopt -u nullglob
  [ "${#found[@]}" -gt 0 ] || die "no torch-2.13.0+cpu-cp311-cp311-*.whl in TORCH_WHEELS=$TORCH_WHEELS"
  for whl in "${found[@]}"; do
    target="pip-inputs/$(basename "$whl")"
    [ -e "$target" ] || ln "$whl" "$target" 2>/dev/null || cp "$whl" "$target"
  done
  TORCH_CPU_INDEX=${TORCH_CPU_INDEX-}
  say "torch CPU wheel(s) from $TORCH_WHEELS: ${found[*]##*/}"
fi
TORCH_CPU_INDEX=${TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}
build_args=(--build-arg "TORCH_VARIANT=$TORCH_VARIANT" --build-arg "TORCH_CPU_INDEX=$TORCH_CPU_INDEX")

if [ "$BUILDER" = auto ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    BUILDER=docker
  elif command -v buildah >/dev/null; then
    BUILDER=buildah
  else
    die "neither a docker engine (\`docker info\` fails) nor buildah. Install one: Debian/Ubuntu
  \`apt-get install buildah debootstrap\` (debootstrap makes the base where no registry is reachable),
  or Docker Engine (https://docs.docker.com/engine/install/)."
  fi
fi

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -n -E 's#^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)(https?://[^[:space:]]*/debian/?)([[:space:]].*)?$#\3#p' \
    | head -n 1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# A minimal Debian bookworm root file system as a tar (owners and modes kept, /dev /proc /sys empty),
# with the apt sources of Docker's debian image: bookworm, bookworm-updates, bookworm-security.
make_rootfs_tar() {
  local tar=$1 mirror
  [ "$(id -u)" = 0 ] || die "debootstrap needs root: run as root, or give BASE_IMAGE=<a Debian bookworm image you have>"
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap (or give BASE_IMAGE)"
  mirror=$(debian_mirror)
  mirror=${mirror%/}
  say "debootstrap --variant=minbase bookworm $ROOTFS_DIR $mirror"
  rm -rf "$ROOTFS_DIR"
  debootstrap --variant=minbase bookworm "$ROOTFS_DIR" "$mirror" >"$ROOTFS_DIR.log" 2>&1 \
    || { tail -n 20 "$ROOTFS_DIR.log" >&2; die "debootstrap failed (log: $ROOTFS_DIR.log)"; }
  rm -f "$ROOTFS_DIR/etc/apt/sources.list"
  cat >"$ROOTFS_DIR/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $mirror-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$ROOTFS_DIR"/var/lib/apt/lists/* "$ROOTFS_DIR"/var/cache/apt/archives/*.deb "$ROOTFS_DIR"/var/log/*.log
  tar --numeric-owner --xattrs -C "$ROOTFS_DIR" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' --exclude='./tmp/*' \
    -cf "$tar" .
  rm -rf "$ROOTFS_DIR" "$ROOTFS_DIR.log"
}

t0=$(now)
if [ "$BUILDER" = docker ]; then
  if [ -z "$BASE_IMAGE" ]; then
    if docker image inspect "$DEFAULT_BASE" >/dev/null 2>&1 || docker pull "$DEFAULT_BASE"; then
      BASE_IMAGE=$DEFAULT_BASE
    else
      BASE_IMAGE=${LOCAL_BASE#localhost/}
      if [ "${FRESH_BASE:-0}" = 1 ] || ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        say "cannot pull $DEFAULT_BASE: making $BASE_IMAGE with debootstrap"
        make_rootfs_tar "$ROOTFS_DIR.tar"
        docker import --change 'CMD ["/bin/bash"]' "$ROOTFS_DIR.tar" "$BASE_IMAGE"
        rm -f "$ROOTFS_DIR.tar"
      fi
    fi
  fi
  t1=$(now)
  say "docker build -t $IMAGE (base $BASE_IMAGE, torch $TORCH_VARIANT)"
  docker build "${build_args[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" .
  t2=$(now)
  size="$(docker image inspect --format '{{.Size}}' "$IMAGE") bytes"
else
  command -v buildah >/dev/null || die "buildah is missing: apt-get install buildah (and debootstrap for a local base)"
  bh=(buildah --storage-driver "$STORAGE_DRIVER")
  has_image() { "${bh[@]}" inspect --type image "$1" >/dev/null 2>&1; }
  if [ -z "$BASE_IMAGE" ]; then
    if has_image "docker.io/library/$DEFAULT_BASE" \
      || timeout 120 "${bh[@]}" pull --quiet "docker.io/library/$DEFAULT_BASE" >/dev/null 2>&1; then
      BASE_IMAGE=docker.io/library/$DEFAULT_BASE
    else
      BASE_IMAGE=$LOCAL_BASE
      if [ "${FRESH_BASE:-0}" = 1 ] || ! has_image "$BASE_IMAGE"; then
        say "cannot pull $DEFAULT_BASE (no registry reachable?): making $BASE_IMAGE with debootstrap"
        make_rootfs_tar "$ROOTFS_DIR.tar"
        ctr=$("${bh[@]}" from scratch)
        "${bh[@]}" add "$ctr" "$ROOTFS_DIR.tar" /   # a local tar is unpacked, owners and modes kept
        "${bh[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
          --label org.opencontainers.image.description="Debian bookworm minbase (debootstrap), codemem's base" "$ctr"
        "${bh[@]}" commit --quiet "$ctr" "$BASE_IMAGE" >/dev/null
        "${bh[@]}" rm "$ctr" >/dev/null
        rm -f "$ROOTFS_DIR.tar"
      fi
    fi
  fi
  t1=$(now)
  say "buildah build -t $IMAGE (base $BASE_IMAGE, torch $TORCH_VARIANT, storage $STORAGE_DRIVER, isolation chroot)"
  # docker format: the OCI format has no SHELL, and buildah would run RUN lines with /bin/sh.
  "${bh[@]}" build --format docker --isolation chroot --layers "${build_args[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f Dockerfile -t "$IMAGE" .
  t2=$(now)
  size=$("${bh[@]}" images --format '{{.Size}}' "$IMAGE" | head -n 1)
fi
say "built $IMAGE with $BUILDER: base $((t1 - t0)) s, image $((t2 - t1)) s, size ${size}"
