"""The model registry (webapp.cases.services.registry): register by the command, refused files,
promote and roll back from the page (admins only, audited), the candidate's figures beside the
active model's, and a real worker that switches models between two films without a restart."""

import json
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import RegisteredModel

pytestmark = pytest.mark.django_db
SHIPPED = Path(settings.BASE_DIR) / "ml" / "weights" / "pneumothorax-unet.safetensors"


def _rewrite(target: Path, *, nudge: bool, version: str | None = None) -> str:
    """A copy of the shipped model: ``nudge`` changes one weight slightly (a genuinely different
    model, its version the new hash: consistent); ``version`` declares another version than its
    weights have (inconsistent). Returns the declared version."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from webapp.cases.services.model_files import weights_version

    tensors = load_file(str(SHIPPED))
    with safe_open(str(SHIPPED), framework="pt") as handle:
        metadata = handle.metadata()
    info = json.loads(metadata["info"])
    if nudge:
        name = next(k for k in sorted(tensors) if tensors[k].is_floating_point() and tensors[k].numel() > 10)
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] += 0.01
        info["version"] = weights_version(info["encoder"], info["image_size"], tensors)
    if version:
        info["version"] = version
    save_file(tensors, str(target), metadata={**metadata, "info": json.dumps(info)})
    return info["version"]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    other = _rewrite(folder / "other.safetensors", nudge=True)
    _rewrite(folder / "claims-other.safetensors", nudge=False, version=other)
    data = SHIPPED.read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) * 2 // 3])
    return folder, other


@pytest.fixture
def registry_dir(settings, tmp_path):
    settings.MODEL_REGISTRY_DIR = str(tmp_path / "registry")
    return tmp_path / "registry"


@pytest.fixture
def shipped_version():
    from ml.core.checkpoint import read_info

    return read_info(SHIPPED).version


def register(path, report=None):
    args = [str(path)] + (["--report", str(report)] if report else [])
    call_command("register_model", *args)
    return RegisteredModel.objects.order_by("-pk").first()


def test_command_registers_a_valid_file_beside_the_shipped_active_one(model_files, registry_dir,
                                                                     shipped_version, tmp_path):
    folder, other = model_files
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"version": other, "test": {"images": 40, "positives": 10,
                                                             "sensitivity": 0.8, "specificity": 0.9,
                                                             "dice_positive": float("nan")}}))
    model = register(folder / "other.safetensors", report)

    assert (model.version, model.status, model.validation) == (other, "candidate", "valid")
    assert (registry_dir / f"{other}.safetensors").read_bytes() == (folder / "other.safetensors").read_bytes()
    assert model.report["test"]["sensitivity"] == 0.8
    assert model.report["test"]["dice_positive"] is None  # NaN, which jsonb refuses
    # The empty registry started from the file served today: what a rollback returns to.
    initial = RegisteredModel.objects.get(status="active")
    assert initial.version == shipped_version and Path(initial.file) == SHIPPED.resolve()
    assert AuditEvent.objects.filter(action=Action.MODEL_REGISTERED, object_id=str(model.pk)).count() == 1
    with pytest.raises(CommandError, match="already registered"):
        register(SHIPPED)


@pytest.mark.parametrize("name, reason", [
    ("claims-other.safetensors", "does not match the weights"),
    ("truncated.safetensors", "does not load"),
])
def test_command_refuses_a_file_that_lies_or_does_not_load(model_files, registry_dir, name, reason):
    folder, other = model_files
    with pytest.raises(CommandError, match=reason):
        register(folder / name)
    assert not RegisteredModel.objects.filter(version=other).exists()
    assert not (registry_dir / f"{other}.safetensors").exists()  # nothing stored
    assert not AuditEvent.objects.filter(action=Action.MODEL_REGISTERED).exists()


@pytest.mark.parametrize("content, reason", [
    ('{"version": "unet-x-512px-0000000000", "test": {}}', "report is for unet-x"),
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
])
def test_command_refuses_a_report_that_is_not_this_models(model_files, registry_dir, tmp_path,
                                                          content, reason):
    folder, other = model_files
    report = tmp_path / "report.json"
    report.write_text(content)
    with pytest.raises(CommandError, match=reason):
        register(folder / "other.safetensors", report)
    assert not RegisteredModel.objects.filter(version=other).exists()


def test_promote_and_roll_back_from_the_page_audited(model_files, registry_dir, shipped_version,
                                                     administrator, login):
    folder, other = model_files
    candidate = register(folder / "other.safetensors")
    client = login(administrator)

    page = client.get(reverse("cases:model_registry")).content.decode()
    assert f"Active: {shipped_version}" in page and reverse("cases:model_promote", args=[candidate.pk]) in page
    response = client.post(reverse("cases:model_promote", args=[candidate.pk]))
    assert response.status_code == 302
    assert RegisteredModel.objects.get(status="active").version == other
    promoted = AuditEvent.objects.get(action=Action.MODEL_PROMOTED)
    assert promoted.user == administrator and promoted.detail == {"version": other, "replaced": shipped_version}

    response = client.post(reverse("cases:model_rollback"))
    assert response.status_code == 302
    assert RegisteredModel.objects.get(status="active").version == shipped_version
    assert RegisteredModel.objects.get(version=other).status == "retired"
    rolled = AuditEvent.objects.get(action=Action.MODEL_ROLLED_BACK)
    assert rolled.user == administrator and rolled.detail == {"version": shipped_version, "replaced": other}
    # Nothing before the shipped model: a second rollback is refused, visibly, and changes nothing.
    page = client.post(reverse("cases:model_rollback"), follow=True).content.decode()
    assert "no previously active model" in page
    assert RegisteredModel.objects.get(status="active").version == shipped_version


def test_only_one_model_is_active_in_the_database(model_files, registry_dir):
    from django.db import IntegrityError, transaction

    folder, _ = model_files
    candidate = register(folder / "other.safetensors")
    with pytest.raises(IntegrityError), transaction.atomic():
        RegisteredModel.objects.filter(pk=candidate.pk).update(status="active")


def test_an_upload_that_fails_the_workers_check_cannot_be_promoted(model_files, registry_dir,
                                                                   administrator, login,
                                                                   django_capture_on_commit_callbacks):
    from webapp.cases.services.registry import validate_upload

    folder, other = model_files
    client = login(administrator)
    upload = SimpleUploadedFile("claims-other.safetensors", (folder / "claims-other.safetensors").read_bytes())
    with django_capture_on_commit_callbacks(execute=False) as sent:  # the broker is not under test here
        response = client.post(reverse("cases:model_upload"), {"file": upload})
    assert response.status_code == 302 and len(sent) == 1
    model = RegisteredModel.objects.get(version=other)
    assert model.validation == "pending" and model.uploaded_by == administrator

    client.post(reverse("cases:model_promote", args=[model.pk]))  # not yet checked: refused
    assert RegisteredModel.objects.get(pk=model.pk).status == "candidate"
    assert validate_upload(model.pk) == "invalid"  # what the worker's task runs
    model.refresh_from_db()
    assert "does not match the weights" in model.validation_error
    page = client.post(reverse("cases:model_promote", args=[model.pk]), follow=True).content.decode()
    assert "cannot be promoted" in page
    assert RegisteredModel.objects.get(pk=model.pk).status == "candidate"
    assert not AuditEvent.objects.filter(action=Action.MODEL_PROMOTED).exists()


def test_an_upload_that_passes_the_workers_check_can_be_promoted(model_files, registry_dir,
                                                                 administrator, login,
                                                                 django_capture_on_commit_callbacks):
    from webapp.cases.services.registry import validate_upload

    folder, other = model_files
    client = login(administrator)
    upload = SimpleUploadedFile("other.safetensors", (folder / "other.safetensors").read_bytes())
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("cases:model_upload"), {"file": upload})
    model = RegisteredModel.objects.get(version=other)
    assert validate_upload(model.pk) == "valid" and validate_upload(model.pk) == "done"
    client.post(reverse("cases:model_promote", args=[model.pk]))
    assert RegisteredModel.objects.get(status="active").pk == model.pk
    assert AuditEvent.objects.get(action=Action.MODEL_REGISTERED, object_id=str(model.pk)).user == administrator


def test_an_upload_that_is_not_a_model_file_is_refused(registry_dir, administrator, login):
    client = login(administrator)
    before = RegisteredModel.objects.count()  # a worker of the session may have recorded its model
    junk = SimpleUploadedFile("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    response = client.post(reverse("cases:model_upload"), {"file": junk})
    assert response.status_code == 400 and "not a model file written by ml.train" in response.content.decode()
    assert RegisteredModel.objects.count() == before and not any(registry_dir.glob("*"))
    # The version comes from the file: it must not name a path outside the registry folder.
    from safetensors.torch import save as save_tensors
    import torch

    evil = save_tensors({"w": torch.zeros(1)}, metadata={"info": json.dumps(
        {"version": "../../outside", "image_size": "big", "encoder": "x"})})
    response = client.post(reverse("cases:model_upload"),
                           {"file": SimpleUploadedFile("model.safetensors", evil)})
    assert response.status_code == 400 and "not a plain name" in response.content.decode()
    assert not any(registry_dir.parent.rglob("outside*"))
    wrong = SimpleUploadedFile("model.pt", b"x")
    assert client.post(reverse("cases:model_upload"), {"file": wrong}).status_code == 400


def test_page_shows_the_candidates_figures_beside_the_active_ones(model_files, registry_dir,
                                                                  administrator, login, tmp_path):
    from django.template.defaultfilters import floatformat

    from tests.web.markup import parse

    folder, other = model_files
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"version": other, "test": {"images": 40, "positives": 10,
                                                             "sensitivity": 0.8125, "specificity": 0.9}}))
    candidate = register(folder / "other.safetensors", report)
    active = RegisteredModel.objects.get(status="active")
    page = parse(login(administrator).get(reverse("cases:model_registry")).content)
    section = next(page.find_all("section", id=f"model-{candidate.pk}"))
    rows = {next(row.find_all("th")).text.strip(): row for row in section.find_all("tr")}
    sensitivity = rows["Sensitivity"]
    assert next(sensitivity.find_all("td", class_="candidate-figure")).text.strip() == "0.813"
    expected = floatformat(active.test_figures["sensitivity"], 3)  # as the page rounds
    assert next(sensitivity.find_all("td", class_="active-figure")).text.strip() == expected


@pytest.mark.parametrize("method, name, args", [
    ("get", "cases:model_registry", []), ("post", "cases:model_rollback", []),
    ("post", "cases:model_promote", [1]), ("post", "cases:model_upload", []),
])
def test_only_admins(owner, login, client, method, name, args):
    url = reverse(name, args=args)
    assert getattr(login(owner), method)(url).status_code == 403  # a clinician
    anonymous = getattr(client, method)(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_switches_models_without_a_restart(celery_worker_process, model_files, login,
                                                         owner, administrator, wait_for_case,
                                                         shipped_version):
    from tests.support.data import subset_image
    from tests.support.pages import upload_through_page
    from webapp.cases.models import Job
    from webapp.cases.services.registry import registry_dir as folder_of_registry

    folder, other = model_files
    pid = celery_worker_process.pid
    client, admin = login(owner), login(administrator)
    image = subset_image("png")

    def read_film():
        case_id = upload_through_page(client, [SimpleUploadedFile(image.name, image.read_bytes())])
        payload = wait_for_case(client, case_id)
        assert payload["status"] == "done", payload["images"][0]["error"]
        return Job.objects.get(image_id=payload["images"][0]["id"])

    def after_the_workers_next_look():
        time.sleep(settings.MODEL_REGISTRY_CHECK_S + 0.5)

    try:
        candidate = register(folder / "other.safetensors")  # the registry dir of the worker's media
        after_the_workers_next_look()
        first = read_film()
        assert first.model_version == shipped_version

        admin.post(reverse("cases:model_promote", args=[candidate.pk]))
        after_the_workers_next_look()
        second = read_film()
        assert second.model_version == other

        admin.post(reverse("cases:model_rollback"))
        after_the_workers_next_look()
        third = read_film()
        assert third.model_version == shipped_version

        # A promoted model whose file no longer loads (damaged on the shared volume): the worker
        # keeps serving the model it has and says why on the registry page.
        stored = folder_of_registry() / f"{other}.safetensors"
        stored.write_bytes(stored.read_bytes()[:4096])
        admin.post(reverse("cases:model_promote", args=[candidate.pk]))
        after_the_workers_next_look()
        fourth = read_film()
        assert fourth.model_version == shipped_version
        failed = RegisteredModel.objects.get(pk=candidate.pk)
        assert failed.status == "active" and "CheckpointError" in failed.load_error
        assert "could not load" in admin.get(reverse("cases:model_registry")).content.decode()

        assert celery_worker_process.pid == pid and celery_worker_process.poll() is None  # never restarted
        assert first.worker == second.worker == third.worker == fourth.worker
    finally:
        (folder_of_registry() / f"{other}.safetensors").unlink(missing_ok=True)
