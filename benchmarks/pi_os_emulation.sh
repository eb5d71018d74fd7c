#!/usr/bin/env bash
# Raspberry Pi OS by emulation: Debian bookworm (Python 3.11) and trixie (Python 3.13) arm64 root filesystems built
# with debootstrap and run through qemu-user-static (both from Debian's packages), the base edgecnn wheel installed
# in a venv inside from PyPI (aarch64 wheels of ai-edge-litert, NumPy and OpenCV), then the same three things run
# inside and on this x86 machine (benchmarks/pi_os_emulation.py side): raw probabilities of every image of the
# bundle's test split, `edgecnn eval` on those images and `edgecnn live --source video.mp4 --every-frame`. The
# outputs are compared bit for bit and written as the pi_os_emulation section of benchmarks/RESULTS.md.
# Emulated latency is not a device figure: none is reported.
#
# Usage (as root, with the [train] extra installed for PYTHON, by default python3):
#   benchmarks/pi_os_emulation.sh CACHE_DIR BUNDLE [SUITE ...]
#   CACHE_DIR  kept between runs: the roots (CACHE_DIR/<suite>-arm64), the sampled data, the x86 reference
#   BUNDLE     a TFLite bundle, int8 for bit-identical outputs (e.g. bundles/quickstart-tflite-int8)
#   SUITE      Debian suites to build (default: bookworm trixie)
# Environment: PYTHON (x86 interpreter), MIRROR (Debian mirror, default http://deb.debian.org/debian),
#   PI_CPU (the emulated core: cortex-a76 as in a Raspberry Pi 5, the default, or cortex-a72 as in a Pi 4).
#
# The emulated CPU is qemu's model of that core, and /proc/cpuinfo inside describes four of them: LiteRT's XNNPACK
# reads /proc/cpuinfo (the cpuinfo library) to choose its kernels, and segfaults on an x86 host's one.
#
# The arm64 binaries run through binfmt_misc (chroot) when the kernel has, or lets us register, the qemu-aarch64
# handler; otherwise through `proot -q qemu-aarch64-static`, which needs no kernel support but is slower.
set -euo pipefail

usage() { echo "usage: $0 CACHE_DIR BUNDLE [SUITE ...]   (suites default to: bookworm trixie)" >&2; exit 2; }
[ $# -ge 2 ] || usage
[ -f "$2/bundle.json" ] || { echo "$0: $2 is not a bundle directory (no bundle.json)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, chroot and mounts)" >&2; exit 2; }
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
BUNDLE=$(cd "$2" && pwd)
shift 2
if [ $# -gt 0 ]; then SUITES=("$@"); else SUITES=(bookworm trixie); fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
HALF="$REPO/benchmarks/pi_os_emulation.py"
PI_CPU=${PI_CPU:-cortex-a76}
QEMU=/usr/bin/qemu-aarch64-static
BINFMT=/proc/sys/fs/binfmt_misc

need() { command -v "$1" >/dev/null 2>&1; }
if ! need debootstrap || ! [ -x "$QEMU" ] || ! need proot; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support proot
fi

binfmt_ready() { grep -qs '^enabled' "$BINFMT/qemu-aarch64"; }
if ! binfmt_ready; then  # containers often start with binfmt_misc unmounted or the handler unregistered
  [ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null || true
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
if binfmt_ready; then MODE=chroot; else MODE=proot; fi
echo "arm64 binaries run through: $MODE"

# chroot mode: the handler's interpreter path is looked up inside the root unless registered with the F flag.
provide_qemu() {
  local root=$1 interpreter
  cp "$QEMU" "$root/usr/bin/qemu-aarch64-static"
  interpreter=$(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64" 2>/dev/null || true)
  if [ -n "$interpreter" ] && [ "$interpreter" != /usr/bin/qemu-aarch64-static ]; then
    mkdir -p "$root$(dirname "$interpreter")"
    ln -sf /usr/bin/qemu-aarch64-static "$root$interpreter"
  fi
}

# /proc/cpuinfo of a Raspberry Pi with PI_CPU cores (an arm64 kernel's format): implementer, part, variant, revision
# and the features the core has.
declare -A CPU_ID=([cortex-a76]="0x41 0xd0b 0x4 1" [cortex-a72]="0x41 0xd08 0x0 3")
declare -A CPU_FEATURES=(
  [cortex-a76]="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
  [cortex-a72]="fp asimd evtstrm crc32 cpuid"
)
[ -n "${CPU_ID[$PI_CPU]:-}" ] || { echo "$0: PI_CPU=$PI_CPU: expected one of ${!CPU_ID[*]}" >&2; exit 2; }
read -r IMPLEMENTER PART VARIANT REVISION <<< "${CPU_ID[$PI_CPU]}"
CPUINFO="$CACHE/cpuinfo-$PI_CPU"
for core in 0 1 2 3; do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: %s\nCPU architecture: 8\n' \
    "$core" "${CPU_FEATURES[$PI_CPU]}" "$IMPLEMENTER"
  printf 'CPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$VARIANT" "$PART" "$REVISION"
done > "$CPUINFO"

MOUNTED=()
mount_api() {  # /proc, /sys and /dev inside the root for pip, Python and the runtime's CPU detection
  local root=$1 dir
  for dir in proc sys dev; do
    mountpoint -q "$root/$dir" && continue
    if [ "$dir" = proc ]; then mount -t proc proc "$root/proc"; else mount --rbind "/$dir" "$root/$dir"; fi
    MOUNTED+=("$root/$dir")
  done
  mount --bind "$CPUINFO" "$root/proc/cpuinfo"
}
unmount_api() {
  local path
  for path in "${MOUNTED[@]}"; do umount -R -l "$path" 2>/dev/null || true; done
  MOUNTED=()
}
trap unmount_api EXIT

# Inside, a clean environment: this machine's PIP_*/SSL_* settings name paths the root does not have. Proxy
# settings pass through, and pip trusts this machine's CA bundle (/work/host-ca.crt), which may hold a local CA.
ENVIRONMENT=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8
             QEMU_CPU="$PI_CPU")
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!name:-}" ]; then ENVIRONMENT+=("$name=${!name}"); fi
done
in_root() {  # in_root ROOT COMMAND...: run an arm64 command inside ROOT
  local root=$1; shift
  if [ "$MODE" = chroot ]; then
    chroot "$root" /usr/bin/env -i "${ENVIRONMENT[@]}" "$@"
  else
    proot -0 -q "$QEMU -cpu $PI_CPU" -r "$root" -b /dev -b /proc -b /sys -b "$CPUINFO:/proc/cpuinfo" -w / \
      /usr/bin/env -i "${ENVIRONMENT[@]}" "$@"
  fi
}

build_root() {  # debootstrap's first stage natively, the second inside the emulated root
  local suite=$1 root=$2
  [ -f "$CACHE/$suite.debootstrap.ok" ] && [ -x "$root/usr/bin/python3" ] && return 0
  unmount_api
  if mountpoint -q "$root/dev" || mountpoint -q "$root/proc" || mountpoint -q "$root/sys"; then
    echo "$0: $root still has mounts; unmount them before it is rebuilt" >&2
    return 1
  fi
  rm -rf "$root" "$CACHE/$suite.debootstrap.ok"
  debootstrap --arch=arm64 --foreign --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates "$suite" "$root" "$MIRROR"
  if [ "$MODE" = chroot ]; then provide_qemu "$root"; fi
  in_root "$root" /debootstrap/debootstrap --second-stage
  touch "$CACHE/$suite.debootstrap.ok"
}

# This machine's reference, on data sampled once from the bundle's recorded test split.
[ -f "$CACHE/data/video.mp4" ] || "$PYTHON" "$HALF" sample "$BUNDLE" "$CACHE/data"
rm -rf "$CACHE/x86"
"$PYTHON" "$HALF" side "$BUNDLE" "$CACHE/data" "$CACHE/x86" >/dev/null
# The emulated install takes the same LiteRT release as this machine, so the outputs compare one runtime version.
"$PYTHON" - "$CACHE/x86/side.json" > "$CACHE/constraints.txt" <<'PY'
import json, sys
versions = json.load(open(sys.argv[1]))["versions"]
print("\n".join(f"{name}=={versions[name]}" for name in ("ai-edge-litert",) if name in versions))
PY

# The base wheel of this checkout (edgecnn itself is pure Python; its dependencies come from PyPI inside).
rm -rf "$CACHE/wheel" && "$PYTHON" -m pip wheel --quiet --no-deps -w "$CACHE/wheel" "$REPO"
WHEEL=$(ls "$CACHE"/wheel/edgecnn-*.whl)

for SUITE in "${SUITES[@]}"; do
  ROOT="$CACHE/$SUITE-arm64"
  echo "== $SUITE: root filesystem"
  if ! build_root "$SUITE" "$ROOT" > "$CACHE/$SUITE.debootstrap.log" 2>&1; then
    echo "$SUITE: debootstrap failed, see $CACHE/$SUITE.debootstrap.log" >&2
    continue
  fi
  if [ "$MODE" = chroot ]; then provide_qemu "$ROOT"; fi
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  rm -rf "$ROOT/work" && mkdir -p "$ROOT/work/out"
  cp -r "$BUNDLE" "$ROOT/work/bundle" && cp -r "$CACHE/data" "$ROOT/work/data"
  cp "$WHEEL" "$CACHE/constraints.txt" "$HALF" "$ROOT/work/"
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/work/host-ca.crt"
  if [ "$MODE" = chroot ]; then mount_api "$ROOT"; fi
  echo "== $SUITE: pip install $(basename "$WHEEL") inside"
  if in_root "$ROOT" /bin/sh -c "
      set -e
      [ -x /opt/edgecnn/bin/pip ] || python3 -m venv /opt/edgecnn
      # this checkout's edgecnn replaces an earlier one; dependencies already there are kept
      /opt/edgecnn/bin/pip install --quiet --no-deps --force-reinstall /work/$(basename "$WHEEL")
      /opt/edgecnn/bin/pip install --quiet --no-cache-dir --disable-pip-version-check --cert /work/host-ca.crt \
        -c /work/constraints.txt /work/$(basename "$WHEEL")
      /opt/edgecnn/bin/pip freeze > /work/out/pip-freeze.txt
      touch /work/out/install.ok" > "$CACHE/$SUITE.install.log" 2>&1; then
    echo "== $SUITE: probe, eval and live inside"
    in_root "$ROOT" /opt/edgecnn/bin/python /work/pi_os_emulation.py side /work/bundle /work/data /work/out \
      > "$CACHE/$SUITE.side.log" 2>&1 || echo "$SUITE: the emulated run failed, see $CACHE/$SUITE.side.log" >&2
  else
    echo "$SUITE: install failed, see $CACHE/$SUITE.install.log" >&2
  fi
  unmount_api
done

"$PYTHON" "$HALF" report "$CACHE" "${SUITES[@]}" --bundle-name "$(basename "$BUNDLE")" --cpu "$PI_CPU"
