"""Train the pneumothorax U-Net on a preprocessing cache.

    python -m ml.train --cache cache/subset-256 --encoder tf_efficientnet_lite0 --out runs/lite0-256
    torchrun --nproc_per_node=2 -m ml.train ...        # several GPUs (or CPU processes, gloo)

Resumable: ``--resume`` continues from ``<out>/last.pt``, which is written every epoch and every
``--checkpoint-minutes``. ``--max-minutes`` caps wall time: the learning-rate schedule runs on
whichever is further along, the step count or the clock, so a capped run still anneals.
Writes ``metrics.csv``, ``curves.png``, ``best.safetensors`` (by validation challenge score at
the challenge's 22% positives, at the best image and pixel thresholds of a coarse grid) and ``validation_ids.txt``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ml import metrics
from ml.augment import training_transform
from ml.cache import load_cache
from ml.checkpoint import ModelInfo, load_model, save_model
from ml.datasets import read_patient_list, split_by_patient
from ml.losses import HybridLoss
from ml.model import PRETRAINED_PACKAGES, build_model
from ml.training_data import CachedSegmentationDataset, epoch_indices, positive_fraction

METRIC_FIELDS = ("epoch", "step", "elapsed_min", "lr", "train_loss", "val_loss", "dice_positive",
                 "auc", "challenge", "challenge_22", "challenge_22_tuned")
IMAGE_THRESHOLDS = np.linspace(0.05, 0.95, 19)
# A coarse version of ml.evaluate's pixel-threshold grid: a model whose masks are too wide at 0.5
# may be the best one at 0.9, and selecting at 0.5 alone would throw that checkpoint away.
PIXEL_THRESHOLDS = (0.5, 0.7, 0.9)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the pneumothorax U-Net on a cache (ml.cache).")
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--encoder", default="efficientnet-b3")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                   help="ImageNet encoder weights (default: on where offline weights exist)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--pixel-loss", choices=("bce", "focal"), default="bce")
    p.add_argument("--positive-start", type=float, default=0.6,
                   help="share of positives drawn in the first epoch (decays to the data's)")
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
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="also keep an exponential moving average of the weights (e.g. 0.999), "
                        "written as ema.safetensors each epoch")
    p.add_argument("--validation-patients", metavar="FILE",
                   help="fixed held-out patients, one id a line, instead of drawing them")
    return p.parse_args(argv)


def cpu_supports_bf16() -> bool:
    """Native bf16 matmuls through oneDNN (AVX-512 BF16 or AMX). Without them bf16 autocast
    is emulated and slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cuda" or (device.type == "cpu" and cpu_supports_bf16())


class Distributed:
    """Rank and world size; a no-op outside torchrun."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        else:
            self.device = torch.device("cpu")
        if self.world > 1:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def initial_weights(path: str, encoder: str) -> dict:
    """Weights to start from: a model file (.safetensors) or another run's ``last.pt``."""
    if str(path).endswith(".pt"):
        saved = torch.load(path, map_location="cpu", weights_only=False)
        found = saved["config"]["encoder"]
        weights = saved["model"]
    else:
        initial, info = load_model(path)
        found, weights = info.encoder, initial.state_dict()
    if found != encoder:
        raise SystemExit(f"--init {path} has encoder {found}, not {encoder}")
    return weights


def learning_rate(base: float, progress: float, warmup: float = 0.03) -> float:
    if progress < warmup:
        return base * max(progress / warmup, 0.02)
    return 1e-6 + (base - 1e-6) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def validate(model, loader, loss_fn, device, autocast) -> dict:
    model.eval()
    losses, labels, scores = [], [], []
    mask_dices = {threshold: [] for threshold in PIXEL_THRESHOLDS}
    for batch in loader:
        images, masks = batch["image"].to(device), batch["mask"].to(device)
        batch_labels = batch["label"].to(device)
        with autocast():
            mask_logits, class_logits = model(images)
        losses.append(float(loss_fn(mask_logits, class_logits, masks, batch_labels)["loss"]))
        probabilities = torch.sigmoid(mask_logits.float()).cpu().numpy()
        truth = masks.cpu().numpy()
        positive_image = torch.sigmoid(class_logits.float()).cpu().numpy()
        for threshold, dices in mask_dices.items():
            for i in range(images.shape[0]):
                # the Dice the image would score if called positive; gated by the label below
                dices.append(metrics.dice(probabilities[i, 0] >= threshold, truth[i, 0]))
        labels.extend(batch_labels.cpu().numpy().astype(bool).tolist())
        scores.extend(positive_image.tolist())
    model.train()
    labels_array, scores_array = np.array(labels, dtype=bool), np.array(scores)
    mask_dices_arrays = {threshold: np.array(dices) for threshold, dices in mask_dices.items()}
    both_classes = labels_array.any() and not labels_array.all()

    def gated_dices(image_threshold: float, pixel_threshold: float = 0.5) -> np.ndarray:
        # called negative: an empty prediction, Dice 1 on a negative and 0 on a positive
        return np.where(scores_array >= image_threshold, mask_dices_arrays[pixel_threshold],
                        (~labels_array).astype(float))

    def challenge_22(dices: np.ndarray) -> float:
        if not both_classes:
            return metrics.challenge_score(dices, labels_array)
        return metrics.challenge_score(dices, labels_array, metrics.CHALLENGE_POSITIVE_FRACTION)

    dices = gated_dices(0.5)
    return {  # a tiny (--limit) validation set may miss a class: no crash, NaN where undefined
        "val_loss": float(np.mean(losses)),
        "dice_positive": float(dices[labels_array].mean()) if labels_array.any() else float("nan"),
        "auc": metrics.roc_auc(scores, labels_array) if both_classes else float("nan"),
        "challenge": metrics.challenge_score(dices, labels_array),
        "challenge_22": challenge_22(dices),
        # At the best image and pixel thresholds: what selects the checkpoint. At a fixed 0.5
        # threshold an early model that calls every image negative scores 0.78 here and would be kept.
        "challenge_22_tuned": max(challenge_22(gated_dices(t, p))
                                  for t in IMAGE_THRESHOLDS for p in PIXEL_THRESHOLDS),
    }


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [row["train_loss"] for row in history], "o-", label="train loss")
    left.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation loss")
    left.set_xlabel("epoch"), left.set_title("loss"), left.legend()
    for key, label in (("dice_positive", "Dice, positives"), ("auc", "image AUC"),
                       ("challenge_22_tuned", "challenge metric @22%")):
        right.plot(epochs, [row[key] for row in history], "o-", label=label)
    right.set_xlabel("epoch"), right.set_ylim(0, 1), right.set_title("validation"), right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> Path:
    args = parse_args(argv)
    world = Distributed()
    device = world.device
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)

    samples = load_cache(args.cache)[: args.limit]
    size = cv2.imread(str(samples[0].image_path), cv2.IMREAD_GRAYSCALE).shape[0]
    fixed_patients = read_patient_list(args.validation_patients) if args.validation_patients else None
    train_samples, val_samples = split_by_patient(samples, args.val_fraction, args.seed, fixed_patients)
    if world.is_main:
        (out / "validation_ids.txt").write_text("".join(f"{s.image_id}\n" for s in val_samples))

    bf16 = use_bf16(args.precision, device)
    channels_last = args.channels_last if args.channels_last is not None else True
    head_pooling = args.head_pooling or ("max" if args.crop else "avg")
    pretrained = args.pretrained if args.pretrained is not None else args.encoder in PRETRAINED_PACKAGES
    model = build_model(args.encoder, pretrained=pretrained and not args.init, head_pooling=head_pooling)
    if args.init:
        model.load_state_dict(initial_weights(args.init, args.encoder))
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if world.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    bare_model = model.module if world.world > 1 else model
    ema = (torch.optim.swa_utils.AveragedModel(
        bare_model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema), use_buffers=True)
        if args.ema else None)
    loss_fn = HybridLoss(args.pixel_loss)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    workers = args.workers if args.workers is not None else (8 if device.type == "cuda" else 0)
    train_set = CachedSegmentationDataset(train_samples,
                                          training_transform(size, args.crop, args.lesion_crop_share),
                                          label_from_mask=bool(args.crop))
    val_loader = DataLoader(CachedSegmentationDataset(val_samples), batch_size=args.batch_size * 2,
                            num_workers=workers)
    labels = [s.has_pneumothorax for s in train_samples]
    natural = sum(labels) / len(labels)
    steps_per_epoch = math.ceil(len(train_set) / (args.batch_size * world.world))
    total_steps = steps_per_epoch * args.epochs

    state = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0, "history": [], "best": -1.0}
    last_path = out / "last.pt"
    if args.resume and last_path.exists():
        saved = torch.load(last_path, map_location=device, weights_only=False)
        bare_model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None and "ema" in saved:
            ema.load_state_dict(saved["ema"])
        state = saved["state"]
        if world.is_main:
            print(f"resumed from {last_path}: epoch {state['epoch']}, batch {state['batch']}")

    config = {k: v for k, v in vars(args).items()
              if k not in ("resume", "quiet", "out", "cache", "validation_patients")}
    config.update(precision="bf16" if bf16 else "fp32", channels_last=channels_last,
                  head_pooling=head_pooling, pretrained=pretrained, cache=str(args.cache), image_size=size, world_size=world.world,
                  train_images=len(train_samples), validation_images=len(val_samples))
    if fixed_patients is not None:
        config["validation_patients"] = sorted(set(fixed_patients))  # ml.evaluate holds out exactly these

    def save_state():
        if world.is_main:
            torch.save({"model": bare_model.state_dict(),
                        "optimizer": optimizer.state_dict(), "state": state, "config": config,
                        **({"ema": ema.state_dict()} if ema is not None else {})},
                       last_path.with_suffix(".tmp"))
            os.replace(last_path.with_suffix(".tmp"), last_path)

    started = time.monotonic() - state["elapsed"]
    last_saved = time.monotonic()
    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    out_of_time = False
    model.train()
    while state["epoch"] < args.epochs and not out_of_time:
        epoch = state["epoch"]
        fraction = positive_fraction(epoch / max(args.epochs - 1, 1), args.positive_start, natural)
        indices = epoch_indices(labels, fraction, seed=args.seed * 1000 + epoch)[world.rank::world.world]
        loader = DataLoader(Subset(train_set, indices), batch_size=args.batch_size,
                            num_workers=workers, shuffle=False, drop_last=len(indices) > args.batch_size)
        progress_bar = tqdm(total=len(loader), initial=state["batch"], desc=f"epoch {epoch + 1}/{args.epochs}",
                            disable=args.quiet or not world.is_main, unit="batch", dynamic_ncols=True)
        running = state.get("running", [])
        lr = None  # stays None if the time cap leaves no step to run in this epoch
        for batch_index, batch in enumerate(loader):
            if batch_index < state["batch"]:
                continue  # resuming mid-epoch: the index list is deterministic, skip what ran
            elapsed = time.monotonic() - started
            progress = state["step"] / total_steps
            if max_seconds:
                progress = max(progress, elapsed / max_seconds)
            if progress >= 1.0:
                out_of_time = True
                break
            lr = learning_rate(args.lr, progress)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = batch["image"].to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast():
                mask_logits, class_logits = model(images)
            losses = loss_fn(mask_logits, class_logits, batch["mask"].to(device), batch["label"].to(device))
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(bare_model)
            running.append(losses["loss"].item())
            state.update(step=state["step"] + 1, batch=batch_index + 1, running=running[-2000:],
                         elapsed=time.monotonic() - started)
            progress_bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}", lr=f"{lr:.1e}")
            progress_bar.update(1)
            if time.monotonic() - last_saved > args.checkpoint_minutes * 60:
                save_state()
                last_saved = time.monotonic()
        progress_bar.close()
        if lr is None:
            break  # resumed a run whose time was already up: nothing new to validate or save

        world.barrier()
        if world.is_main:
            row = {"epoch": epoch + 1, "step": state["step"], "elapsed_min": round(state["elapsed"] / 60, 2),
                   "lr": lr, "train_loss": float(np.mean(running)) if running else float("nan")}
            # the bare module: a DDP forward on rank 0 alone would wait for the others (buffer sync)
            row.update(validate(bare_model, val_loader, loss_fn, device,
                                autocast))
            state["history"].append(row)
            write_metrics(state["history"], out / "metrics.csv")
            plot_curves(state["history"], out / "curves.png")
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
            if row["challenge_22_tuned"] > state["best"]:
                state["best"] = row["challenge_22_tuned"]
                info = ModelInfo(encoder=args.encoder, image_size=size, head_pooling=head_pooling,
                                 training={"config": config, "epoch": epoch + 1, "validation": row})
                save_model(out / "best.safetensors", model, info)
            if ema is not None:  # judged afterwards by ml.evaluate on the calibration half
                save_model(out / "ema.safetensors", ema.module,
                           ModelInfo(encoder=args.encoder, image_size=size, head_pooling=head_pooling,
                                     training={"config": config, "epoch": epoch + 1, "ema": args.ema}))
        state.update(epoch=epoch + 1, batch=0, running=[])
        save_state()
        last_saved = time.monotonic()
        world.barrier()
    world.close()
    return out / "best.safetensors"


def write_metrics(history: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


if __name__ == "__main__":
    main()
