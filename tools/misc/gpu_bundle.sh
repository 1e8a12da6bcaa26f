#!/usr/bin/env bash
# Download into .gpu_bundle/ what the lent GPU machine lacks (docs/install.md, "When a GPU is
# lent"): wheels for CPython 3.12 manylinux x86_64 and the mmcv 2.1.0 sdist, which
# tools/misc/gpu_check.sh installs and builds there (it has no network). Runs here, with the
# package registries; fails if the bundle exceeds 60 MiB (64 MiB travel with a command).
#   bash tools/misc/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=.gpu_bundle
LIMIT_MIB=60
PY=${PYTHON:-.venv/bin/python}
# This machine's pip configuration caps torch; the GPU machine brings its own torch anyway.
export PIP_CONSTRAINT=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
# What the GPU machine has: torch, torchvision, numpy, opencv-python-headless, scipy, matplotlib,
# pillow, regex, rich, einops, onnx, onnxruntime, onnxscript, safetensors, scikit-image,
# transformers, pyyaml, tqdm, pytest, packaging and their dependencies. The rest was read from
# the imports of `import mmseg_ext` and of the check's steps: the OpenMMLab packages and the
# requirements they import, at the versions of requirements/*.txt ...
PINNED=(mmengine mmsegmentation mmdet mmpretrain ftfy prettytable terminaltables pycocotools
        shapely imagecorruptions cityscapesscripts mat4py)
# ... and what those import in turn (requirements/ leaves them to pip), mmcv's build requirement
# setuptools<82 (its setup.py imports pkg_resources) and wheel. model-index provides the module
# modelindex (requirements' modelindex==0.0.2 is an alias that depends on it).
PINS=(
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0 wcwidth==0.9.5
  panopticapi-lite==0.2.0 pyquaternion==0.9.9 model-index==0.1.11 ordered-set==4.1.0
  markdown==3.11.4 importlib-metadata==10.2.0 zipp==4.1.2 lazy-importer==0.1.0
  setuptools==81.0.0 wheel==0.48.0
)
for name in "${PINNED[@]}"; do
  pin=$(grep -hi "^$name==" requirements/*.txt) ||
    { echo "[gpu_bundle] no $name==VERSION in requirements/*.txt" >&2; exit 1; }
  PINS+=("$pin")
done
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$BUNDLE" "${PINS[@]}"
# mmcv 2.1.0 has no wheels on the registry: its sdist (pip needs torch importable for it).
"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUNDLE" mmcv==2.1.0
ls -1 "$BUNDLE"
size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "[gpu_bundle] $(ls "$BUNDLE" | wc -l) files, $((size_kib / 1024)) MiB in $BUNDLE"
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "[gpu_bundle] over $LIMIT_MIB MiB: only 64 MiB travel to the GPU machine; drop a package" \
       "from PINS in $0" >&2
  exit 1
fi
