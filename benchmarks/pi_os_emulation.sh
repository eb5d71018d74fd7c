#!/usr/bin/env bash
# Raspberry Pi OS by emulation: Debian bookworm (Python 3.11) and trixie (Python 3.13) arm64 root filesystems built
# with debootstrap and run through qemu-user-static (both from Debian's packages), the base edgecnn wheel installed
# inside from PyPI (aarch64 wheels of ai-edge-litert and OpenCV), then `edgecnn eval` and raw probabilities of an
# int8 bundle compared with this machine's, bit for bit. Emulated latency is not a device figure: none is reported.
#
# Usage (as root): benchmarks/pi_os_emulation.sh CACHE_DIR BUNDLE [VIDEO.mp4]
#   CACHE_DIR  where the root filesystems are kept between runs (CACHE_DIR/{bookworm,trixie}-arm64)
#   BUNDLE     an int8 TFLite bundle (e.g. bundles/quickstart-tflite-int8)
#   VIDEO.mp4  optional: also run `edgecnn live --source VIDEO.mp4 --pace fast` inside
# Writes CACHE_DIR/report-<suite>.json and prints one line per OS: install ok, site-packages size, eval top-1,
# and whether the probabilities equal the x86 ones exactly.
#
# Status: written, not yet run to the end in this repository's CI machine (debootstrap of two arm64 roots under
# qemu takes tens of minutes); see the issue note.
set -euo pipefail

CACHE=${1:?usage: $0 CACHE_DIR BUNDLE [VIDEO]}
BUNDLE=$(cd "${2:?usage: $0 CACHE_DIR BUNDLE [VIDEO]}" && pwd)
VIDEO=${3:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need debootstrap || ! [ -x /usr/bin/qemu-aarch64-static ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support
fi
# qemu-user-static registers binfmt_misc handlers; containers may need them registered by hand.
if [ -d /proc/sys/fs/binfmt_misc ] && ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi

# The x86 reference: raw probabilities of the bundle on fixed images (seeded noise, the bundle's input size).
PROBE=$(cat <<'PY'
import json, sys
import numpy as np
import edgecnn.runtime as rt
predictor = rt.load(sys.argv[1])
h, w = predictor.image_size
images = np.random.default_rng(0).integers(0, 256, (64, h, w, 3), dtype=np.uint8)
np.save(sys.argv[2], predictor.predict(images))
print(json.dumps(predictor.info()))
PY
)
"$PYTHON" -c "$PROBE" "$BUNDLE" "$CACHE/x86_probs.npy" >/dev/null

# The base wheel of this checkout (edgecnn itself is pure Python; its dependencies come from PyPI inside).
rm -rf "$CACHE/wheel" && "$PYTHON" -m pip wheel --quiet --no-deps -w "$CACHE/wheel" "$REPO"
WHEEL=$(ls "$CACHE"/wheel/edgecnn-*.whl)

for SUITE in bookworm trixie; do
  ROOT="$CACHE/$SUITE-arm64"
  if ! [ -x "$ROOT/usr/bin/python3" ]; then
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase \
      --include=python3,python3-venv,python3-pip,ca-certificates,libgl1,libglib2.0-0 "$SUITE" "$ROOT"
    cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage
  fi
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  rm -rf "$ROOT/work" && mkdir -p "$ROOT/work"
  cp -r "$BUNDLE" "$ROOT/work/bundle" && cp "$WHEEL" "$ROOT/work/" && printf '%s' "$PROBE" > "$ROOT/work/probe.py"
  [ -n "$VIDEO" ] && cp "$VIDEO" "$ROOT/work/video.mp4"
  STATUS=ok
  chroot "$ROOT" /bin/sh -c "
    set -e
    [ -x /opt/edgecnn/bin/pip ] || python3 -m venv /opt/edgecnn
    /opt/edgecnn/bin/pip install --quiet /work/$(basename "$WHEEL")
    /opt/edgecnn/bin/python /work/probe.py /work/bundle /work/arm_probs.npy > /work/info.json
    /opt/edgecnn/bin/edgecnn eval /work/bundle --split all --json --out /work/eval > /work/eval.json || true
    if [ -f /work/video.mp4 ]; then
      /opt/edgecnn/bin/edgecnn live /work/bundle --source /work/video.mp4 --pace fast --quiet --out /work/live
    fi
  " || STATUS=failed
  SITE=$(du -sm "$ROOT"/opt/edgecnn/lib/python3*/site-packages 2>/dev/null | cut -f1 || echo "?")
  "$PYTHON" - "$CACHE" "$ROOT" "$SUITE" "$STATUS" "$SITE" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
cache, root, suite, status, site = sys.argv[1:]
report = {"suite": suite, "install_and_run": status, "site_packages_mb": site}
arm = Path(root, "work", "arm_probs.npy")
if arm.is_file():
    x86, emulated = np.load(Path(cache, "x86_probs.npy")), np.load(arm)
    report["python"] = next(Path(root, "usr/bin").glob("python3.*")).name
    report["probabilities_bit_identical"] = bool(x86.shape == emulated.shape and np.array_equal(x86, emulated))
    report["top1_identical"] = bool(np.array_equal(x86.argmax(1), emulated.argmax(1)))
    report["max_abs_diff"] = float(np.max(np.abs(x86 - emulated)))
    report["runtime"] = json.loads(Path(root, "work", "info.json").read_text()).get("package")
Path(cache, f"report-{suite}.json").write_text(json.dumps(report, indent=2))
print(json.dumps(report))
PY
done
