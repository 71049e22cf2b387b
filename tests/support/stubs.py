"""Stand-ins that keep a test about the web app independent of the model: an uploaded file for
calling services directly, and a predictor that always answers the same."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.serving.findings import Findings, describe


class Upload:
    """A minimal uploaded file for calling services directly."""

    def __init__(self, name, data):
        self.name, self._data, self.size = name, data, len(data)

    def read(self, n=-1):
        return self._data if n < 0 else self._data[:n]


@dataclass
class StubPrediction:
    probability: float
    positive: bool
    mask: np.ndarray
    area_fraction: float
    area_cm2: float | None
    model_version: str = "stub-1"
    review_first: bool | None = None  # None: as the real predictor without a review threshold
    findings: Findings | None = None  # None: described from the mask, as the real predictor does
    timings_ms: dict = field(default_factory=lambda: {"inference": 1.0})

    def __post_init__(self):
        if self.review_first is None:
            self.review_first = self.positive
        if self.findings is None:
            self.findings = describe(self.mask > 0)


class StubPredictor:
    """Marks a fixed square as pneumothorax, whatever the image (or nothing, when built with
    ``positive=False``), with a fixed probability."""

    version = "stub-1"

    def __init__(self, probability: float = 0.9, positive: bool = True):
        self.calls, self.probability, self.positive = 0, probability, positive

    def predict(self, xray):
        self.calls += 1
        mask = np.zeros(xray.pixels.shape, dtype=np.uint8)
        if self.positive:
            mask[100:300, 150:350] = 255
        findings = describe(mask > 0, xray.pixel_spacing_mm, xray.metadata.get("PatientOrientation"))
        return StubPrediction(probability=self.probability, positive=self.positive, mask=mask,
                              area_fraction=float((mask > 0).mean()), area_cm2=findings.area_cm2,
                              findings=findings)
