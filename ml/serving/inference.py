"""The predictor: load a model file once, then answer for one image (or a batch) at a time.

    predictor = Predictor("ml/weights/pneumothorax-unet.safetensors")
    result = predictor.predict(open("chest.dcm", "rb").read())
    result.probability, result.positive, result.mask, result.area_fraction, result.area_cm2

How the answer is made, at the model file's operating point (chosen on validation data):
- ``probability``: the image-level head's probability that pneumothorax is present;
- the mask: pixel probabilities, resized to the image's own size, at or above
  ``pixel_threshold``;
- ``positive``: probability >= ``image_threshold`` *and* a mask of at least
  ``min_area_fraction`` of the image. A negative image always has an empty mask, so what the
  clinician sees outlined is exactly what made the call;
- ``review_first``: positive, or probability >= the operating point's high-sensitivity
  ``review_threshold`` (the worklist puts these on top even when the call is negative);
- ``findings``: side, zones, area and rim depth of the outlined area, in words
  (``ml.serving.findings``), from the mask and the DICOM header;
- ``backend``: which backend ran the network (``ml.serving.backends``: ``torch``, ``torch-bf16``,
  ``onnx``). ``Predictor(backend=...)`` defaults to ``torch`` (eager fp32, the reference the
  operating point was chosen with); ``auto`` is the fastest this machine supports
  (``default_backend()``), what ``ml.predict`` and the worker use unless told otherwise.

With flip TTA the mirrored copies go through the network in the same forward pass as the
images (a batch of 2N), whatever the backend.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ml.core.checkpoint import CheckpointError, load_model, read_info
from ml.core.contrast import network_pixels
from ml.core.decision import decide, image_probability, review_first
from ml.core.model import to_input_tensor
from ml.core.reading import XRay, read_xray
from ml.serving.backends import make_backend, resolve_backend
from ml.serving.findings import Findings, describe

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "weights" / "pneumothorax-unet.safetensors"


def configured_model_path() -> Path:
    """``PNEUMOTHORAX_MODEL`` if set, else the model that ships in ``ml/weights``."""
    return Path(os.environ.get("PNEUMOTHORAX_MODEL") or DEFAULT_MODEL_PATH)


@dataclass(frozen=True)
class Prediction:
    probability: float
    positive: bool
    mask: np.ndarray  # (H, W) uint8, 0 or 255, at the input image's size
    area_fraction: float  # of the whole image
    area_cm2: float | None  # where the DICOM gives a pixel spacing
    model_version: str
    review_first: bool = False
    findings: Findings | None = None
    timings_ms: dict = field(default_factory=dict)
    backend: str = "torch"  # ml.serving.backends: the backend that ran the network


class Predictor:
    def __init__(self, model_path: str | Path | None = None, device: str = "cpu",
                 flip_tta: bool | None = None, threads: int | None = None,
                 backend: str = "torch", onnx_model: str | Path | None = None):
        if threads:
            torch.set_num_threads(threads)
        path = Path(model_path) if model_path else configured_model_path()
        if not path.is_file():
            raise CheckpointError(
                f"No trained model at {path}. Train one (python -m ml.train) or set "
                "PNEUMOTHORAX_MODEL; the service does not run without a trained model."
            )
        self.device = torch.device(device)
        self.backend_name = resolve_backend(backend, self.device, path, onnx_model)
        if self.backend_name == "onnx":  # the torch network is not needed: ONNX Runtime runs it
            self.model, self.info = None, read_info(path)
        else:
            self.model, self.info = load_model(path, self.device)
        self.backend = make_backend(self.backend_name, path, self.info, self.device, threads,
                                    onnx_model, self.model)
        # None: as the model file's operating point was chosen (ml.evaluate records whether it
        # averaged the flipped image), so that the threshold and the maps it reads agree.
        self.flip_tta = bool(self.info.evaluation.get("flip_tta", False)) if flip_tta is None else flip_tta

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def image_size(self) -> int:
        return self.info.image_size

    def predict(self, source: bytes | str | Path | XRay) -> Prediction:
        started = time.perf_counter()
        xray = source if isinstance(source, XRay) else read_xray(source)
        read_ms = (time.perf_counter() - started) * 1000
        prediction = self.predict_batch([xray])[0]
        prediction.timings_ms["read"] = round(read_ms, 1)
        return prediction

    def predict_batch(self, xrays: list[XRay]) -> list[Prediction]:
        started = time.perf_counter()
        probability_maps, probabilities = self.probability_maps(xrays)
        inference_ms = (time.perf_counter() - started) * 1000 / max(len(xrays), 1)
        score = self.info.operating_point.image_score
        return [self._decide(xray, pmap, image_probability(pmap, float(p), score), inference_ms)
                for xray, pmap, p in zip(xrays, probability_maps, probabilities)]

    @torch.no_grad()
    def probability_maps(self, xrays: list[XRay]) -> tuple[np.ndarray, np.ndarray]:
        """Pixel probabilities at the model's resolution (N, S, S) and image probabilities (N,)."""
        size, count = self.info.image_size, len(xrays)
        contrast = self.info.input_contrast
        batch = torch.stack([to_input_tensor(network_pixels(x.pixels, size, contrast)) for x in xrays]).numpy()
        if self.flip_tta:  # the mirrored copies in the same forward pass
            batch = np.concatenate([batch, batch[..., ::-1]])
        mask_logits, class_logits = self.backend.run(batch)
        pixel = torch.sigmoid(torch.from_numpy(np.asarray(mask_logits, dtype=np.float32)[:, 0]))
        image = torch.sigmoid(torch.from_numpy(np.asarray(class_logits, dtype=np.float32).reshape(-1)))
        if self.flip_tta:
            pixel = (pixel[:count] + torch.flip(pixel[count:], dims=[-1])) / 2
            image = (image[:count] + image[count:]) / 2
        return pixel.numpy(), image.numpy()

    def _decide(self, xray: XRay, probability_map: np.ndarray, probability: float,
                inference_ms: float) -> Prediction:
        mask, positive, area_fraction = decide(probability_map, probability,
                                               self.info.operating_point, xray.height, xray.width)
        findings = describe(mask, xray.pixel_spacing_mm, xray.metadata.get("PatientOrientation"))
        return Prediction(
            probability=probability,
            positive=bool(positive),
            mask=mask.astype(np.uint8) * 255,
            area_fraction=area_fraction,
            area_cm2=findings.area_cm2,
            model_version=self.info.version,
            review_first=review_first(probability, positive, self.info.operating_point),
            findings=findings,
            timings_ms={"inference": round(inference_ms, 1)},
            backend=self.backend_name,
        )


__all__ = ["Predictor", "Prediction", "configured_model_path", "DEFAULT_MODEL_PATH"]
