"""Train the pneumothorax U-Net on a preprocessing cache.

    python -m ml.train --cache cache/subset-256 --encoder tf_efficientnet_lite0 --out runs/lite0-256
    torchrun --nproc_per_node=2 -m ml.train ...        # several GPUs (or CPU processes, gloo)

Resumable: ``--resume`` continues from ``<out>/last.pt``, which is written every epoch and every
``--checkpoint-minutes``. ``--max-minutes`` caps wall time: the learning-rate schedule runs on
whichever is further along, the step count or the clock, so a capped run still anneals.
Writes ``metrics.csv``, ``curves.png``, ``best.safetensors`` (by validation challenge score at
the challenge's 22% positives, at the best image and pixel thresholds of a coarse grid) and ``validation_ids.txt``.

Fine-tuning on this site's films (``docs/model/site-fine-tuning.md``)::

    python -m ml.train --cache cache/subset-512 --feedback export/ --init ACTIVE.safetensors \
        --epochs 3 --out runs/site-2026-12

``--feedback DIR`` (``manage.py export_feedback --out-dir DIR``) starts from ``--init`` (default:
the served model, ``PNEUMOTHORAX_MODEL`` or the shipped file), keeps its encoder, head and the
shared held-out patients it records, holds out about ``--feedback-holdout`` of the site's
patients (by a hash of the patient key: ``ml.training.feedback``), and makes every epoch
``--feedback-fraction`` site films and the rest shared films, so that it does not forget.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ml.core.contrast import INPUT_CONTRASTS
from ml.training.runtime import Distributed
from ml.training.trainer import Trainer


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the pneumothorax U-Net on a cache (ml.cache).")
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--encoder", default=None,
                   help="default: the --init model's, else efficientnet-b3")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                   help="ImageNet encoder weights (default: on where offline weights exist)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default 5e-4; 1e-4 with --feedback")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--pixel-loss", choices=("bce", "focal"), default="bce")
    p.add_argument("--positive-start", type=float, default=0.6,
                   help="share of positives drawn in the first epoch (decays to --positive-end)")
    p.add_argument("--positive-end", type=float, default=None,
                   help="share of positives drawn in the last epoch (default: the data's own share)")
    p.add_argument("--train-part", choices=("all", "decoder"), default="all",
                   help="decoder: the encoder and the image-level head frozen (norms included), so "
                        "the image-level score stays the --init model's and only the outline learns")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N cached images")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--workers", type=int, default=None, help="data loader processes")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", metavar="MODEL_FILE",
                   help="start from a model file or a run's last.pt (a second, lower-lr stage)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="bf16 autocast; auto: on CUDA and on CPUs with native bf16 (AVX-512 BF16/AMX)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: on; 1.26x faster in fp32 on an AVX2 CPU too)")
    p.add_argument("--crop", type=int, default=None,
                   help="train on random CROP px windows of the cache's images; validate on whole images")
    p.add_argument("--lesion-crop-share", type=float, default=0.5,
                   help="share of crops placed on the lesion where an image has one")
    p.add_argument("--head-pooling", choices=("avg", "max"), default=None,
                   help="image-level head pooling (default: max with --crop, else avg)")
    p.add_argument("--input-contrast", choices=INPUT_CONTRASTS, default=None,
                   help="the contrast step every film gets before the network, in training and in "
                        "serving (ml.core.contrast; default: the --init model's, else none)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="also keep an exponential moving average of the weights (e.g. 0.999), "
                        "written as ema.safetensors each epoch")
    p.add_argument("--validation-patients", metavar="FILE",
                   help="fixed held-out patients, one id a line, instead of drawing them "
                        "(default with --feedback: the ones the --init model records)")
    p.add_argument("--feedback", metavar="DIR",
                   help="fine-tune on this site's films (manage.py export_feedback --out-dir), "
                        "from --init (default: the served model)")
    p.add_argument("--feedback-fraction", type=float, default=0.3,
                   help="share of each epoch's samples that are site films; the rest are shared "
                        "training films, so that the model does not forget")
    p.add_argument("--feedback-holdout", type=float, default=0.2,
                   help="share of the site's patients held out for ml.evaluate --feedback (by a "
                        "hash of the patient key: never trained on)")
    return p.parse_args(argv)


def main(argv=None) -> Path:
    """Train as the arguments say; the path of the best model file (``best.safetensors``)."""
    return Trainer(parse_args(argv), Distributed()).fit()


if __name__ == "__main__":
    main()
