#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine with Python 3.11: ffmpeg from apt, avqa and its pinned
# dependencies from pip. Run from the repository root. Uses sudo for apt when not root.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v ffmpeg >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq ffmpeg
fi
python -m pip install -q -e ".[test]"
python -c "import avqa, torch, open_clip, torchvggish, decord, zarr, snakemake; print('avqa set-up ok: torch', torch.__version__)"
