"""An ensemble of model files, measured on the calibration half before anyone builds its serving.

``ml.evaluate --calibration-only --ensemble-with OTHER.safetensors`` scores the mean of the
members' probability maps and image probabilities (each member with the same flip TTA). The
worker serves one model file, so an ensemble is a measurement, not a candidate that can ship:
it tells whether serving two networks (about twice the CPU time) would pay.
"""

from __future__ import annotations

import numpy as np

from ml.core.checkpoint import CheckpointError
from ml.serving.inference import Predictor


class AveragedPredictor:
    """The members' probability maps and image probabilities, averaged. The members must share
    a resolution, so that their maps add pixel for pixel."""

    def __init__(self, members: list[Predictor]):
        if len(members) < 2:
            raise CheckpointError("An ensemble needs at least two model files")
        sizes = {member.image_size for member in members}
        if len(sizes) != 1:
            raise CheckpointError(f"The ensemble's model files differ in resolution: {sorted(sizes)}")
        self.members = members

    @property
    def image_size(self) -> int:
        return self.members[0].image_size

    @property
    def versions(self) -> list[str]:
        return [member.version for member in self.members]

    def probability_maps(self, xrays) -> tuple[np.ndarray, np.ndarray]:
        outputs = [member.probability_maps(xrays) for member in self.members]
        maps = np.mean([maps for maps, _ in outputs], axis=0)
        probabilities = np.mean([probabilities for _, probabilities in outputs], axis=0)
        return maps.astype(np.float32), probabilities.astype(np.float32)
