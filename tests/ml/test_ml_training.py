"""The cache, a few training steps that lower the loss, ml.train end to end and under torchrun."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from conftest import TINY_SIZE

REPO = Path(__file__).parents[2]


def test_cache(tiny_cache, tiny_dataset):
    from ml.training.cache import INDEX_FIELDS, load_cache

    with open(tiny_cache / "index.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == INDEX_FIELDS
        rows = list(reader)
    assert len(rows) == 16
    assert {r["source_format"] for r in rows} == {"dicom", "jpeg", "png"}
    for sample in load_cache(tiny_cache):
        image = cv2.imread(str(sample.image_path), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE)
        assert image.shape == mask.shape == (TINY_SIZE, TINY_SIZE)
        assert set(mask.reshape(-1).tolist()) <= {0, 255}
        assert bool(mask.any()) == sample.has_pneumothorax


def few_steps(tiny_cache, bf16: bool = False, channels_last: bool = False,
              steps: int = 8) -> tuple[float, list[float]]:
    """The loss of the untrained model in eval mode (the encoder's ImageNet batch-norm
    statistics), then the losses of a few optimiser steps, on 4 tiny-cache images, from one seed."""
    from ml.core.model import build_model
    from ml.training.cache import load_cache
    from ml.training.losses import HybridLoss
    from ml.training.training_data import CachedSegmentationDataset

    torch.manual_seed(0)
    samples = load_cache(tiny_cache)
    chosen = [s for s in samples if s.has_pneumothorax][:2] + [s for s in samples if not s.has_pneumothorax][:2]
    data = CachedSegmentationDataset(chosen)
    batch = {key: torch.stack([torch.as_tensor(data[i][key]) for i in range(len(chosen))])
             for key in ("image", "mask", "label")}
    # 64 px keeps this quick on two busy cores; masks stay non-empty (area-max pooling)
    batch["image"] = torch.nn.functional.avg_pool2d(batch["image"], TINY_SIZE // 64)
    batch["mask"] = torch.nn.functional.max_pool2d(batch["mask"], TINY_SIZE // 64)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model("tf_efficientnet_lite0", pretrained=True).to(memory_format=memory_format).train()
    images = batch["image"].contiguous(memory_format=memory_format)
    loss_fn = HybridLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        mask_logits, class_logits = model(images)
    start = float(loss_fn(mask_logits.float(), class_logits.float(), batch["mask"], batch["label"])["loss"])
    model.train()
    losses = []
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            mask_logits, class_logits = model(images)
        loss = loss_fn(mask_logits, class_logits, batch["mask"], batch["label"])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return start, losses


def test_few_steps_lower_the_loss(tiny_cache):
    _, losses = few_steps(tiny_cache)
    assert min(losses[-3:]) < 0.85 * losses[0], losses


def test_bf16_channels_last_steps_lower_the_loss_like_fp32(tiny_cache):
    """The CPU fast path (bf16 autocast + channels-last) must learn like fp32: same start, a
    comparable fall. bf16 keeps 8 bits of mantissa, so the curves differ a little, not a lot.
    The start is compared in eval mode: in train mode, batch norm over 4 images of 64 px (2 x 2
    pixels deep in the encoder) amplifies bf16's rounding into a different first loss on some
    CPUs (cosine 0.95 between the two outputs on an AMX machine), which says nothing of training."""
    fp32_start, fp32 = few_steps(tiny_cache)
    bf16_start, bf16 = few_steps(tiny_cache, bf16=True, channels_last=True)
    assert bf16_start == pytest.approx(fp32_start, rel=0.02), (fp32_start, bf16_start)  # rounding only
    assert min(bf16[-3:]) < 0.85 * bf16[0], bf16
    fall_fp32, fall_bf16 = min(fp32[-3:]) / fp32[0], min(bf16[-3:]) / bf16[0]
    assert abs(fall_bf16 - fall_fp32) < 0.15, (fp32, bf16)


def test_precision_auto_takes_bf16_only_where_the_cpu_has_it():
    from ml.training.runtime import cpu_supports_bf16, use_bf16

    cpu = torch.device("cpu")
    assert use_bf16("auto", cpu) is cpu_supports_bf16()  # emulated bf16 is slower than fp32
    assert use_bf16("bf16", cpu) is True and use_bf16("fp32", cpu) is False


def test_lesion_biased_crops_show_the_lesion_and_label_the_crop(tiny_cache):
    from ml.training.augment import training_transform
    from ml.training.cache import load_cache
    from ml.training.training_data import CachedSegmentationDataset

    samples = load_cache(tiny_cache)
    positives = [s for s in samples if s.has_pneumothorax]
    on_lesion = CachedSegmentationDataset(positives, training_transform(TINY_SIZE, crop=32, lesion_crop_share=1.0),
                                          label_from_mask=True)
    for index in range(len(positives)):
        item = on_lesion[index]
        assert item["image"].shape == item["mask"].shape == (1, 32, 32)
        assert item["mask"].any() and item["label"] == 1.0
    # uniform crops of small lesions miss most of them, and then the crop's label says so
    uniform = CachedSegmentationDataset(positives * 4, training_transform(TINY_SIZE, crop=32, lesion_crop_share=0.0),
                                        label_from_mask=True)
    items = [uniform[i] for i in range(len(uniform))]
    assert all(bool(item["mask"].any()) == (item["label"] == 1.0) for item in items)
    assert any(item["label"] == 0.0 for item in items)


def test_crop_training_with_ema_and_fixed_held_out_patients(tiny_cache, tiny_dataset, tmp_path):
    """ml.train on 64 px crops of the 128 px cache: validation and the model file at the cache's
    whole-image size, the image-level head max-pooled (the same question on a crop and on the
    whole image), an EMA model beside it, and the held-out patients taken from a list."""
    from ml import train
    from ml.core.checkpoint import load_model, read_info
    from ml.training.cache import load_cache
    from ml.training.datasets import held_out_samples, load_folders
    from ml.training.runtime import cpu_supports_bf16

    samples = load_cache(tiny_cache)
    held_out = sorted({s.patient_id for s in samples})[:3]
    patients_file = tmp_path / "patients.txt"
    patients_file.write_text("".join(f"{p}\n" for p in held_out))
    out = tmp_path / "run"
    train.main(["--cache", str(tiny_cache), "--out", str(out), "--encoder", "tf_efficientnet_lite0",
                "--epochs", "1", "--batch-size", "4", "--crop", "64", "--ema", "0.5",
                "--validation-patients", str(patients_file), "--quiet"])
    info = read_info(out / "best.safetensors")
    assert info.image_size == TINY_SIZE and info.head_pooling == "max"
    config = info.training["config"]
    assert config["crop"] == 64 and config["validation_patients"] == held_out
    assert config["precision"] == ("bf16" if cpu_supports_bf16() else "fp32")
    model, _ = load_model(out / "best.safetensors")
    assert isinstance(model.unet.classification_head[0], torch.nn.AdaptiveMaxPool2d)
    written = (out / "validation_ids.txt").read_text().split()
    assert sorted(written) == sorted(s.image_id for s in samples if s.patient_id in held_out)
    assert sorted(s.image_id for s in held_out_samples(load_folders(tiny_dataset), config)) == sorted(written)

    ema, ema_info = load_model(out / "ema.safetensors")
    assert ema_info.head_pooling == "max" and ema_info.training["ema"] == 0.5
    assert any(not torch.equal(a, b) for a, b in zip(ema.state_dict().values(), model.state_dict().values())
               if a.is_floating_point())


def test_train_writes_its_outputs(tiny_model):
    from ml.core.checkpoint import read_info

    run = tiny_model.parent
    for name in ("metrics.csv", "curves.png", "validation_ids.txt", "last.pt"):
        assert (run / name).is_file(), name
    info = read_info(tiny_model)
    assert info.encoder == "tf_efficientnet_lite0" and info.image_size == TINY_SIZE
    assert info.training["config"]["val_fraction"] == 0.5
    assert info.version.startswith(f"unet-tf_efficientnet_lite0-{TINY_SIZE}px-")


def test_second_stage_starts_from_the_first_stages_weights(tiny_model):
    import torch

    from ml.core.checkpoint import load_model
    from ml.training.state import initial_weights

    shipped, _ = load_model(tiny_model)
    last = torch.load(tiny_model.parent / "last.pt", map_location="cpu", weights_only=False)["model"]
    from_model_file = initial_weights(str(tiny_model), "tf_efficientnet_lite0")
    from_last = initial_weights(str(tiny_model.parent / "last.pt"), "tf_efficientnet_lite0")
    for key, tensor in shipped.state_dict().items():
        assert torch.equal(from_model_file[key], tensor), key
        assert torch.equal(from_last[key], last[key]), key
    with pytest.raises(SystemExit, match="efficientnet-b3"):
        initial_weights(str(tiny_model), "efficientnet-b3")


def test_decoder_only_fine_tune_keeps_the_image_call_and_teaches_the_outline(tiny_cache, tiny_model, tmp_path):
    """--train-part decoder on positives only: encoder and image-level head (weights and norm
    statistics) come out exactly as they went in, the decoder moves, and the image-level score
    of a film is the starting model's."""
    import torch

    from ml import train
    from ml.core.checkpoint import load_model

    out = tmp_path / "decoder-only"
    train.main(["--cache", str(tiny_cache), "--out", str(out), "--encoder", "tf_efficientnet_lite0",
                "--init", str(tiny_model), "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.5",
                "--lr", "1e-2", "--positive-start", "1", "--positive-end", "1", "--train-part", "decoder",
                "--quiet"])
    before, _ = load_model(tiny_model)
    after, info = load_model(out / "epochs" / "epoch-01.safetensors")
    assert info.training["config"]["train_part"] == "decoder"
    old, new = before.state_dict(), after.state_dict()
    frozen = [k for k in old if k.startswith(("unet.encoder.", "unet.classification_head."))]
    assert any("running_mean" in k for k in frozen)
    for key in frozen:
        assert torch.equal(old[key], new[key]), key
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("unet.decoder."))
    images = torch.randn(2, 1, TINY_SIZE, TINY_SIZE)
    before.eval(), after.eval()
    with torch.no_grad():
        assert torch.equal(before(images)[1], after(images)[1])


def test_positives_only_schedule():
    from ml.training.training_data import positive_fraction

    assert [positive_fraction(p, 1.0, 0.3, end=1.0) for p in (0, 0.5, 1)] == [1.0, 1.0, 1.0]
    assert positive_fraction(1.0, 0.6, 0.3) == pytest.approx(0.3)
    assert positive_fraction(1.0, 0.6, 0.3, end=0.5) == pytest.approx(0.5)


@pytest.mark.ddp
def test_torchrun_two_cpu_processes(tiny_cache, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "ml.train", "--cache", str(tiny_cache), "--out", str(out), "--encoder", "tf_efficientnet_lite0",
         "--limit", "16", "--epochs", "1", "--batch-size", "2", "--val-fraction", "0.5", "--threads", "1",
         "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from ml.core.checkpoint import read_info

    info = read_info(out / "best.safetensors")
    assert info.training["config"]["world_size"] == 2
    assert info.training["validation"]["step"] == 2  # 8 training images / (2 processes x 2)


def test_export_of_the_training_state_is_a_loadable_model_file(tiny_model, tmp_path):
    import torch

    from ml.core.checkpoint import load_model
    from ml.training.state import export_training_state

    exported = tmp_path / "last.safetensors"
    info = export_training_state(tiny_model.parent / "last.pt", exported)
    model, loaded_info = load_model(exported)
    last = torch.load(tiny_model.parent / "last.pt", map_location="cpu", weights_only=False)["model"]
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point():  # stored as fp16
            torch.testing.assert_close(tensor, last[key].float(), atol=1e-3, rtol=1e-3)
    assert loaded_info.version == info.version and loaded_info.training["epoch"] == 1
    assert loaded_info.training["config"]["val_fraction"] == 0.5


def test_resuming_a_run_whose_time_is_up_adds_no_epoch(tiny_cache, tmp_path):
    import csv

    from ml import train

    args = ["--cache", str(tiny_cache), "--out", str(tmp_path), "--encoder", "tf_efficientnet_lite0",
            "--batch-size", "4", "--val-fraction", "0.5", "--quiet"]
    train.main(args + ["--epochs", "1"])
    first = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(first) == 1
    # more epochs allowed, but the run has already used more than its time cap
    train.main(args + ["--epochs", "3", "--max-minutes", "0.0001", "--resume"])
    assert list(csv.DictReader(open(tmp_path / "metrics.csv"))) == first


class FixedOutputs(torch.nn.Module):
    """Answers each image with given mask and class logits, in the order the loader sends them."""

    def __init__(self, mask_logits: torch.Tensor, class_logits: torch.Tensor):
        super().__init__()
        self.mask_logits, self.class_logits, self.seen = mask_logits, class_logits, 0

    def forward(self, images):
        n = images.shape[0]
        batch = slice(self.seen, self.seen + n)
        self.seen += n
        return self.mask_logits[batch], self.class_logits[batch]


def test_validation_selects_on_the_pixel_threshold_the_masks_need():
    """A model whose masks are right only above probability 0.9 scores badly at 0.5; the
    checkpoint score must find the threshold that makes it perfect, as ml.evaluate would."""
    import contextlib

    from ml.training.validation import validate

    size = 32
    truth = torch.zeros(4, 1, size, size)
    truth[0, 0, 8:16, 8:16] = 1
    truth[1, 0, 20:28, 4:12] = 1
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # probability 0.95 inside the lesion, 0.6 around it (wrong at 0.5), 0.01 elsewhere
    probabilities = torch.full((4, 1, size, size), 0.01)
    probabilities[0, 0, 4:20, 4:20] = 0.6
    probabilities[1, 0, 16:32, 0:16] = 0.6
    probabilities[truth.bool()] = 0.95
    model = FixedOutputs(torch.logit(probabilities), torch.logit(torch.tensor([0.9, 0.8, 0.1, 0.2])))
    loader = [{"image": torch.zeros(2, 1, size, size), "mask": truth[i:i + 2], "label": labels[i:i + 2]}
              for i in (0, 2)]

    def no_loss(*_):
        return {"loss": torch.tensor(0.0)}

    row = validate(model, loader, no_loss, "cpu", contextlib.nullcontext)
    assert row["auc"] == 1.0
    assert row["dice_positive"] == pytest.approx(0.4)  # at 0.5: 64 true pixels among 256 predicted
    assert row["challenge_22_tuned"] == pytest.approx(1.0)
