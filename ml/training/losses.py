"""Hybrid loss for a small, rare target: BCE (or focal) + soft Dice on the mask, BCE on the label.

Pixel BCE alone is dominated by the background (a positive mask is a median 0.8% of the image);
Dice is indifferent to the background's size. The Dice term is computed over the positive
images of the batch only: on an empty mask, soft Dice rewards nothing but an all-zero
prediction, which the BCE term already teaches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    probabilities = torch.sigmoid(logits).flatten(1)
    targets = targets.flatten(1)
    positive = targets.sum(1) > 0
    if not positive.any():
        return logits.sum() * 0.0
    probabilities, targets = probabilities[positive], targets[positive]
    intersection = (probabilities * targets).sum(1)
    dice = (2 * intersection + eps) / (probabilities.sum(1) + targets.sum(1) + eps)
    return 1 - dice.mean()


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_true = torch.exp(-bce)
    return ((1 - p_true) ** gamma * bce).mean()


class HybridLoss(torch.nn.Module):
    def __init__(self, pixel_loss: str = "bce", dice_weight: float = 1.0, class_weight: float = 0.5):
        super().__init__()
        if pixel_loss not in ("bce", "focal"):
            raise ValueError("pixel_loss must be 'bce' or 'focal'")
        self.pixel_loss = pixel_loss
        self.dice_weight = dice_weight
        self.class_weight = class_weight

    def forward(self, mask_logits, class_logits, masks, labels, has_mask=None) -> dict[str, torch.Tensor]:
        """``has_mask`` (one value per image, default all true): images whose mask is only a
        placeholder (a site film with a true label but no outline) are left out of the pixel and
        Dice terms; an empty mask there would teach that a positive film shows nothing."""
        mask_logits, class_logits = mask_logits.float(), class_logits.float()
        label = F.binary_cross_entropy_with_logits(class_logits, labels)
        if has_mask is not None:
            outlined = has_mask.bool().reshape(-1)
            if not outlined.any():
                zero = mask_logits.sum() * 0.0
                return {"loss": self.class_weight * label + zero, "pixel": zero.detach(),
                        "dice": zero.detach(), "label": label.detach()}
            mask_logits, masks = mask_logits[outlined], masks[outlined]
        if self.pixel_loss == "focal":
            pixel = focal_loss(mask_logits, masks) * 10.0  # focal is ~10x smaller than BCE
        else:
            pixel = F.binary_cross_entropy_with_logits(mask_logits, masks)
        dice = soft_dice_loss(mask_logits, masks)
        total = pixel + self.dice_weight * dice + self.class_weight * label
        return {"loss": total, "pixel": pixel.detach(), "dice": dice.detach(), "label": label.detach()}
