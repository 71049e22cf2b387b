"""Torch datasets over a preprocessing cache, and the positive-oversampling schedule."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ml.core.contrast import apply_input_contrast
from ml.core.model import to_input_tensor
from ml.training.cache import CachedSample


class CachedSegmentationDataset(Dataset):
    def __init__(self, samples: list[CachedSample], transform=None, label_from_mask: bool = False,
                 input_contrast: str = "none"):
        self.samples = samples
        self.transform = transform
        # The model's contrast step on the cached image (already at the model's resolution, as
        # the predictor resizes before it), before augmentation: ml.core.contrast.
        self.input_contrast = input_contrast
        # On crops the label is whether the crop shows a lesion: a positive image's crop away
        # from its pneumothorax holds nothing for the image-level head to find.
        self.label_from_mask = label_from_mask

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = cv2.imread(str(sample.image_path), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            raise FileNotFoundError(f"Cache entry {sample.image_id} is missing or unreadable")
        image = apply_input_contrast(image, self.input_contrast)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        mask = (mask > 127).astype(np.float32)
        # A site film with a true label but no outline (``has_mask`` False): its empty mask is a
        # placeholder, kept out of the pixel losses (``HybridLoss``); only the label teaches.
        has_mask = getattr(sample, "has_mask", True)
        label = bool(mask.any()) if self.label_from_mask and has_mask else sample.has_pneumothorax
        return {
            "image": to_input_tensor(image),
            "mask": torch.from_numpy(mask)[None],
            "label": torch.tensor(float(label)),
            "has_mask": torch.tensor(float(has_mask)),
            "index": index,
        }


def positive_fraction(epoch_progress: float, start: float, natural: float,
                      end: float | None = None) -> float:
    """Share of positives drawn per epoch: ``start`` at the beginning, decaying (cosine) to
    ``end`` (default the data's own share) at the end, so early epochs see enough lesions and
    late epochs see the true mix the operating point is calibrated on. ``start = end = 1``
    draws positives only (a fine-tune of the outline, ``--train-part decoder``)."""
    end = natural if end is None else end
    start = max(start, end)
    weight = 0.5 * (1 + math.cos(math.pi * min(max(epoch_progress, 0.0), 1.0)))
    return end + (start - end) * weight


def epoch_indices(labels: list[bool], fraction_positive: float, seed: int,
                  count: int | None = None) -> list[int]:
    """Indices for one epoch (``count``, default the dataset's size), drawn with replacement so
    that about ``fraction_positive`` of them are positives. Same seed, same list, on every process."""
    labels_tensor = torch.tensor(labels, dtype=torch.bool)
    n_positive = int(labels_tensor.sum())
    n_negative = len(labels) - n_positive
    if n_positive == 0 or n_negative == 0:
        weights = torch.ones(len(labels))
    else:
        weights = torch.where(labels_tensor, fraction_positive / n_positive,
                              (1 - fraction_positive) / n_negative)
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights, len(labels) if count is None else count, replacement=True,
                             generator=generator).tolist()
