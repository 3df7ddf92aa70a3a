#!/usr/bin/env bash
# The container, built and run for real (`make image-check`): build the image from a clone of HEAD
# with repro/image.sh (buildah where no docker engine answers), then, in a second clone mounted on
# /work, run as a non-root uid with no network:
#   dvc repro                     -> metrics/metrics.json, every file owned by that uid
#   dvc exp run -S noise=1.0      -> an experiment
# and, outside the container, `make setup` + `dvc repro` on a third clone with the same JDK sources
# (copied out of the image: same corpus), timed, and its metrics compared with the container's.
# Prints image size, build times and run times. About 25-35 min on 2 CPU cores with a cold build.
#
# Settings: TORCH_VARIANT (default cpu here: no GPU is checked), TORCH_WHEELS (default /opt/wheels when
# it holds torch 2.13.0+cpu, else PyTorch's CPU index), IMAGE (localhost/codemem-check), WORK (scratch
# folder, /var/tmp/codemem-image-check), RUN_UID (default: yours; as root 4242, any non-root uid),
# SKIP_BUILD=1 (reuse IMAGE), SKIP_OUTSIDE=1, QUIET_FILE (waits while it exists: a benchmark running).
# Needs buildah (apt-get install buildah debootstrap) or docker; the in-container runs use buildah.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/codemem-image-check}
IMAGE=${IMAGE:-localhost/codemem-check}
export TORCH_VARIANT=${TORCH_VARIANT:-cpu}
if [ -z "${TORCH_WHEELS+x}" ] && [ "$TORCH_VARIANT" = cpu ] && compgen -G "/opt/wheels/torch-2.13.0+cpu-cp311-*.whl" >/dev/null; then
  export TORCH_WHEELS=/opt/wheels
fi
QUIET_FILE=${QUIET_FILE:-/tmp/codemem-quiet}
if [ -z "${RUN_UID:-}" ]; then RUN_UID=$(id -u); [ "$RUN_UID" != 0 ] || RUN_UID=4242; fi
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
bh=(buildah --storage-driver "$STORAGE_DRIVER")

say() { printf '\nimage_check: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
wait_quiet() { while [ -e "$QUIET_FILE" ]; do sleep 30; done; }
timed() { local t0; t0=$(date +%s.%N); "$@"; elapsed=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))"); }
command -v buildah >/dev/null || fail "buildah is missing (apt-get install buildah debootstrap)"

mkdir -p "$WORK"
summary="$WORK/summary.txt"
: >"$summary"
note() { printf '%s\n' "$*" | tee -a "$summary" >&2; }
fresh_clone() { rm -rf "$1"; git clone --quiet "$repo" "$1"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  fresh_clone "$WORK/ctx"
  wait_quiet
  say "building $IMAGE from a clone of HEAD ($(git -C "$repo" rev-parse --short HEAD))"
  (cd "$WORK/ctx" && IMAGE=$IMAGE BUILDER=${BUILDER:-buildah} STORAGE_DRIVER=$STORAGE_DRIVER repro/image.sh) 2>&1 | tee "$WORK/build.log"
  note "$(grep '^image.sh: built' "$WORK/build.log")"
fi
note "image: $("${bh[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE" | head -n 1)"

ctr=$("${bh[@]}" from --quiet "$IMAGE")
trap '"${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
fresh_clone "$WORK/run"
chown -R "$RUN_UID:$RUN_UID" "$WORK/run" 2>/dev/null || [ "$RUN_UID" = "$(id -u)" ] || fail "cannot chown to $RUN_UID"
# No network inside: buildah's chroot isolation has no --network none (it shares the caller's network
# namespace), so as root it runs in a fresh, empty one (unshare --net); rootless, it asks the OCI
# runtime for --network none (needs working cgroups).
inside() {
  local run=(run --user "$RUN_UID:$RUN_UID" --volume "$WORK/run:/work" --workingdir /work)
  if [ "$(id -u)" = 0 ]; then
    unshare --net "${bh[@]}" "${run[@]}" --isolation chroot "$ctr" -- "$@"
  else
    "${bh[@]}" "${run[@]}" --isolation oci --network none "$ctr" -- "$@"
  fi
}
owned_by_others() { find "$WORK/run" ! -uid "$RUN_UID" -print | head -n 5; }

say "the image alone (its own /work, its user): dvc status"
"${bh[@]}" run --isolation chroot "$ctr" -- sh -c 'echo "uid $(id -u) in $(pwd)"; dvc status' \
  || fail "dvc status in the image's own checkout"

say "inside: uid, python, torch, network"
inside sh -c 'echo "uid $(id -u) gid $(id -g) HOME=$HOME"; python --version; python -c "import torch; print(\"torch\", torch.__version__)"'
# No network: the namespace holds only the loopback interface and no route off it. Checked from the
# namespace's own tables, and by asking the kernel for a route to a documentation address (RFC 5737;
# a UDP connect sends nothing), so the check names no host and contacts none.
inside python - <<'PY' || fail "the container has a network interface or a route besides loopback"
import errno, os, socket, sys
interfaces = sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:])
devices = [line.split()[0] for line in open("/proc/net/route").read().splitlines()[1:]]
if os.path.exists("/proc/net/ipv6_route"):  # no header; the device is the last field
    devices += [line.split()[-1] for line in open("/proc/net/ipv6_route").read().splitlines()]
routes = [d for d in devices if d != "lo"]
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    probe.connect(("192.0.2.1", 9))
    unreachable = False
except OSError as e:
    unreachable = e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
print(f"interfaces {interfaces}, routes off loopback {len(routes)}, 192.0.2.1 unroutable {unreachable}")
sys.exit(0 if interfaces == ["lo"] and not routes and unreachable else 1)
PY
note "inside: no network (loopback only, no route off it), running as uid $RUN_UID"

wait_quiet
say "inside: dvc repro"
timed inside dvc repro
note "inside: dvc repro ${elapsed} s"
[ -s "$WORK/run/metrics/metrics.json" ] || fail "no metrics/metrics.json after dvc repro"
others=$(owned_by_others)
[ -z "$others" ] || fail "files not owned by uid $RUN_UID after dvc repro: $others"
note "inside: metrics/metrics.json written; every file in the checkout owned by uid $RUN_UID"
cp "$WORK/run/metrics/metrics.json" "$WORK/metrics-inside.json"
inside python -c 'import json; m = json.load(open("build/raw/manifest.json")); print({k: m[k] for k in m if k != "files"})' || true

wait_quiet
say "inside: dvc exp run -S noise=1.0"
timed inside dvc exp run -S noise=1.0
note "inside: dvc exp run -S noise=1.0 ${elapsed} s"
inside dvc exp show --json >"$WORK/exp-show.json"
python3 - "$WORK/exp-show.json" <<'EOF' | tee -a "$summary"
import json, sys
rows = json.load(open(sys.argv[1]))
exps = [e for row in rows for e in (row.get("experiments") or [])]
assert exps, "dvc exp show lists no experiment"
for exp in exps:
    for run in exp.get("revs") or []:
        data = run.get("data") or {}
        noise = ((data.get("params") or {}).get("params.yaml") or {}).get("data", {}).get("noise")
        metrics = ((data.get("metrics") or {}).get("metrics/metrics.json") or {}).get("data", {})
        print(f"inside: experiment {run.get('name') or run.get('rev')}: noise {noise}, test_f1 {metrics.get('test_f1')}")
EOF
others=$(owned_by_others)
[ -z "$others" ] || fail "files not owned by uid $RUN_UID after dvc exp run: $others"
note "inside: after dvc exp run, every file in the checkout still owned by uid $RUN_UID"

if [ "${SKIP_OUTSIDE:-0}" != 1 ]; then
  # The same JDK sources outside: the image's src.zip and release file, under a JAVA_HOME.
  mkdir -p "$WORK/jdk/lib"
  jdk=$(inside sh -c 'dirname "$(dirname "$(readlink -f /usr/lib/jvm/java-17-openjdk-*/lib/src.zip)")"' | tail -n 1)
  inside cat "$jdk/lib/src.zip" >"$WORK/jdk/lib/src.zip"
  inside sh -c "cat /usr/lib/jvm/java-17-openjdk-*/release" >"$WORK/jdk/release"
  fresh_clone "$WORK/host"
  wait_quiet
  say "outside: make setup (virtualenv + pinned install)"
  timed make -C "$WORK/host" setup
  note "outside: make setup ${elapsed} s"
  wait_quiet
  say "outside: dvc repro with the image's JDK sources"
  timed env JAVA_HOME="$WORK/jdk" make -C "$WORK/host" run
  note "outside: make run after setup (dvc repro + metrics show) ${elapsed} s"
  python3 - "$WORK/metrics-inside.json" "$WORK/host/metrics/metrics.json" <<'EOF' | tee -a "$summary"
import json, sys
inside, outside = (json.load(open(p)) for p in sys.argv[1:])
skip = {"seconds", "wall_seconds", "epoch_seconds", "train_seconds"}
diff = {k: (inside[k], outside.get(k)) for k in inside if k not in skip and inside[k] != outside.get(k)}
print("metrics inside == outside" if not diff else f"metrics differ inside/outside: {diff}")
EOF
fi
say "summary ($summary)"
cat "$summary"
