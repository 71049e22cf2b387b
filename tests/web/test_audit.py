"""Audit rows are written for each action, in the same transaction, and are never edited."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.urls import reverse

from webapp.audit.models import Action, AppendOnlyError, AuditEvent

pytestmark = pytest.mark.django_db


def actions(user):
    return list(AuditEvent.objects.filter(user=user).order_by("at", "id").values_list("action", flat=True))


def test_login_and_failed_login_are_audited(owner):
    client = Client(REMOTE_ADDR="192.0.2.7")
    assert client.post(reverse("login"), {"username": "owner", "password": "wrong"}).status_code == 200
    failed = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert failed.user is None and failed.detail == {"username": "owner"}
    response = client.post(reverse("login"), {"username": "owner", "password": "correct-horse-battery-9"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(user=owner, action=Action.LOGIN)
    assert event.client_address == "192.0.2.7"


def test_upload_view_image_download_and_delete_are_audited(login, owner, upload_file):
    client = login(owner)
    upload = upload_file("png")
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(reverse("cases:upload"),
                           {"images": [SimpleUploadedFile(upload.name, upload.read())]})
    assert response.status_code == 302
    case_url = response["Location"]
    upload_row = AuditEvent.objects.get(user=owner, action=Action.UPLOAD)
    case_id = upload_row.object_id
    assert upload_row.object_type == "case" and upload_row.client_address == "10.1.2.3"
    assert upload_row.detail["images"][0]["format"] == "png"

    image_id = upload_row.detail["images"][0]["id"]
    preview = reverse("cases:image_file", args=[case_id, image_id, "preview"])
    client.get(preview)  # no case page viewed in this session yet: a row of its own
    client.get(case_url)
    client.get(preview)  # what the case page shows: part of that page's row
    client.get(preview + "?download=1")
    client.get(reverse("cases:image_file", args=[case_id, image_id, "original"]))
    client.post(reverse("cases:delete", args=[case_id]))

    assert actions(owner) == [Action.LOGIN, Action.UPLOAD, Action.VIEW_IMAGE, Action.VIEW_CASE,
                              Action.DOWNLOAD, Action.DOWNLOAD, Action.DELETE]
    viewed = AuditEvent.objects.get(user=owner, action=Action.VIEW_CASE)
    assert viewed.detail == {"images": [{"id": image_id, "result": False}]}
    deleted = AuditEvent.objects.get(user=owner, action=Action.DELETE)
    assert deleted.object_id == case_id  # the trail outlives the case


def test_refused_upload_leaves_no_case_and_no_audit_row(login, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = login(owner).post(reverse("cases:upload"),
                                 {"images": [SimpleUploadedFile("x.png", b"<html>not an image</html>")]})
    assert response.status_code == 400
    assert Action.UPLOAD not in actions(owner)


def test_audit_rows_cannot_be_edited_or_deleted(owner):
    from webapp.audit import services as audit

    event = audit.record(owner, Action.VIEW_CASE, None, "10.0.0.1")
    event.action = Action.DELETE
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action=Action.DELETE)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_database_refuses_raw_update_of_audit_rows(owner):
    from webapp.audit import services as audit

    event = audit.record(owner, Action.VIEW_CASE, None, "10.0.0.1")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET action = 'delete' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == Action.VIEW_CASE


def test_admin_cannot_change_audit_rows(client, administrator):
    from webapp.audit import services as audit

    event = audit.record(administrator, Action.VIEW_CASE, None, "10.0.0.1")
    client.force_login(administrator)
    change_url = reverse("admin:audit_auditevent_change", args=[event.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and b'name="action"' not in page.content  # read-only view
    assert client.post(change_url, {"action": "delete"}).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_delete", args=[event.pk])).status_code == 403
