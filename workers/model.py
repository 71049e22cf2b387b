"""The model inside a worker process: checked at start-up, loaded once, reused for every job
until the model registry's active model changes (then loaded anew, without a restart: see
get_predictor). torch is imported here lazily: only worker processes ever pay for it."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

_predictor = None
_checked_at = 0.0  # time.monotonic() of the last look at the registry's active model
_failed_version = ""  # the active version this process could not load (workers.model._failed)
_configured = None  # the version of PNEUMOTHORAX_MODEL's file, read once
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


def model_summary(path: Path | None = None) -> dict:
    """What the web shows of a model (the configured one by default): version, operating point,
    test figures."""
    from dataclasses import asdict

    from ml.core.checkpoint import read_info
    from ml.core.model_card import held_out_figures

    info = read_info(path or model_path())
    return {"version": info.version, "encoder": info.encoder, "image_size": info.image_size,
            "operating_point": asdict(info.operating_point),
            "test_figures": held_out_figures(info)}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def get_predictor():
    """The predictor for the next job or batch: the registry's active model. The active version
    is read at most every MODEL_REGISTRY_CHECK_S seconds (a one-row query); when it changed, the
    new model is loaded while the old one keeps serving, and replaces it only once loaded. A new
    model that fails to load leaves the old one serving, logged and shown in the registry."""
    global _predictor, _checked_at, _failed_version
    with _lock:
        now = time.monotonic()
        if _predictor is not None and now - _checked_at < _check_interval():
            return _predictor
        target = _active_target()
        _checked_at = now
        if _predictor is None:
            _predictor = _first_predictor(target)
        elif target is not None and target[0] not in (_predictor.version, _failed_version):
            _switch_to(*target)
        elif target is not None and target[0] == _predictor.version:
            _failed_version = ""  # a later promotion of a version that failed is tried again
    return _predictor


def _check_interval() -> float:
    from django.conf import settings

    return float(settings.MODEL_REGISTRY_CHECK_S)


def _active_target() -> tuple[str, Path] | None:
    """(version, file) of the registry's active model; None while the registry is empty (serve
    PNEUMOTHORAX_MODEL) or the database cannot be read (keep serving what is loaded)."""
    from django.db import DatabaseError

    from webapp.cases.models import RegisteredModel
    from webapp.cases.services.registry import file_of

    try:
        active = RegisteredModel.objects.filter(status=RegisteredModel.Status.ACTIVE).first()
    except DatabaseError as exc:
        log.warning("could not read the active model (database unavailable: %s)", exc)
        return None
    if active is None:  # an empty registry: the configured file, as before the registry existed
        return _configured_version(), model_path()
    return active.version, file_of(active)


def _configured_version() -> str:
    global _configured
    if _configured is None:
        from ml.core.checkpoint import read_info

        _configured = read_info(model_path()).version
    return _configured


def _load(path: Path):
    from django.conf import settings
    from ml.serving.backends import resolve_backend
    from ml.serving.inference import Predictor

    cuda = cuda_available()
    # A registered model's ONNX export lies beside it, not at PNEUMOTHORAX_ONNX_MODEL (which
    # belongs to the configured file); made here if missing, as check_backend does at start-up.
    onnx_model = None if path == model_path() else path.with_suffix(".onnx")
    backend = resolve_backend(settings.INFERENCE_BACKEND, "cuda" if cuda else "cpu", path, onnx_model)
    if backend == "onnx":
        from ml.serving.backends import ensure_onnx_export

        ensure_onnx_export(path, onnx_model)
    # ONNX Runtime runs here on the CPU only (ml.serving.backends).
    device = "cuda" if cuda and backend != "onnx" else "cpu"
    predictor = Predictor(path, device=device, threads=settings.INFERENCE_THREADS,
                          flip_tta=settings.INFERENCE_FLIP_TTA, backend=backend, onnx_model=onnx_model)
    log.info("pid %s loaded model %s on %s, backend %s", os.getpid(), predictor.version, device,
             backend)
    return predictor


def _first_predictor(target):
    """At start-up: the active model; if it cannot load here, the configured file (which the
    start-up check proved usable), said loudly."""
    if target is not None:
        try:
            return _loaded(*target)
        except Exception as exc:  # noqa: BLE001  (any failure: serve the configured model)
            _failed(target[0], exc)
    return _load(model_path())


def _switch_to(version: str, path: Path) -> None:
    global _predictor
    try:
        new = _loaded(version, path)
    except Exception as exc:  # noqa: BLE001  (the old model keeps serving whatever went wrong)
        _failed(version, exc)
        return
    old, _predictor = _predictor, new
    log.info("pid %s switched from model %s to %s", os.getpid(), old.version, new.version)
    del old


def _loaded(version: str, path: Path):
    predictor = _load(path)
    if predictor.version != version:
        raise RuntimeError(f"the file declares {predictor.version}, the registry {version}")
    _register_served(path)
    return predictor


def _register_served(path: Path) -> None:
    """The model page and the result thresholds know each version a worker served."""
    from django.db import DatabaseError

    from webapp.cases.services.model_versions import register_model_version

    try:
        register_model_version(**model_summary(path))
    except DatabaseError as exc:
        log.warning("could not register the model version (database unavailable: %s)", exc)


def _failed(version: str, exc: Exception) -> None:
    global _failed_version
    from django.db import DatabaseError

    from webapp.cases.services.registry import record_load_failure

    _failed_version = version  # not tried again by this process until the active model changes
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    log.error("pid %s could not load model %s, keeps serving the one it has: %s", os.getpid(),
              version, reason)
    try:
        record_load_failure(version, f"worker pid {os.getpid()}: {reason}")
    except DatabaseError:
        pass
