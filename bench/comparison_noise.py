"""How much the model's size measures move when nothing about the patient changed: the noise
floor below which a follow-up comparison (webapp.cases.services.comparison) must say
``unchanged``.

    .venv/bin/python bench/comparison_noise.py [--dicom 12] [--other 12] [--threads 1]

Films: positives of the held-out patients (``ml/splits/siim-acr-subset-validation-patients.txt``:
the shipped model never trained on them) of the shared SIIM-ACR subset, ``--dicom`` DICOMs and
``--other`` JPEG/PNG films, in file-name order, kept only where the model itself calls the
original positive (a size trend is only ever computed between two positive calls).

Each film is predicted as it is and as versions of itself that a second film of an unchanged
patient could plausibly be:

- re-encoded: JPEG at quality 75 and 95, PNG (lossless: the decoder path only);
- rotated about the centre by -4, -2, +2, +4 degrees;
- shifted by 16 px (1.6% of a 1,024 px film) diagonally, both ways;
- scaled about the centre by 0.95 and 1.05 (a magnification change, as between a PA and an AP
  film or a different tube distance: the projected lung, and its air, is that much bigger).

Each version is predicted the way the worker predicts: ``ml.serving.inference.Predictor`` with
the configured model, the backend ``auto`` resolves to here and the model file's flip TTA, on an
``XRay`` decoded by ``ml.core.reading`` (the reader the worker's ``read_checked`` runs in a child
process). A version keeps the original's pixel spacing, as the same film's DICOM header would, so
that its rim depth is in millimetres where the original's is.

Reported, over pairs (original, version) where both are called positive:
|area_fraction change| (absolute, in ``Job.area_fraction``'s units: a fraction of the image),
relative (|change| / the original's area), |rim depth change| in mm (DICOMs) and relative (all
films, from the rim depth as a share of the image width): median, 95th percentile, 99th
percentile and maximum, overall and for each kind of version; the pairs whose call flipped; the
thresholds they imply (``implied``: the largest change measured, plus a 25% margin, rounded up;
the relative one over films of at least ``LARGE_AREA`` of the image, where the absolute one no
longer covers the noise); and how many pairs the product's rule
(``webapp.cases.services.comparison.area_change_is_noise`` with the configured
COMPARISON_AREA_NOISE and COMPARISON_AREA_NOISE_RELATIVE) would call larger or smaller: it must be
none. Written to bench/results/comparison_noise.json. About 0.5 s a prediction on one idle core:
24 films x 12 predictions, 3 to 5 minutes on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import dataclasses
import io
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ml.core.reading import XRay, read_xray  # noqa: E402
from ml.serving.inference import Predictor, configured_model_path  # noqa: E402
from tests.support.data import REPO, SHARED_DATA  # noqa: E402

HELD_OUT = REPO / "ml" / "splits" / "siim-acr-subset-validation-patients.txt"
RESULTS = REPO / "bench" / "results" / "comparison_noise.json"
SHIFT_PX = 16
MARGIN = 1.25  # over the largest change measured: ~250 pairs do not show the far tail
LARGE_AREA = 0.02  # of the image: from here on the noise grows with the area (magnification)


def encoded(pixels: np.ndarray, kind: str, quality: int | None = None) -> bytes:
    buffer = io.BytesIO()
    if kind == "jpeg":
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    else:
        Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def warped(pixels: np.ndarray, angle: float = 0.0, scale: float = 1.0,
           shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Rotated/scaled about the centre, then shifted; what falls outside is black, as on a film
    that was placed off square."""
    height, width = pixels.shape
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(pixels, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def versions(xray: XRay) -> dict[str, tuple[str, XRay]]:
    """Each version's name -> (its kind, the X-ray), with the original's spacing and header."""
    def as_read(data: bytes) -> XRay:
        read = read_xray(data)
        return dataclasses.replace(xray, pixels=read.pixels, source_format=read.source_format)

    def as_pixels(pixels: np.ndarray) -> XRay:
        return dataclasses.replace(xray, pixels=pixels)

    pixels = xray.pixels
    out = {
        "jpeg-q75": ("re-encoded", as_read(encoded(pixels, "jpeg", 75))),
        "jpeg-q95": ("re-encoded", as_read(encoded(pixels, "jpeg", 95))),
        "png": ("re-encoded", as_read(encoded(pixels, "png"))),
    }
    for angle in (-4, -2, 2, 4):
        out[f"rotate{angle:+d}"] = ("rotated", as_pixels(warped(pixels, angle=angle)))
    for sign in (1, -1):
        out[f"shift{sign * SHIFT_PX:+d}px"] = ("shifted", as_pixels(
            warped(pixels, shift=(sign * SHIFT_PX, sign * SHIFT_PX))))
    for scale in (0.95, 1.05):
        out[f"scale{scale:.2f}"] = ("scaled", as_pixels(warped(pixels, scale=scale)))
    return out


def measures(prediction) -> dict:
    findings = prediction.findings
    return {"positive": bool(prediction.positive),
            "probability": round(float(prediction.probability), 4),
            "area_fraction": float(prediction.area_fraction),
            "rim_depth_mm": findings.rim_depth_mm,
            "rim_depth_percent_width": findings.rim_depth_percent_width}


def held_out_positives(dicom: int, other: int) -> list[dict]:
    patients = set(HELD_OUT.read_text().split())
    with (SHARED_DATA / "labels.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["has_pneumothorax"] == "1" and r["patient_id"] in patients]
    rows.sort(key=lambda r: r["image"])
    dicoms = [r for r in rows if r["image"].endswith(".dcm")]
    others = [r for r in rows if not r["image"].endswith(".dcm")]
    return dicoms[: dicom * 3], others[: other * 3]  # candidates: not every one is called positive


def distribution(values: list[float]) -> dict | None:
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    return {"n": int(array.size), "median": round(float(np.median(array)), 6),
            "p95": round(float(np.percentile(array, 95)), 6),
            "p99": round(float(np.percentile(array, 99)), 6),
            "max": round(float(array.max()), 6)}


def summarise(pairs: list[dict]) -> dict:
    both = [p for p in pairs if p["original"]["positive"] and p["version"]["positive"]]
    area_abs, area_rel, rim_mm, rim_rel = [], [], [], []
    for pair in both:
        a, b = pair["original"], pair["version"]
        change = abs(b["area_fraction"] - a["area_fraction"])
        area_abs.append(change)
        area_rel.append(change / a["area_fraction"])
        if a["rim_depth_mm"] is not None and b["rim_depth_mm"] is not None:
            rim_mm.append(abs(b["rim_depth_mm"] - a["rim_depth_mm"]))
        rim_rel.append(abs(b["rim_depth_percent_width"] - a["rim_depth_percent_width"])
                       / a["rim_depth_percent_width"])
    return {"pairs": len(pairs), "both_positive": len(both),
            "call_flipped": len(pairs) - len(both),
            "area_fraction_change_abs": distribution(area_abs),
            "area_fraction_change_relative": distribution(area_rel),
            "rim_depth_change_mm": distribution(rim_mm),
            "rim_depth_change_relative": distribution(rim_rel)}


def round_up(value: float, step: float) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 6)


def implied_thresholds(pairs: list[dict]) -> dict:
    """The thresholds the measured noise implies (see the module's docstring)."""
    changes, large_relative, rims = [], [], []
    for pair in pairs:
        a, b = pair["original"], pair["version"]
        if not (a["positive"] and b["positive"]):
            continue
        change = abs(b["area_fraction"] - a["area_fraction"])
        larger = max(a["area_fraction"], b["area_fraction"])
        changes.append(change)
        if larger >= LARGE_AREA:
            large_relative.append(change / larger)
        if a["rim_depth_mm"] is not None and b["rim_depth_mm"] is not None:
            rims.append(abs(b["rim_depth_mm"] - a["rim_depth_mm"]))
    return {
        "margin": MARGIN, "large_area": LARGE_AREA,
        "area_noise_abs": round_up(max(changes) * MARGIN, 0.0005),
        "area_noise_relative_of_large": round_up(max(large_relative) * MARGIN, 0.01),
        "rim_depth_noise_mm": round_up(max(rims) * MARGIN, 0.5) if rims else None,
    }


def product_rule(pairs: list[dict]) -> dict:
    """What the product's comparison rule, with the configured thresholds, calls each pair whose
    two calls are positive (the same film: every one must be ``unchanged``)."""
    import django

    django.setup()
    from django.conf import settings

    from webapp.cases.services.comparison import area_change_is_noise

    beyond = [f"{p['film']} {p['version_name']}" for p in pairs
              if p["original"]["positive"] and p["version"]["positive"]
              and not area_change_is_noise(p["version"]["area_fraction"],
                                           p["original"]["area_fraction"])]
    return {"COMPARISON_AREA_NOISE": settings.COMPARISON_AREA_NOISE,
            "COMPARISON_AREA_NOISE_RELATIVE": settings.COMPARISON_AREA_NOISE_RELATIVE,
            "called_larger_or_smaller": len(beyond), "which": beyond}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dicom", type=int, default=12, help="DICOM films (default 12)")
    parser.add_argument("--other", type=int, default=12, help="JPEG/PNG films (default 12)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (SHARED_DATA / "labels.csv").is_file():
        sys.exit(f"comparison_noise: the shared data set is missing ({SHARED_DATA})")

    started = time.perf_counter()
    predictor = Predictor(configured_model_path(), backend="auto", threads=args.threads)
    films, pairs = [], []
    wanted_counts = (args.dicom, args.other)
    for candidates, wanted in zip(held_out_positives(args.dicom, args.other), wanted_counts):
        kept = 0
        for row in candidates:
            if kept == wanted:
                break
            xray = read_xray(SHARED_DATA / row["image"])
            original = measures(predictor.predict(xray))
            if not original["positive"]:
                continue  # no size to compare: the call flips are counted among the versions
            kept += 1
            films.append({"image": row["image"], "format": xray.source_format,
                          "pixel_spacing_mm": xray.pixel_spacing_mm, **original})
            for name, (kind, version) in versions(xray).items():
                pairs.append({"film": row["image"], "version_name": name, "kind": kind,
                              "original": original,
                              "version": measures(predictor.predict(version))})
            print(f"{len(films):3d} {xray.source_format:5s} area {original['area_fraction']:.4f} "
                  f"rim {original['rim_depth_mm']} mm", flush=True)

    if not any(p["original"]["positive"] and p["version"]["positive"] for p in pairs):
        sys.exit("comparison_noise: no film was called positive twice; nothing to measure")
    overall = summarise(pairs)
    by_kind = {kind: summarise([p for p in pairs if p["kind"] == kind])
               for kind in ("re-encoded", "rotated", "shifted", "scaled")}
    by_version = {name: summarise([p for p in pairs if p["version_name"] == name])
                  for name in dict.fromkeys(p["version_name"] for p in pairs)}
    report = {
        "what": "model size measures, each film against versions of itself",
        "model": predictor.version, "backend": predictor.backend_name,
        "flip_tta": predictor.flip_tta, "threads": args.threads, "machine": platform.machine(),
        "films": len(films), "dicom_films": sum(f["format"] == "dicom" for f in films),
        "seconds": round(time.perf_counter() - started, 1),
        "overall": overall, "by_kind": by_kind, "by_version": by_version,
        "implied": implied_thresholds(pairs), "product_rule": product_rule(pairs),
        "film_list": films, "pair_list": pairs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    shown = ("model", "backend", "films", "dicom_films", "seconds", "overall", "by_kind",
             "implied", "product_rule")
    print(json.dumps({k: report[k] for k in shown}, indent=1))
    print(f"written to {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
