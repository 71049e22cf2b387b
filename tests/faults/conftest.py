import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support.data import subset_image
from tests.support.pages import upload_through_page


@pytest.fixture
def upload(login, owner):
    """Upload real X-ray content through the real view under a chosen display name; returns
    the case's job ids. A name starting with fault-slow/-hang/-crash triggers the test hook."""
    from webapp.cases.models import Job

    client = login(owner)

    def post(*names, extension="png"):
        data = subset_image(extension).read_bytes()
        files = [SimpleUploadedFile(name, data) for name in names]
        case_id = upload_through_page(client, files)
        return list(Job.objects.filter(image__case_id=case_id).order_by("image__position")
                    .values_list("pk", flat=True))
    return post
