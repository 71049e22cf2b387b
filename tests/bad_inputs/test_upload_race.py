"""Two uploads racing with the same client reference: the unique constraint decides, and the
loser gets the usual refusal (UploadRejected, a 400 in the views) instead of a 500; it leaves
no file behind."""

import threading
from pathlib import Path

import pytest
from django.db import connection, transaction

from webapp.cases.models import Case
from webapp.cases.services.uploads import UploadRejected, create_case

pytestmark = pytest.mark.django_db(transaction=True)


def count_files(settings):
    return sum(1 for p in Path(str(settings.PRIVATE_MEDIA_ROOT)).rglob("*") if p.is_file())


def test_same_reference_race_is_a_refusal_not_a_500(owner, upload_file, settings):
    first_created, release = threading.Event(), threading.Event()
    outcome = {}

    def first():
        try:
            with transaction.atomic():  # holds its row uncommitted until released
                create_case(owner, [upload_file("png")], None, client_reference="ward-7")
                first_created.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_created.wait(30)
    files_before = count_files(settings)
    timer = threading.Timer(3.0, release.set)  # commit the first while the second waits on it
    timer.start()
    try:
        with transaction.atomic():
            create_case(owner, [upload_file("png")], None, client_reference="ward-7")
    except UploadRejected as exc:
        outcome["rejected"] = exc.messages
    thread.join(30)
    assert "ward-7" in outcome["rejected"][0]
    assert Case.objects.filter(owner=owner, client_reference="ward-7").count() == 1
    files_after = count_files(settings)
    assert files_after == files_before  # the loser wrote nothing, or removed what it wrote
