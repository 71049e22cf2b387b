"""Using the site's pages as a clinician does, from a test's Django client."""

from __future__ import annotations


def upload_through_page(client, files) -> str:
    """POST ``files`` (uploaded files) to the upload page as one case; returns the case's id
    from the redirect to its page (the upload must be accepted)."""
    from django.urls import reverse

    response = client.post(reverse("cases:upload"), {"images": list(files)})
    assert response.status_code == 302, response.content[:2000]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]
