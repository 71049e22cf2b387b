"""One training run as an object: its data, model, optimiser and EMA, advanced an epoch at a time.

``Trainer.fit`` runs epochs until ``--epochs`` or the wall-time cap: ``train_epoch`` (the
optimiser steps; resumable mid-epoch, since each epoch's index list is drawn from the seed),
then, on the main process, ``validate`` and ``record_epoch`` (metrics, curves, the best and the
EMA model files), then ``save_state``. The learning-rate schedule runs on whichever is further
along, the step count or the clock, so a run capped by ``--max-minutes`` still anneals.
Built from the arguments of ``python -m ml.train``, which describes the options and the outputs.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Subset
from tqdm import tqdm

from ml.core.checkpoint import CheckpointError, ModelInfo, read_info, save_model
from ml.core.model import PRETRAINED_PACKAGES, build_model
from ml.training.augment import training_transform
from ml.training.cache import build_cache, load_cache
from ml.training.datasets import held_out_samples, read_patient_list, split_by_patient
from ml.training.feedback import (FeedbackError, load_site_films, mixed_epoch_indices, mixed_epoch_size,
                                  split_site_films)
from ml.training.history import plot_curves, write_metrics
from ml.training.losses import HybridLoss
from ml.training.runtime import Distributed, use_bf16
from ml.serving.inference import configured_model_path
from ml.training.state import (initial_weights, load_training_state, model_info_of_config,
                               save_training_state)
from ml.training.training_data import CachedSegmentationDataset, epoch_indices, positive_fraction
from ml.training.validation import validate

# Options that say where the run reads and writes, or how it talks: not part of its config.
UNRECORDED_OPTIONS = ("resume", "quiet", "out", "cache", "validation_patients")
FINE_TUNING_LR = 1e-4  # --feedback's default: a fifth of a first run's, as stage 7 used


def learning_rate(base: float, progress: float, warmup: float = 0.03) -> float:
    if progress < warmup:
        return base * max(progress / warmup, 0.02)
    return 1e-6 + (base - 1e-6) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class Trainer:
    def __init__(self, args: argparse.Namespace, world: Distributed):
        self.args, self.world, self.device = args, world, world.device
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        self.out = Path(args.out)
        if world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.last_path = self.out / "last.pt"
        self.init_info = self._resolve_defaults()
        self._split_data()
        self._split_site_films()
        self._build_model()
        self._build_loaders()
        self.state = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0, "history": [], "best": -1.0}
        self.config = self._config()

    def _resolve_defaults(self) -> ModelInfo | None:
        """Defaults that depend on the model started from. A fine-tune (``--feedback``) starts
        from ``--init`` (the registry's active file), else from the file the workers are
        configured with (``PNEUMOTHORAX_MODEL``, by default the shipped one), and keeps its
        encoder and head; a first run trains ``efficientnet-b3``."""
        args = self.args
        if args.feedback and not 0.0 < args.feedback_fraction < 1.0:
            raise SystemExit(f"--feedback-fraction must be between 0 and 1, not {args.feedback_fraction}")
        if args.feedback and not args.init:
            args.init = str(configured_model_path())
        info = None
        if args.init and not str(args.init).endswith(".pt"):
            try:
                info = read_info(args.init)
            except CheckpointError as exc:
                raise SystemExit(f"--init: {exc}") from None
        elif args.init:
            config = load_training_state(args.init)["config"]
            info = model_info_of_config(config, training={"config": config})
        if args.encoder is None:
            args.encoder = info.encoder if info else "efficientnet-b3"
        if args.head_pooling is None and info is not None and args.feedback:
            args.head_pooling = info.head_pooling
        if args.input_contrast is None:  # a network reads films as it was trained to
            args.input_contrast = info.input_contrast if info else "none"
        if args.lr is None:
            args.lr = FINE_TUNING_LR if args.feedback else 5e-4
        return info

    def _held_out_of_init(self, samples) -> list[str]:
        """The shared held-out patients of the model being fine-tuned: the list it records, or its
        split recomputed, so that a fine-tune never trains on films its ancestor was scored on."""
        config = self.init_info.training.get("config", {}) if self.init_info else {}
        if "validation_patients" in config:
            return list(config["validation_patients"])  # all of them, in this cache or not
        if "val_fraction" not in config:
            raise SystemExit(f"--init {self.args.init} records no held-out patients: pass --validation-patients")
        return sorted({s.patient_id for s in held_out_samples(samples, config)})

    def _split_data(self) -> None:
        args = self.args
        samples = load_cache(args.cache)[: args.limit]
        self.size = cv2.imread(str(samples[0].image_path), cv2.IMREAD_GRAYSCALE).shape[0]
        self.fixed_patients = read_patient_list(args.validation_patients) if args.validation_patients else None
        if self.fixed_patients is None and args.feedback:
            self.fixed_patients = self._held_out_of_init(samples)
        self.train_samples, self.val_samples = split_by_patient(samples, args.val_fraction, args.seed,
                                                                self.fixed_patients)
        if args.feedback and not self.val_samples:
            raise SystemExit(f"No held-out patient of {args.init} is in {args.cache}: fine-tune on the "
                             "cache of the data it was trained on, or pass --validation-patients")
        if self.world.is_main:
            (self.out / "validation_ids.txt").write_text("".join(f"{s.image_id}\n" for s in self.val_samples))

    def _split_site_films(self) -> None:
        """``--feedback``: the site's films split by patient (``ml.training.feedback``); the
        training part cached at the shared cache's size in ``<out>/site-cache``. The held-out
        part is never read here: only ``ml.evaluate --feedback`` reads it."""
        args = self.args
        self.site_train, self.site_held_out, self.site_manifest = [], [], {}
        if not args.feedback:
            return
        try:
            films, self.site_manifest = load_site_films(args.feedback)
            train, self.site_held_out = split_site_films(films, args.feedback_holdout)
        except FeedbackError as exc:
            raise SystemExit(str(exc)) from None
        if not train:
            raise SystemExit(f"No site film to train on in {args.feedback} ({len(films)} films, "
                             f"{len(self.site_held_out)} held out)")
        site_cache = self.out / "site-cache"
        if self.world.is_main:
            build_cache(train, site_cache, self.size, workers=1)
        self.world.barrier()
        self.site_train = load_cache(site_cache)

    def _build_model(self) -> None:
        args, device = self.args, self.device
        self.bf16 = use_bf16(args.precision, device)
        self.channels_last = args.channels_last if args.channels_last is not None else True
        self.head_pooling = args.head_pooling or ("max" if args.crop else "avg")
        self.pretrained = args.pretrained if args.pretrained is not None else args.encoder in PRETRAINED_PACKAGES
        model = build_model(args.encoder, pretrained=self.pretrained and not args.init, head_pooling=self.head_pooling)
        if args.init:
            model.load_state_dict(initial_weights(args.init, args.encoder))
        if args.train_part == "decoder":
            model.freeze_image_call()
        model = model.to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.bare_model = model  # unwrapped: what is saved, averaged and validated
        if self.world.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        self.ema = (torch.optim.swa_utils.AveragedModel(
            self.bare_model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema), use_buffers=True)
            if args.ema else None)
        self.loss_fn = HybridLoss(args.pixel_loss)

    def _build_loaders(self) -> None:
        args = self.args
        self.workers = args.workers if args.workers is not None else (8 if self.device.type == "cuda" else 0)
        transform = training_transform(self.size, args.crop, args.lesion_crop_share)
        contrast = args.input_contrast
        self.train_set = CachedSegmentationDataset(self.train_samples, transform, label_from_mask=bool(args.crop),
                                                   input_contrast=contrast)
        epoch_size = len(self.train_set)
        if self.site_train:  # the site's films after the shared ones: indices past len(shared)
            self.train_set = ConcatDataset([self.train_set, CachedSegmentationDataset(
                self.site_train, transform, label_from_mask=bool(args.crop), input_contrast=contrast)])
            epoch_size = mixed_epoch_size(len(self.site_train), args.feedback_fraction)
        self.val_loader = DataLoader(CachedSegmentationDataset(self.val_samples, input_contrast=contrast),
                                     batch_size=args.batch_size * 2,
                                     num_workers=self.workers)
        self.labels = [s.has_pneumothorax for s in self.train_samples]
        self.natural = sum(self.labels) / len(self.labels)
        steps_per_epoch = math.ceil(epoch_size / (args.batch_size * self.world.world))
        self.total_steps = steps_per_epoch * args.epochs

    def _config(self) -> dict:
        """What the model files record of the run; ``ml.evaluate`` recomputes the split from it."""
        args = self.args
        config = {k: v for k, v in vars(args).items() if k not in UNRECORDED_OPTIONS}
        config.update(precision="bf16" if self.bf16 else "fp32", channels_last=self.channels_last,
                      head_pooling=self.head_pooling, pretrained=self.pretrained, cache=str(args.cache),
                      image_size=self.size, world_size=self.world.world,
                      train_images=len(self.train_samples), validation_images=len(self.val_samples))
        if self.fixed_patients is not None:
            config["validation_patients"] = sorted(set(self.fixed_patients))  # ml.evaluate holds out exactly these
        if args.feedback:  # counts and the export's date only: no patient key leaves the site's data
            config["site"] = {"export": self.site_manifest.get("exported_at"),
                              "train_images": len(self.site_train),
                              "train_patients": len({s.patient_id for s in self.site_train}),
                              "held_out_images": len(self.site_held_out),
                              "held_out_patients": len({s.patient_id for s in self.site_held_out}),
                              "label_only_train_images": sum(not s.has_mask for s in self.site_train),
                              "init_version": self.init_info.version if self.init_info else None}
        return config

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def resume(self) -> None:
        """Continue from ``last.pt`` where ``--resume`` asks and one exists."""
        if not (self.args.resume and self.last_path.exists()):
            return
        saved = load_training_state(self.last_path, self.device)
        self.bare_model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.ema is not None and "ema" in saved:
            self.ema.load_state_dict(saved["ema"])
        self.state = saved["state"]
        if self.world.is_main:
            print(f"resumed from {self.last_path}: epoch {self.state['epoch']}, batch {self.state['batch']}")

    def save_state(self) -> None:
        if self.world.is_main:
            save_training_state(self.last_path, {
                "model": self.bare_model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "state": self.state, "config": self.config,
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})})
        self.last_saved = time.monotonic()

    def fit(self) -> Path:
        """Train to the last epoch or the time cap; the path of the best model file."""
        self.resume()
        self.started = time.monotonic() - self.state["elapsed"]
        self.last_saved = time.monotonic()
        self.out_of_time = False
        self.model.train()
        while self.state["epoch"] < self.args.epochs and not self.out_of_time:
            trained = self.train_epoch()
            if trained is None:
                break  # resumed a run whose time was already up: nothing new to validate or save
            self.world.barrier()
            if self.world.is_main:
                self.record_epoch(*trained, self.validate())
            self.state.update(epoch=self.state["epoch"] + 1, batch=0, running=[])
            self.save_state()
            self.world.barrier()
        self.world.close()
        return self.out / "best.safetensors"

    def train_epoch(self) -> tuple[float, float] | None:
        """The optimiser steps of one epoch: (last learning rate, mean training loss), or None where
        the time cap left no step to run. Stops early, setting ``out_of_time``, at the cap."""
        args, state, world = self.args, self.state, self.world
        epoch = state["epoch"]
        fraction = positive_fraction(epoch / max(args.epochs - 1, 1), args.positive_start, self.natural,
                                     args.positive_end)
        seed = args.seed * 1000 + epoch
        if self.site_train:
            indices = mixed_epoch_indices(self.labels, len(self.site_train), args.feedback_fraction, fraction, seed)
        else:
            indices = epoch_indices(self.labels, fraction, seed=seed)
        indices = indices[world.rank::world.world]
        loader = DataLoader(Subset(self.train_set, indices), batch_size=args.batch_size,
                            num_workers=self.workers, shuffle=False, drop_last=len(indices) > args.batch_size)
        progress_bar = tqdm(total=len(loader), initial=state["batch"], desc=f"epoch {epoch + 1}/{args.epochs}",
                            disable=args.quiet or not world.is_main, unit="batch", dynamic_ncols=True)
        max_seconds = args.max_minutes * 60 if args.max_minutes else None
        running = state.get("running", [])
        lr = None
        for batch_index, batch in enumerate(loader):
            if batch_index < state["batch"]:
                continue  # resuming mid-epoch: the index list is deterministic, skip what ran
            progress = state["step"] / self.total_steps
            if max_seconds:
                progress = max(progress, (time.monotonic() - self.started) / max_seconds)
            if progress >= 1.0:
                self.out_of_time = True
                break
            lr = learning_rate(args.lr, progress)
            running.append(self.step(batch, lr))
            state.update(step=state["step"] + 1, batch=batch_index + 1, running=running[-2000:],
                         elapsed=time.monotonic() - self.started)
            progress_bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}", lr=f"{lr:.1e}")
            progress_bar.update(1)
            if time.monotonic() - self.last_saved > args.checkpoint_minutes * 60:
                self.save_state()
        progress_bar.close()
        if lr is None:
            return None
        return lr, float(np.mean(running)) if running else float("nan")

    def step(self, batch: dict, lr: float) -> float:
        """One optimiser step at learning rate ``lr``; its loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = batch["image"].to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            mask_logits, class_logits = self.model(images)
        losses = self.loss_fn(mask_logits, class_logits, batch["mask"].to(self.device),
                              batch["label"].to(self.device), batch["has_mask"].to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.bare_model)
        return losses["loss"].item()

    def validate(self) -> dict:
        # the bare module: a DDP forward on rank 0 alone would wait for the others (buffer sync)
        return validate(self.bare_model, self.val_loader, self.loss_fn, self.device, self.autocast)

    def record_epoch(self, lr: float, train_loss: float, figures: dict) -> dict:
        """The epoch's row in the history, ``metrics.csv`` and ``curves.png``; ``best.safetensors``
        where the row beats every earlier one; ``epochs/epoch-NN.safetensors`` and
        ``ema.safetensors`` each epoch."""
        state, epoch = self.state, self.state["epoch"] + 1
        row = {"epoch": epoch, "step": state["step"], "elapsed_min": round(state["elapsed"] / 60, 2),
               "lr": lr, "train_loss": train_loss, **figures}
        state["history"].append(row)
        write_metrics(state["history"], self.out / "metrics.csv")
        plot_curves(state["history"], self.out / "curves.png")
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              flush=True)
        if row["challenge_22_tuned"] > state["best"]:
            state["best"] = row["challenge_22_tuned"]
            save_model(self.out / "best.safetensors", self.model,
                       self.model_info(training={"config": self.config, "epoch": epoch, "validation": row}))
        # Every epoch's weights too, so that the last few can be averaged afterwards (ml.average).
        save_model(self.out / "epochs" / f"epoch-{epoch:02d}.safetensors", self.model,
                   self.model_info(training={"config": self.config, "epoch": epoch, "validation": row}))
        if self.ema is not None:  # judged afterwards by ml.evaluate on the calibration half
            save_model(self.out / "ema.safetensors", self.ema.module,
                       self.model_info(training={"config": self.config, "epoch": epoch, "ema": self.args.ema}))
        return row

    def model_info(self, training: dict) -> ModelInfo:
        info = ModelInfo(encoder=self.args.encoder, image_size=self.size, head_pooling=self.head_pooling,
                         input_contrast=self.args.input_contrast, training=training)
        if self.args.feedback and self.init_info is not None:
            # A fine-tune serves at its parent's point until ml.evaluate --set-operating-point
            # chooses its own; the parent's figures are not carried: they are not this model's.
            info.operating_point = self.init_info.operating_point
        return info
