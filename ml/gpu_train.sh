#!/usr/bin/env bash
# One command on a GPU machine (the device tool runs it from the repository root):
#
#     bash ml/gpu_train.sh            # carry: .whl, with cache/subset-512 already there
#
# Builds the 512 px cache if it is absent (needs the shared data beside the repository), trains
# efficientnet-b3 (from scratch) and tf_efficientnet_lite0 (ImageNet; ENCODERS changes them) at
# 512 px with bf16 autocast (ml.train turns it on for CUDA) under a wall-time cap that keeps the
# whole command inside 10 minutes, evaluates each model where the original images are present,
# and leaves every model file plus the best one (by validation challenge metric at 22%) in $OUT.
#
# Prepare the cache and the wheels the device lacks on the CPU machine first: bash ml/gpu_prepare.sh
# (it says how to carry them). Or build only the cache (about 41 MB at quality 75):
#     python -m ml.cache --layout subset --root ../shared/data/siim-acr-subset --size 512 --quality 75 --out cache/subset-512
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT=${OUT:-runs/gpu}
DATA=${DATA:-../shared/data/siim-acr-subset}
CACHE=${CACHE:-cache/subset-512}
MINUTES=${MINUTES:-3.5}        # training minutes per encoder (2 encoders + validation + startup < 10 min)
# B3 (the reference, from scratch) against Lite0 (ImageNet) under the same budget. Lite2's
# weights package (24 MB) does not fit the device tool's 64 MiB beside the cache.
ENCODERS=${ENCODERS:-"efficientnet-b3 tf_efficientnet_lite0"}
# Start an encoder from the shipped model when it has that encoder (progressive resizing: the
# CPU-trained 256/384 px weights are a better start at 512 px than ImageNet). INIT= turns it off.
INIT=${INIT-ml/weights/pneumothorax-unet.safetensors}
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then   # see ml/gpu_prepare.sh
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if [ ! -f "$CACHE/index.csv" ]; then
    if [ ! -f "$DATA/labels.csv" ]; then
        echo "no cache at $CACHE and no data at $DATA: build the cache first and carry it" >&2
        exit 1
    fi
    "$PY" -m ml.cache --layout subset --root "$DATA" --size 512 --quality 75 --workers "$(nproc)" --out "$CACHE"
fi

for encoder in $ENCODERS; do
    run="$OUT/${encoder}-512"
    init=()
    if [ -n "$INIT" ] && [ -f "$INIT" ] && [ "$("$PY" -c "import sys; from ml.core.checkpoint import read_info; print(read_info(sys.argv[1]).encoder)" "$INIT")" = "$encoder" ]; then
        init=(--init "$INIT")
        echo "$encoder: starting from $INIT"
    fi
    # The held-out patients of the shipped models (ml/splits/): a split redrawn on the grown
    # subset would put some of their training patients into validation.
    "$PY" -m ml.train --cache "$CACHE" --encoder "$encoder" --out "$run" "${init[@]}" \
        --validation-patients ml/splits/siim-acr-subset-validation-patients.txt --ema 0.998 \
        --epochs 30 --max-minutes "$MINUTES" --batch-size 16 --workers 8 --quiet
    rm -f "$run/last.pt"   # optimiser state: large, and not needed to ship
    if [ -f "$DATA/labels.csv" ]; then
        "$PY" -m ml.evaluate --model "$run/best.safetensors" --layout subset --root "$DATA" \
            --out "$run/eval" --device cuda --set-operating-point --quiet
    else
        echo "original images not here: evaluate $run/best.safetensors on the CPU machine"
    fi
done

# the best by validation challenge metric at 22% positives, as recorded in each model file
"$PY" - "$OUT" $ENCODERS <<'PYTHON'
import shutil, sys
from pathlib import Path
from ml.core.checkpoint import read_info
out, encoders = Path(sys.argv[1]), sys.argv[2:]
scores = {}
for encoder in encoders:
    path = out / f"{encoder}-512" / "best.safetensors"
    if path.exists():
        info = read_info(path)
        test = info.evaluation.get("test", {})
        # the figure ml.train selected its checkpoint by: at 0.5, an all-negative model scores 0.78
        scores[path] = test.get("challenge_22") or info.training["validation"]["challenge_22_tuned"]
        print(f"{encoder}: {scores[path]:.4f} ({'test half' if test else 'training validation'})")
best = max(scores, key=scores.get)
shutil.copy(best, out / "pneumothorax-unet.safetensors")
print(f"best: {best} -> {out / 'pneumothorax-unet.safetensors'}")
PYTHON
