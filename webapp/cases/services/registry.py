"""The model registry: candidates, the one active model the workers serve, promotion and
rollback, each audited in the same transaction (docs/operate/model-registry.md).

The web process never loads torch: it promotes and rolls back rows. Registering a file checks it
with torch (services.model_files), so ``register_model`` runs where the worker requirements are
(the register_model command, a worker validating an admin upload, the ml tests)."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.audit.models import Action
from webapp.audit.services import record
from webapp.cases.models import RegisteredModel
from webapp.cases.services.model_files import ModelRejected, check_model_file, read_header
from webapp.cases.services.model_versions import shown_figures

__all__ = ["ModelRejected", "PromotionRefused", "register_model", "promote", "roll_back",
           "active_model", "registry_dir", "file_of", "ensure_initial_model", "accept_upload",
           "validate_upload", "record_load_failure"]

MAX_REPORT_BYTES = 2 * 1024 * 1024
VALIDATE_TASK = "workers.tasks.validate_model_upload"
SAFE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
Status, Validation = RegisteredModel.Status, RegisteredModel.Validation


class PromotionRefused(ValueError):
    """Promotion or rollback is not possible; the message says why."""


def registry_dir() -> Path:
    return Path(settings.MODEL_REGISTRY_DIR or Path(settings.PRIVATE_MEDIA_ROOT) / "models")


def file_of(model: RegisteredModel) -> Path:
    path = Path(model.file)
    return path if path.is_absolute() else registry_dir() / path


def active_model() -> RegisteredModel | None:
    """The model the workers serve; None while the registry is empty (they serve
    PNEUMOTHORAX_MODEL)."""
    return RegisteredModel.objects.filter(status=Status.ACTIVE).first()


def max_upload_bytes() -> int:
    return settings.MODEL_UPLOAD_MAX_MB * 1024 * 1024


def read_report(report: dict | str | Path | None, version: str) -> dict:
    """ml.evaluate's report for ``version`` (a dict, or the path of its report.json)."""
    if report is None:
        return {}
    if not isinstance(report, dict):
        path = Path(report)
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                raise ModelRejected(f"the report {path.name} is over {MAX_REPORT_BYTES // 2**20} MB")
            # NaN / Infinity (a figure with no images behind it) as null: PostgreSQL's jsonb
            # refuses them.
            report = json.loads(path.read_text(), parse_constant=lambda _: None)
        except OSError as exc:
            raise ModelRejected(f"cannot read the report ({exc.strerror or exc})") from exc
        except ValueError:
            raise ModelRejected(f"the report {path.name} is not JSON") from None
    if not isinstance(report, dict):
        raise ModelRejected("the report is not a JSON object (ml.evaluate's report.json)")
    report = json.loads(json.dumps(report, default=str), parse_constant=lambda _: None)
    declared = report.get("version")
    if declared and declared != version:
        raise ModelRejected(f"the report is for {declared}, not for {version}")
    return report


def _file_name(version: str) -> str:
    """The registry's name for a version's file. The version comes from the file's own header,
    so it must not be able to name a path outside the folder."""
    if not SAFE_VERSION.fullmatch(version):
        raise ModelRejected("the declared version is not a plain name (letters, digits, . _ -)")
    return f"{version}.safetensors"


def _store(source: Path, version: str) -> str:
    """Copy into the registry folder (atomically: a worker never sees half a file); the name
    relative to it."""
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = _file_name(version)
    partial = folder / f".{name}.{uuid.uuid4().hex}.part"
    shutil.copyfile(source, partial)
    os.replace(partial, folder / name)
    return name


def register_model(path: str | Path, report: dict | str | Path | None = None, by=None) -> RegisteredModel:
    """Check ``path`` (needs torch), copy it into the registry and record it as a valid
    candidate, audited. ModelRejected, with nothing stored, if it fails any check."""
    checked = check_model_file(path)
    report = read_report(report, checked.version)
    ensure_initial_model()  # so that a rollback can return to what is served today
    if RegisteredModel.objects.filter(version=checked.version).exists():
        raise ModelRejected(f"{checked.version} is already registered")
    name = _store(Path(path), checked.version)
    with transaction.atomic():
        model = RegisteredModel.objects.create(
            version=checked.version, file=name, sha256=checked.sha256, size_bytes=checked.size_bytes,
            encoder=checked.encoder, image_size=checked.image_size, validation=Validation.VALID,
            report=report, test_figures=shown_figures(checked.test_figures), uploaded_by=by)
        record(by, Action.MODEL_REGISTERED, model, detail={"version": model.version, "via": "command"})
    return model


def ensure_initial_model(*, build: bool = True) -> RegisteredModel | None:
    """While the registry is empty, record the configured model file (PNEUMOTHORAX_MODEL, the
    one shipped in ml/weights by default) as the active model, in place: a fresh installation
    serves exactly what it served before the registry existed. Needs torch; safe to race."""
    if RegisteredModel.objects.exists():
        return None
    path = Path(settings.PNEUMOTHORAX_MODEL)
    checked = check_model_file(path, build=build)
    try:
        with transaction.atomic():
            return RegisteredModel.objects.create(
                version=checked.version, file=str(path.resolve()), sha256=checked.sha256,
                size_bytes=checked.size_bytes, encoder=checked.encoder, image_size=checked.image_size,
                status=Status.ACTIVE, validation=Validation.VALID, promoted_at=timezone.now(),
                test_figures=shown_figures(checked.test_figures))
    except IntegrityError:  # another worker recorded it first
        return None


def accept_upload(uploaded, by) -> RegisteredModel:
    """An admin's upload (a Django UploadedFile): size and header checked here, stored as a
    candidate awaiting validation by a worker (validate_upload), audited."""
    if uploaded.size > max_upload_bytes():
        raise ModelRejected(f"the file is over the {settings.MODEL_UPLOAD_MAX_MB} MB limit")
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".upload-{uuid.uuid4().hex}.part"
    with open(partial, "wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    try:
        info = read_header(partial)
        version = str(info["version"])
        name = _file_name(version)
        if RegisteredModel.objects.filter(version=version).exists():
            raise ModelRejected(f"{version} is already registered")
        os.replace(partial, folder / name)
    finally:
        partial.unlink(missing_ok=True)
    with transaction.atomic():
        model = RegisteredModel.objects.create(
            version=version, file=name, size_bytes=uploaded.size, encoder=str(info.get("encoder", ""))[:64],
            image_size=_int(info.get("image_size")), validation=Validation.PENDING, uploaded_by=by)
        record(by, Action.MODEL_REGISTERED, model, detail={"version": version, "via": "upload"})
        transaction.on_commit(lambda: _send_validation(model.pk))
    return model


def _int(value) -> int:
    """A header's number, or 0: the worker's check tells what is wrong with the file."""
    try:
        return max(0, min(int(value), 2**31 - 1))
    except (TypeError, ValueError, OverflowError):
        return 0


def _send_validation(model_pk: int) -> None:
    """To a worker on the cpu queue (workers.tasks.validate_model_upload), by id only."""
    from webapp.celery_app import app  # the Celery app is light; no worker code, no torch

    app.send_task(VALIDATE_TASK, kwargs={"model_pk": model_pk}, queue="cpu", retry=True,
                  retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})


def validate_upload(model_pk: int) -> str:
    """A worker's check of an uploaded candidate: valid, or invalid with the reason (then it can
    never be promoted). Idempotent."""
    model = RegisteredModel.objects.filter(pk=model_pk, validation=Validation.PENDING).first()
    if model is None:
        return "done"
    try:
        checked = check_model_file(file_of(model), max_bytes=max_upload_bytes())
        if checked.version != model.version:
            raise ModelRejected(f"the file now declares {checked.version}, not {model.version}")
    except ModelRejected as exc:
        RegisteredModel.objects.filter(pk=model.pk).update(validation=Validation.INVALID,
                                                           validation_error=str(exc))
        return "invalid"
    RegisteredModel.objects.filter(pk=model.pk).update(
        validation=Validation.VALID, validation_error="", sha256=checked.sha256,
        test_figures=shown_figures(checked.test_figures))
    return "valid"


def promote(model: RegisteredModel, by) -> RegisteredModel:
    """Make ``model`` the active one, audited; the model it replaces becomes what a rollback
    returns to. PromotionRefused for a model that did not pass validation."""
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if model.validation != Validation.VALID:
            raise PromotionRefused(f"{model.version} cannot be promoted: "
                                   f"{model.validation_error or model.get_validation_display().lower()}")
        current = RegisteredModel.objects.select_for_update().filter(status=Status.ACTIVE).first()
        if current and current.pk == model.pk:
            raise PromotionRefused(f"{model.version} is already active")
        if current:
            RegisteredModel.objects.filter(pk=current.pk).update(status=Status.RETIRED)
        model.status, model.promoted_at, model.previous = Status.ACTIVE, timezone.now(), current
        model.load_error, model.load_error_at = "", None
        model.save(update_fields=["status", "promoted_at", "previous", "load_error", "load_error_at"])
        record(by, Action.MODEL_PROMOTED, model,
               detail={"version": model.version, "replaced": current.version if current else ""})
    return model


def roll_back(by) -> RegisteredModel:
    """Make the model that was active before the current one active again, audited; the current
    one is retired."""
    with transaction.atomic():
        current = RegisteredModel.objects.select_for_update().filter(status=Status.ACTIVE).first()
        if current is None or current.previous_id is None:
            raise PromotionRefused("there is no previously active model to roll back to")
        previous = RegisteredModel.objects.select_for_update().get(pk=current.previous_id)
        RegisteredModel.objects.filter(pk=current.pk).update(status=Status.RETIRED)
        previous.status = Status.ACTIVE
        previous.load_error, previous.load_error_at = "", None
        previous.save(update_fields=["status", "load_error", "load_error_at"])
        record(by, Action.MODEL_ROLLED_BACK, previous,
               detail={"version": previous.version, "replaced": current.version})
    return previous


def record_load_failure(version: str, error: str) -> None:
    """A worker could not load ``version`` and kept serving its old model: shown on the page."""
    RegisteredModel.objects.filter(version=version).update(load_error=error[:1000],
                                                           load_error_at=timezone.now())
