"""Training augmentation (albumentations). Masks follow every geometric transform.

JPEG recompression is applied to every image, whatever its source, so that the compression
artefacts cannot tell positives (mostly JPEG re-encodes here) from negatives (mostly DICOM).
"""

from __future__ import annotations

import albumentations as A
import cv2


def training_transform(size: int, crop: int | None = None, lesion_crop_share: float = 0.5) -> A.Compose:
    """Augmentation for training at ``size`` px; with ``crop``, random ``crop`` px windows of it.

    Crops train at the cost of the crop's size but at the resolution of the cache. A share of
    them (``lesion_crop_share``) is placed on the mask where the image has one, since a lesion is
    a median 0.8% of the image and uniform crops would rarely show it; the rest are uniform, so
    that the model also sees the chest wall, tubes and lines of a negative's whole field.
    """
    cropping = []
    if crop:
        cropping = [A.OneOf([
            A.CropNonEmptyMaskIfExists(height=crop, width=crop, p=lesion_crop_share),
            A.RandomCrop(height=crop, width=crop, p=1 - lesion_crop_share),
        ], p=1.0)]
        size = crop
    return A.Compose(cropping + [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-10, 10),
                 border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=0.7),
        A.OneOf([
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15),
            A.RandomGamma(gamma_limit=(80, 120)),
            A.CLAHE(clip_limit=2.0, tile_grid_size=(8, 8)),
        ], p=0.7),
        A.ImageCompression(quality_range=(40, 95), p=0.8),
        A.Resize(size, size),
    ])


def evaluation_transform(size: int) -> A.Compose:
    return A.Compose([A.Resize(size, size, interpolation=cv2.INTER_AREA)])
