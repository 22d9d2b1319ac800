#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine with Python 3.11 or 3.12: ffmpeg from apt, avqa and its
# dependencies from pip at the exact versions of constraints/py3XX.txt for the running Python (pyproject.toml only
# declares ranges; docs/install.md). Run from the repository root. Uses sudo for apt when not root.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v ffmpeg >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq ffmpeg
fi
PY=$(python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
CONSTRAINTS="constraints/py${PY}.txt"
if [ ! -f "$CONSTRAINTS" ]; then
  echo "setup.sh: no $CONSTRAINTS for $(python -V); the exact sets are $(echo constraints/py3*.txt) (docs/install.md)" >&2
  exit 1
fi
# torchcodec (the default frame and audio decoder) is the torchcodec extra, installed where the constraints file
# pins it: both files pin 0.17.0 (on 3.12 beside torch 2.11, tested there; docs/install.md). Without it, set
# features.decode.backend: decord and features.audio_backend: ffmpeg.
EXTRAS="test"
if grep -q "^torchcodec==" "$CONSTRAINTS"; then EXTRAS="test,torchcodec"; fi
python -m pip install -q -c "$CONSTRAINTS" -e ".[$EXTRAS]"
python -c "import avqa, torch, open_clip, torchvggish, decord, zarr, snakemake, pydantic; print('avqa set-up ok: torch', torch.__version__, 'with $CONSTRAINTS, extras $EXTRAS')"
