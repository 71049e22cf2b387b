"""What the held-out patients score after an epoch, and the figure that selects the checkpoint.

The checkpoint is selected by ``challenge_22_tuned``: the challenge metric at 22% positives at
the best operating point of ``ml.core.operating_point.VALIDATION_GRID``, searched as
``ml.evaluate`` searches its finer grid. At a fixed 0.5 threshold an early model that calls
every image negative scores 0.78 and would be kept; the fixed-point figures are reported beside
it for the curves.
"""

from __future__ import annotations

import numpy as np
import torch

from ml.core import metrics
from ml.core.operating_point import VALIDATION_GRID, decision_dices, pixel_counts, search

FIXED_THRESHOLD = 0.5  # pixel and image threshold of the untuned figures


@torch.no_grad()
def validate(model, loader, loss_fn, device, autocast) -> dict:
    """Loss and figures of ``model`` on ``loader`` (batches of image, mask and label); ``autocast``
    makes the forward pass's context. The model is left in training mode."""
    model.eval()
    grid = VALIDATION_GRID
    losses, labels, scores, areas, intersections, truth_pixels, pixels = [], [], [], [], [], [], []
    for batch in loader:
        images, masks = batch["image"].to(device), batch["mask"].to(device)
        batch_labels = batch["label"].to(device)
        with autocast():
            mask_logits, class_logits = model(images)
        losses.append(float(loss_fn(mask_logits, class_logits, masks, batch_labels)["loss"]))
        probabilities = torch.sigmoid(mask_logits.float()).cpu().numpy()
        truth = masks.cpu().numpy() > 0
        for probability_map, truth_mask in zip(probabilities[:, 0], truth[:, 0]):
            # the mask the image would have if called positive; the call is made in the search
            area, intersection = pixel_counts(probability_map, truth_mask, grid.pixel_thresholds)
            areas.append(area)
            intersections.append(intersection)
            truth_pixels.append(int(truth_mask.sum()))
            pixels.append(truth_mask.size)
        labels.extend(batch_labels.cpu().numpy().astype(bool).tolist())
        scores.extend(torch.sigmoid(class_logits.float()).cpu().numpy().tolist())
    model.train()
    labels_array = np.array(labels, dtype=bool)
    areas, intersections = np.array(areas), np.array(intersections)
    truth_pixels, pixels = np.array(truth_pixels), np.array(pixels)
    both_classes = labels_array.any() and not labels_array.all()

    fixed = grid.pixel_thresholds.index(FIXED_THRESHOLD)
    dices = decision_dices(scores, areas[:, fixed], intersections[:, fixed], truth_pixels, pixels,
                           0.0, (FIXED_THRESHOLD,))[:, 0]
    _, tuned = search(labels_array, scores, areas, intersections, truth_pixels, pixels, grid)
    fraction_22 = metrics.CHALLENGE_POSITIVE_FRACTION if both_classes else None  # else the data's own mix
    return {  # a tiny (--limit) validation set may miss a class: no crash, NaN where undefined
        "val_loss": float(np.mean(losses)),
        "dice_positive": float(dices[labels_array].mean()) if labels_array.any() else float("nan"),
        "auc": metrics.roc_auc(scores, labels_array) if both_classes else float("nan"),
        "challenge": metrics.challenge_score(dices, labels_array),
        "challenge_22": metrics.challenge_score(dices, labels_array, fraction_22),
        "challenge_22_tuned": tuned,
    }
