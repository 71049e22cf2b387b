"""Login on every page and endpoint, role checks, the admin URL configurable, uploads never
served as static files, and the audit log unalterable through the admin."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.support.data import REPO
from webapp.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

# The only page an anonymous visitor may see, and /favicon.ico (a redirect to the static icon,
# which browsers fetch on every page, the login page included); anything else fails below.
PUBLIC = {"login", "favicon"}


def all_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def concrete(route: str) -> str:
    """A URL for a route pattern, with plausible values in its converters."""
    import re

    route = route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\", "")
    route = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), route)
    route = re.sub(r"<int:\w+>", "1", route)
    route = re.sub(r"<(?:str|slug|path):\w+>", "x", route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
    return "/" + route


def test_every_page_and_endpoint_needs_a_login(client):
    checked = 0
    for route, pattern in all_patterns():
        if pattern.name in PUBLIC or route.startswith("static"):
            continue
        if "(" in route or "[" in route:  # regex routes left unresolved (e.g. admin internals)
            continue
        url = concrete(route)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in (301, 302, 401, 403, 404, 405), (method, url,
                                                                             response.status_code)
            if response.status_code in (301, 302):
                assert "login" in response["Location"], (method, url, response["Location"])
            checked += 1
    assert checked > 10


def test_clinician_cannot_use_the_admin_and_administrator_can(login, owner, administrator):
    from django.urls import reverse

    clinician = login(owner).get(reverse("admin:index"))
    assert clinician.status_code == 302 and "login" in clinician["Location"]
    assert login(administrator).get(reverse("admin:index")).status_code == 200


def test_audit_rows_cannot_be_changed_or_deleted_through_the_admin(login, administrator, owner):
    from django.urls import reverse

    from webapp.audit import services as audit

    event = audit.record(owner, "login", client_address="10.0.0.1")
    client = login(administrator)
    change = reverse("admin:audit_auditevent_change", args=[event.pk])
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert client.post(change, {"action": "logout", "username": "x"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(reverse("admin:audit_auditevent_changelist"),
                       {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert bulk.status_code in (200, 302, 403)
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.action == "login" and event.username == "owner"


def test_admin_url_is_configurable():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
           "DJANGO_ADMIN_URL": "back-office-7f3a/"}
    code = ("from django.urls import reverse, resolve, Resolver404\n"
            "print(reverse('admin:index'))\n"
            "try:\n    resolve('/admin/'); print('admin-still-there')\n"
            "except Resolver404:\n    print('admin-gone')\n")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["/back-office-7f3a/", "admin-gone"]


def test_uploaded_files_are_never_served_as_static(login, owner, settings):
    from tests.support.factories import CaseFactory

    case = CaseFactory(owner=owner)
    image = case.images.get()
    root = Path(str(settings.PRIVATE_MEDIA_ROOT)).resolve()
    assert (root / image.original.name).is_file()

    # Not under any static location, and no MEDIA_URL mapping for it.
    static_places = [Path(str(settings.STATIC_ROOT)).resolve()] + [
        Path(str(p)).resolve() for p in settings.STATICFILES_DIRS]
    for place in static_places:
        assert place != root and place not in root.parents and root not in place.parents
    assert not getattr(settings, "MEDIA_URL", "") or settings.MEDIA_ROOT != str(root)

    name = image.original.name
    for client in (Client(), login(owner)):
        for url in (f"/static/{name}", f"/media/{name}", f"/private-media/{name}", f"/{name}",
                    f"/static/../private-media/{name}", f"/static/%2e%2e/var/private-media/{name}",
                    f"/static/{root.name}/{name}"):
            response = client.get(url)
            assert response.status_code in (302, 404), (url, response.status_code)
            if response.status_code == 302:
                assert "login" in response["Location"]
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"DICM" not in body


def test_production_media_root_is_outside_static(monkeypatch):
    assert "private" in str(django_settings.PRIVATE_MEDIA_ROOT) or "media" in str(
        django_settings.PRIVATE_MEDIA_ROOT)
