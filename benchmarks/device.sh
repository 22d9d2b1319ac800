#!/usr/bin/env bash
# The device benchmark in one command (docs/device.md). On the GPU box it first installs the wheels that
# benchmarks/device_prepare.sh gathered here (.device/wheels, carried with the working tree) into .device/site.
#   benchmarks/device.sh [benchmarks/device.py options, e.g. --size full --out report.json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# the wheels are cp312 (the box's Python); elsewhere the installed environment is used as it is
if compgen -G ".device/wheels/*.whl" >/dev/null && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  if [ ! -f .device/site/.installed ] || [ -n "$(find .device/wheels -newer .device/site/.installed -print -quit)" ]; then
    rm -rf .device/site
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target .device/site .device/wheels/*.whl
    touch .device/site/.installed
  fi
  export PYTHONPATH="$PWD/.device/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" benchmarks/device.py "$@"
