#!/usr/bin/env bash
# Run HERE (package index and ffmpeg reachable) before the device benchmark: gathers what the GPU box lacks into
# the ignored .device/ folder, which travels with the working tree (name `.device` in the device call's carry):
#   .device/wheels  cp312 manylinux wheels, the versions of constraints/py312.txt (benchmarks/device.sh installs
#                   them there with pip install --no-index --no-deps --target .device/site)
#   .device/clips   the benchmark's 60-s 640x360 25-fps clips (x264 + AAC; the box has no ffmpeg to make them)
# and prints the carried size against the 64 MiB limit (repository + .device). docs/device.md.
#   nice benchmarks/device_prepare.sh    # also carries torchcodec 0.17.0 (10 MB; it runs beside the box's torch 2.11
#                                        # where FFmpeg's libraries exist); TORCHCODEC=torchcodec==X.Y another, TORCHCODEC= none
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.device/wheels CLIPS=.device/clips CONSTRAINTS=constraints/py312.txt
TORCHCODEC=${TORCHCODEC-torchcodec==0.17.0}
# What the benchmark imports and the box's image lacks (its package list: /work/.library/device/KINDS.md,
# read 2026-11-17), with their own dependencies that it lacks. Not snakemake: the benchmark does not need it.
PACKAGES="pydantic pydantic-core annotated-types typing-inspection jsonschema jsonschema-specifications referencing
rpds-py open-clip-torch ftfy wcwidth torchvggish resampy soundfile cffi pycparser decord zarr numcodecs donfig
google-crc32c msgspec ffmpeg-python future"
BOX="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning
lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson
ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
numba-cuda numpy numpyro nvidia-ml-py onnx onnxruntime opencv-python-headless optax opt-einsum packaging pandas
pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pytest python-dateutil pyyaml regex requests rich safetensors
scikit-image scikit-learn scipy seaborn sentencepiece setuptools shellingham six sortedcontainers statsmodels sympy
tabulate threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchvision tqdm transformers triton
typer typing-extensions typing-inspect urllib3 werkzeug wheel wrapt xarray xxhash yarl zipp"
PLATFORMS=""
for p in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
         manylinux_2_17 manylinux2014 manylinux2010 manylinux1; do PLATFORMS+=" --platform ${p}_x86_64"; done

rm -rf "$WHEELS"; mkdir -p "$WHEELS" "$CLIPS"
for name in $PACKAGES ${TORCHCODEC:+torchcodec}; do
  if [ "$name" = torchcodec ]; then pin=$TORCHCODEC
  else pin=$(grep -i "^${name}==" "$CONSTRAINTS") || { echo "$name is not pinned in $CONSTRAINTS" >&2; exit 1; }; fi
  if [ "$name" = torchvggish ]; then   # an sdist only: build its (pure-Python) wheel here
    python3 -m pip wheel -q --no-deps -w "$WHEELS" "$pin"
  else
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      $PLATFORMS -d "$WHEELS" "$pin"
  fi
done

# Every carried wheel's requirements are on the box or carried (else name them above).
python3 - "$WHEELS" "$BOX" <<'PY'
import re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
box_python = {"python_version": "3.12", "python_full_version": "3.12.3", "extra": ""}  # the box's Python
wheels = sorted(Path(sys.argv[1]).glob("*.whl"))
carried = {canonicalize_name(w.name.split("-")[0]) for w in wheels}
there = {canonicalize_name(n) for n in sys.argv[2].split()}
missing = set()
for wheel in wheels:
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:"):
            need = Requirement(line.split(":", 1)[1])
            if need.marker is not None and not need.marker.evaluate(box_python):
                continue   # an extra's, or another Python's
            if canonicalize_name(need.name) not in carried | there:
                missing.add(f"{need.name} (for {wheel.name.split('-')[0]})")
print(f"{len(wheels)} wheels; requirements neither carried nor on the box: {sorted(missing) or 'none'}")
PY

# The clips: benchmarks/decoders.py's crawled-looking encode, two moving pictures (device.py CLIP_KINDS).
PYTHONPATH=benchmarks${PYTHONPATH:+:$PYTHONPATH} python3 -c "
import decoders, device
from pathlib import Path
size = device.SIZES['full']
for kind in device.CLIP_KINDS:
    print(decoders.clip(Path('$CLIPS'), kind, size.clip_size, '25', size.clip_seconds))"

repo=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
wheels=$(du -cb "$WHEELS"/* | tail -1 | cut -f1); clips=$(du -cb "$CLIPS"/*.mp4 | tail -1 | cut -f1)
python3 -c "
r, w, c = $repo, $wheels, $clips
mib = 2 ** 20
print(f'carried: repository {r / mib:.1f} MiB + wheels {w / mib:.1f} MiB + clips {c / mib:.1f} MiB = '
      f'{(r + w + c) / mib:.1f} MiB of 64 MiB')"
