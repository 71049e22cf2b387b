"""Fixtures for tests of the web app without a worker: jobs are run in-process by the real
pipeline service with a stub predictor (these tests are about access and flow, not the model)."""

from dataclasses import dataclass, field

import numpy as np
import pytest



@dataclass
class StubPrediction:
    probability: float
    positive: bool
    mask: np.ndarray
    area_fraction: float
    area_cm2: float | None
    model_version: str = "stub-1"
    timings_ms: dict = field(default_factory=lambda: {"inference": 1.0})


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
        return StubPrediction(probability=self.probability, positive=self.positive, mask=mask,
                              area_fraction=float((mask > 0).mean()), area_cm2=None)


@pytest.fixture
def stub_predictor():
    return StubPredictor()


@pytest.fixture
def make_case(upload_file):
    def make(user, extension="dcm"):
        from webapp.cases.services.uploads import create_case

        return create_case(user, [upload_file(extension)], "10.0.0.9")
    return make


@pytest.fixture
def done_case(owner, make_case, stub_predictor):
    """A case of ``owner`` whose job has finished (mask and overlay stored)."""
    from webapp.cases.services.pipeline import analyse_job

    case = make_case(owner)
    image = case.images.get()
    assert analyse_job(image.job.pk, stub_predictor) == "done"
    return case
