"""Outlines corrected in the viewer: checking the PNG a browser sends, saving it as a new version
with its audit row, and finding the latest. The model's own mask (``Job.mask``) is never changed:
a correction is a row and a file of its own, so that the model's answer and the clinician's
stay side by side (the export and the site's figures compare them).

Access is checked by the caller (``access.get_visible_image``: whoever may see a film may correct
its outline, as for reviews; a stranger gets 404 before anything here runs)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Count, Max
from PIL import Image, UnidentifiedImageError

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import CaseImage, Job, JobStatus
from webapp.cases.services import files
from webapp.cases.services.rendering import mask_png

from .models import CorrectedOutline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The modes a drawing program or a browser's canvas (always RGBA) writes a black-and-white mask in.
ACCEPTED_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
# A drawn mask is a few large areas of one value: its PNG is some kilobytes even for the largest
# film the product takes (ml.core.limits.MAX_SIDE); a file this large is not a drawn mask.
MAX_BYTES = 8 * 1024 * 1024


class OutlineRefused(Exception):
    """The outline was not saved; ``message`` says why, for a person (the view's 400)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class OutlineSummary:
    """What the case page says of an image's corrected outlines."""

    latest: CorrectedOutline | None
    versions: int


def read_mask(data: bytes, width: int, height: int) -> np.ndarray:
    """The mask in ``data`` as a boolean array (``height``, ``width``), checked by its content:
    a PNG, exactly the film's size, black and white (0/255, or 0/1). Raises OutlineRefused.

    The size is read from the header before any pixel is decoded, so an oversized image (a
    decompression bomb) is refused without being expanded."""
    if len(data) > MAX_BYTES:
        raise OutlineRefused(f"The outline file is larger than {MAX_BYTES // (1024 * 1024)} MiB.")
    if not data.startswith(PNG_SIGNATURE):
        raise OutlineRefused("The outline is not a PNG image (the content was checked).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            if image.size != (width, height):
                raise OutlineRefused(f"The outline is {image.size[0]} × {image.size[1]} pixels; "
                                     f"it must be the film's size, {width} × {height}.")
            if image.mode not in ACCEPTED_MODES:
                raise OutlineRefused(f"The outline's colour mode {image.mode} is not one of "
                                     f"{', '.join(ACCEPTED_MODES)}.")
            image.load()
    except OutlineRefused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise OutlineRefused("The outline PNG could not be read (it is damaged or "
                             "truncated).") from exc
    return _binary(image)


def _binary(image: Image.Image) -> np.ndarray:
    if image.mode == "P":
        image = image.convert("RGBA")
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        colour = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
        if pixels.shape[2] in (2, 4) and np.any(pixels[..., -1] != 255):
            raise OutlineRefused("The outline must be opaque (no transparent pixels).")
        if np.any(colour != colour[..., :1]):
            raise OutlineRefused("The outline must be black and white, not in colour.")
        pixels = colour[..., 0]
    values = np.unique(pixels)
    if image.mode == "1" or set(values.tolist()) <= {0, 255}:
        return pixels > 0
    if set(values.tolist()) <= {0, 1}:
        return pixels == 1
    raise OutlineRefused("The outline must be binary: every pixel 0 or 255 (or 0 or 1), "
                         f"but it has {len(values)} different values.")


@transaction.atomic
def save_outline(user, image: CaseImage, data: bytes,
                 client_address: str | None = None) -> CorrectedOutline:
    """Check ``data`` and save it as the image's next outline version, with its audit row, in
    one transaction. The job row is locked first, so two saves at once get versions n and n+1
    (not the same one twice). The file is the PNG re-encoded from the checked pixels (0 or 255),
    never the bytes as sent (no chunk of the sender's survives).

    The file is written before its row (files are write-once, under a new name) and removed if
    the row cannot be written. Should an enclosing transaction roll back later, the file names
    nothing and stays in the case's folder, which deletion and retention sweep whole."""
    mask = read_mask(data, image.width, image.height)
    job = Job.objects.select_for_update().get(image_id=image.pk)
    if job.status != JobStatus.DONE:
        raise OutlineRefused(f"This film has no result yet (its analysis is {job.status}); its "
                             f"outline can be corrected once the analysis is done.")
    version = (CorrectedOutline.objects.filter(image=image).aggregate(last=Max("version"))["last"]
               or 0) + 1
    name = files.save(f"{files.image_folder(image)}/outline-v{version}.png",
                      mask_png(mask.astype(np.uint8)))
    try:
        outline = CorrectedOutline.objects.create(
            image=image, version=version, mask=name, empty=not mask.any(), created_by=user,
            based_on_model_version=job.model_version)
        audit.record(user, Action.OUTLINE_CORRECTED, image, client_address, detail={
            "case": str(image.case_id), "outline": outline.pk, "version": version,
            "empty": outline.empty, "pixels": int(mask.sum()),
            "model_version": outline.based_on_model_version})
    except BaseException:
        files.remove([name])
        raise
    return outline


def latest_outline(image: CaseImage) -> CorrectedOutline | None:
    return image.corrected_outlines.select_related("created_by").order_by("-version").first()


def summaries(images) -> dict:
    """{image id: OutlineSummary} for every image given, in two queries."""
    ids = [image.pk for image in images]
    counts = dict(CorrectedOutline.objects.filter(image_id__in=ids).values("image_id")
                  .annotate(n=Count("pk")).values_list("image_id", "n"))
    latest = {}
    for outline in (CorrectedOutline.objects.filter(image_id__in=ids)
                    .select_related("created_by").order_by("image_id", "-version")):
        latest.setdefault(outline.image_id, outline)
    return {image_id: OutlineSummary(latest.get(image_id), counts.get(image_id, 0))
            for image_id in ids}
