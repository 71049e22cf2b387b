"""The model inside a worker process: checked at start-up, loaded once, reused for every job.
torch is imported here lazily: only worker processes ever pay for it."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_predictor = None
_lock = threading.Lock()

# Ask NVML, not the CUDA driver, whether a GPU exists: the parent must not initialise CUDA
# before forking its pool processes.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")


def model_path() -> Path:
    """The model file this worker serves: settings.PNEUMOTHORAX_MODEL (environment
    ``PNEUMOTHORAX_MODEL``, default ml/weights/pneumothorax-unet.safetensors)."""
    from django.conf import settings

    return Path(settings.PNEUMOTHORAX_MODEL)


def check_model() -> str | None:
    """None if the configured model file is usable, else the reason (for a start-up error)."""
    from ml.core.checkpoint import CheckpointError, read_info

    path = model_path()
    if not path.is_file():
        return (f"no trained model at {path}. Train one (python -m ml.train) or set "
                "PNEUMOTHORAX_MODEL to the model file.")
    try:
        info = read_info(path)
    except CheckpointError as exc:
        return str(exc)
    log.info("model %s (%s px) at %s", info.version, info.image_size, path)
    return check_backend(info)


def backend_name() -> str:
    """settings.INFERENCE_BACKEND (``auto``: ml.serving.backends.default_backend()), resolved
    for this machine. ValueError for an unknown name."""
    from django.conf import settings
    from ml.serving.backends import resolve_backend

    device = "cuda" if cuda_available() else "cpu"
    return resolve_backend(settings.INFERENCE_BACKEND, device, model_path())


def check_backend(info) -> str | None:
    """None if the configured backend can run here, else the reason. For the onnx backend, an
    ONNX export that is missing or stale is made here, once, in the main process before the pool
    forks (ml.serving.backends.ensure_onnx_export, what ml.predict uses too); it takes tens of
    seconds. No .onnx is kept in git: the model file is the one source."""
    from ml.serving.backends import BackendUnavailable, ensure_onnx_export

    try:
        name = backend_name()
    except ValueError as exc:
        return str(exc)
    log.info("inference backend %s", name)
    if name != "onnx":
        return None
    try:
        ensure_onnx_export(model_path(), info=info)
    except BackendUnavailable as exc:
        return f"INFERENCE_BACKEND=onnx: {exc}"
    return None


def model_summary() -> dict:
    """What the web shows of the configured model: version, operating point, test figures."""
    from dataclasses import asdict

    from ml.core.checkpoint import read_info
    from ml.core.model_card import held_out_figures

    info = read_info(model_path())
    return {"version": info.version, "encoder": info.encoder, "image_size": info.image_size,
            "operating_point": asdict(info.operating_point),
            "test_figures": held_out_figures(info)}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def get_predictor():
    global _predictor
    if _predictor is None:
        with _lock:
            if _predictor is None:
                from django.conf import settings
                from ml.serving.inference import Predictor

                backend = backend_name()
                # ONNX Runtime runs here on the CPU only (ml.serving.backends).
                device = "cuda" if cuda_available() and backend != "onnx" else "cpu"
                _predictor = Predictor(model_path(), device=device,
                                       threads=settings.INFERENCE_THREADS,
                                       flip_tta=settings.INFERENCE_FLIP_TTA, backend=backend)
                log.info("pid %s loaded model %s on %s, backend %s", os.getpid(), _predictor.version,
                         device, backend)
    return _predictor
