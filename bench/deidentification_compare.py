"""PS3.15 de-identification: the product's module against maintained libraries, on real DICOMs
and on the test suite.

    .venv/bin/python bench/deidentification_compare.py [--images 200] [--tests]

Candidates, each called as its documentation shows (bytes in, bytes out, nothing else added):

- ``product``: ``webapp.cases.services.deidentify.deidentify_dicom``, what uploads store
  (since issue 24: dicom-anonymizer's table with the product's choices, see its docstring);
- ``hand-written``: the module as it was before (its own list of about 250 attributes), read
  from git (commit ``HANDWRITTEN_COMMIT``); left out where git or that commit is missing;
- ``dicom-anonymizer``: Kitware's ``dicomanonymizer.anonymize_dataset``, the standard's
  Table E.1-1 (2026c edition) with private tags deleted;
- ``dicognito``: ``dicognito.anonymizer.Anonymizer().anonymize`` (replaces names, ids, dates,
  UIDs with plausible fakes);
- ``deid``: pydicom/deid's ``replace_identifiers`` with its default recipe, private tags removed.

Inputs: the first N DICOMs of the shared SIIM-ACR subset (read in place, never copied), each
once as it is and once with the identity the test suite plants
(tests/security/test_deidentification.py: name, ids, birth date, address, institution, physician,
accession, operator, study description, device serial, a private tag).

Reported per candidate:
- *identifying attributes left*: elements anywhere in the file (sequences and file meta
  included) that PS3.15 Table E.1-1 (basic profile, the 2026c table shipped with
  dicom-anonymizer) says to remove, empty, replace or re-UID, and that are still there with
  their original, non-empty value; plus private elements. Total over all files, the files with
  any, and which attributes;
- *planted values found*: planted identity strings still present anywhere in the output bytes;
- *reads*: ``ml.core.reading.read_xray`` reads the output, its pixels equal the input's, and
  Rows, Columns, PhotometricInterpretation, BitsStored, PixelSpacing, ViewPosition, Modality,
  SOPClassUID and the transfer syntax are unchanged;
- *same study, same UID*: two runs (fresh state) give the same StudyInstanceUID;
- *marked*: PatientIdentityRemoved YES and DeidentificationMethodCodeSequence 113100;
- the time per file.
Written to bench/results/deidentification_compare.json.

``--tests`` also runs the suite's de-identification tests (tests/security/test_deidentification.py
and tests/api/test_dicom_conformance.py) once per candidate, with the candidate in place of the
product's function where uploads call it: they need PostgreSQL and Redis as for ``pytest``
(DATABASE_URL, CELERY_BROKER_URL), and dciodvfy for the conformance test.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.tag import Tag  # noqa: E402

from ml.core.reading import read_xray  # noqa: E402
from tests.support.data import REPO, subset_images  # noqa: E402

HANDWRITTEN_COMMIT = "174755adc0e939983e570b33fb299de0d95040ea"
TESTS = ["tests/security/test_deidentification.py", "tests/api/test_dicom_conformance.py"]

PLANTED = {
    "PatientName": "PHI^JANE^Q", "PatientID": "MRN-4471", "PatientBirthDate": "19600101",
    "OtherPatientIDs": "ALT-99", "PatientAddress": "1 Hospital Road", "InstitutionName": "St PHI",
    "ReferringPhysicianName": "DR^WHO", "AccessionNumber": "ACC-123", "OperatorsName": "OPS^X",
    "StudyDescription": "Chest PA for Jane", "DeviceSerialNumber": "SN-1",
    "StudyDate": "20240315", "StudyTime": "101530", "StationName": "XR-WARD7",
    "InstitutionAddress": "Ward 7, 1 Hospital Road", "DetectorID": "DET-0042",
    "InstanceCreationDate": "20240316", "ConsultingPhysicianName": "DR^HOUSE",
}
PRIVATE_VALUE = "PHI in a private tag"
READER_FIELDS = ("Rows", "Columns", "PhotometricInterpretation", "BitsStored", "PixelSpacing",
                 "ViewPosition", "Modality", "SOPClassUID")


# --- the candidates ------------------------------------------------------------------------------
_PRODUCT = None  # the product's function, kept when a test run puts a candidate in its place


def product(data: bytes) -> bytes:
    from webapp.cases.services.deidentify import deidentify_dicom
    return (_PRODUCT or deidentify_dicom)(data)


_handwritten = None


def handwritten(data: bytes) -> bytes:
    global _handwritten
    if _handwritten is None:
        source = subprocess.run(
            ["git", "show", f"{HANDWRITTEN_COMMIT}:webapp/cases/services/deidentify.py"],
            cwd=REPO, capture_output=True, text=True, check=True).stdout
        _handwritten = {}
        exec(compile(source, "deidentify (hand-written)", "exec"), _handwritten)  # noqa: S102
    return _handwritten["deidentify_dicom"](data)


def _write(dataset) -> bytes:
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=False)
    return out.getvalue()


def dicom_anonymizer(data: bytes) -> bytes:
    from functools import partial

    from dicomanonymizer import anonymize_dataset, initialize_actions
    dataset = pydicom.dcmread(io.BytesIO(data))
    anonymize_dataset(dataset, delete_private_tags=True,
                      base_rules_gen=partial(initialize_actions, "dicomfields_2026c"))
    return _write(dataset)


def dicognito(data: bytes) -> bytes:
    from dicognito.anonymizer import Anonymizer
    dataset = pydicom.dcmread(io.BytesIO(data))
    Anonymizer().anonymize(dataset)
    return _write(dataset)


def deid(data: bytes) -> bytes:
    import tempfile
    import logging

    from deid.config import DeidRecipe
    from deid.dicom import get_identifiers, replace_identifiers
    logging.getLogger("deid").setLevel(logging.ERROR)
    with tempfile.NamedTemporaryFile(suffix=".dcm") as handle:
        handle.write(data)
        handle.flush()
        ids = get_identifiers([handle.name], remove_private=True)
        [dataset] = replace_identifiers([handle.name], ids=ids, deid=DeidRecipe(), save=False,
                                        remove_private=True)
    return _write(dataset)


CANDIDATES = {"product": product, "hand-written": handwritten,
              "dicom-anonymizer": dicom_anonymizer, "dicognito": dicognito, "deid": deid}


def available() -> dict:
    found = dict(CANDIDATES)
    try:
        handwritten(b"")
    except subprocess.CalledProcessError:
        print(f"(hand-written left out: commit {HANDWRITTEN_COMMIT[:7]} is not in this clone)")
        found.pop("hand-written")
    except Exception:  # noqa: BLE001  (read, then refused the empty input: it is there)
        pass
    return found


# --- the yardstick: PS3.15 Table E.1-1, basic profile --------------------------------------------
def standard_table():
    """(exact tags, masked repeating-group tags) that the basic profile does not keep."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
    tags = dicom_anonymization_database_selector("dicomfields_2026c")
    exact, masked = set(), []
    for category, entries in tags.items():
        if category.startswith("K"):
            continue
        for entry in entries:
            (exact.add(Tag(entry[0], entry[1])) if len(entry) == 2 else masked.append(entry))
    return exact, masked


EXACT, MASKED = standard_table()


def _in_table(tag) -> bool:
    return tag in EXACT or any(tag.group & m[2] == m[0] & m[2] and tag.element & m[3] == m[1] & m[3]
                               for m in MASKED)


def _values(dataset) -> dict:
    """(path of tags) -> value, for every element with a non-empty value, sequences walked."""
    found = {}

    def visit(ds, prefix):
        for element in ds:
            path = prefix + (element.tag,)
            if element.VR == "SQ":
                for item in element.value or []:
                    visit(item, path)
            elif element.tag != Tag(0x7FE0, 0x0010) and element.value not in (None, "", b""):
                found[path] = (element, str(element.value))
    visit(dataset, ())
    if getattr(dataset, "file_meta", None) is not None:
        visit(dataset.file_meta, ())
    return found


_NO_INFORMATION = re.compile(r"^[0.]*$")  # 000000.00: a dummy time (SIIM's own, and libraries')


def identifying_left(before, after) -> list[str]:
    """Names of the attributes of ``after`` that the profile changes but that kept their value."""
    old, new = _values(before), _values(after)
    left = []
    for path, (element, value) in new.items():
        tag = path[-1]
        if any(t.is_private for t in path):
            left.append(f"private {tag}")
        elif (_in_table(tag) and old.get(path, (None, None))[1] == value
              and not _NO_INFORMATION.match(value)):
            left.append(element.keyword or str(tag))
    return left


def planted(data: bytes) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in PLANTED.items():
        setattr(dataset, keyword, value)
    dataset.add_new(Tag(0x0009, 0x0010), "LO", "ACME PRIVATE")
    dataset.add_new(Tag(0x0009, 0x1001), "LO", PRIVATE_VALUE)
    return _write(dataset)


def reads_the_same(before: bytes, after: bytes) -> tuple[bool, list[str]]:
    problems = []
    try:
        original, result = read_xray(before), read_xray(after)
    except Exception as exc:  # noqa: BLE001  (the figure: it does not read)
        return False, [f"unreadable: {exc}"]
    if not np.array_equal(original.pixels, result.pixels):
        problems.append("pixels differ")
    if original.pixel_spacing_mm != result.pixel_spacing_mm:
        problems.append("pixel spacing read differs")
    a, b = pydicom.dcmread(io.BytesIO(before)), pydicom.dcmread(io.BytesIO(after))
    for keyword in READER_FIELDS:
        if str(a.get(keyword)) != str(b.get(keyword)):
            problems.append(keyword)
    if a.file_meta.TransferSyntaxUID != b.file_meta.TransferSyntaxUID:
        problems.append("TransferSyntaxUID")
    return not problems, problems


def marked(after: bytes) -> bool:
    dataset = pydicom.dcmread(io.BytesIO(after), stop_before_pixels=True)
    codes = dataset.get("DeidentificationMethodCodeSequence") or []
    return dataset.get("PatientIdentityRemoved") == "YES" and any(
        c.get("CodeValue") == "113100" for c in codes)


def fresh(name):
    """The candidate as a new process would run it (no state kept from earlier files)."""
    if name == "dicom-anonymizer":
        import dicomanonymizer.simpledicomanonymizer as module
        module.dictionary.clear()  # its original -> new UID map (kept in memory, per process)
    return CANDIDATES[name]


def compare(paths: list[Path], candidates: dict) -> dict:
    figures = {}
    for name in candidates:
        left, files_with, planted_found, unread, problems = Counter(), 0, Counter(), 0, Counter()
        failures, elapsed, done = 0, 0.0, 0
        same_uid = marked_all = True
        for path in paths:
            original = path.read_bytes()
            for source in (original, planted(original)):
                start = time.perf_counter()
                try:
                    result = fresh(name)(source)
                except Exception as exc:  # noqa: BLE001
                    failures += 1
                    problems[f"raised {type(exc).__name__}"] += 1
                    continue
                elapsed += time.perf_counter() - start
                done += 1
                names = identifying_left(pydicom.dcmread(io.BytesIO(source)),
                                         pydicom.dcmread(io.BytesIO(result)))
                left.update(names)
                files_with += bool(names)
                if source is not original:
                    planted_found.update(k for k, v in {**PLANTED, "private": PRIVATE_VALUE}.items()
                                         if len(v) >= 4 and v.encode() in result)
                ok, why = reads_the_same(source, result)
                unread += not ok
                problems.update(why)
                marked_all &= marked(result)
            if path == paths[0]:
                uid = lambda data: pydicom.dcmread(io.BytesIO(data)).get("StudyInstanceUID")  # noqa: E731
                first, second = uid(fresh(name)(original)), uid(fresh(name)(original))
                same_uid = first is not None and first == second
        figures[name] = {
            "files": done, "raised": failures,
            "identifying_attributes_left": sum(left.values()),
            "files_with_identifying_attributes": files_with,
            "attributes_left": dict(left.most_common()),
            "planted_values_found": dict(planted_found),
            "not_reading_the_same": unread, "reading_problems": dict(problems),
            "same_study_same_uid": same_uid, "marked_as_deidentified": marked_all,
            "ms_per_file": round(1000 * elapsed / max(done, 1), 1),
        }
    return figures


class _InPlaceOfTheProduct:
    """pytest plugin: the candidate in place of the product's function, where uploads call it
    and where a test imports it."""

    def __init__(self, name: str):
        self.name = name

    def pytest_sessionstart(self, session):
        global _PRODUCT
        from webapp.cases.services import deidentify, uploads
        _PRODUCT = deidentify.deidentify_dicom
        uploads.deidentify_dicom = deidentify.deidentify_dicom = CANDIDATES[self.name]


def run_tests(candidates: dict) -> dict:
    """The suite's de-identification tests per candidate, each in its own process."""
    results = {}
    for name in candidates:
        run = subprocess.run([sys.executable, __file__, "--pytest-with", name], cwd=REPO,
                             capture_output=True, text=True)
        summary = [line for line in run.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
        failed = sorted({m.group(1) for m in re.finditer(r"FAILED \S+::(\w+)", run.stdout)})
        results[name] = {"summary": summary[-1].strip("= ") if summary else run.stdout[-300:],
                         "failed": failed}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200, help="real DICOMs to use (each twice)")
    parser.add_argument("--tests", action="store_true",
                        help="also run the suite's de-identification tests per candidate")
    parser.add_argument("--pytest-with", help=argparse.SUPPRESS)  # (one candidate, by run_tests)
    args = parser.parse_args()
    if args.pytest_with:
        import pytest
        sys.exit(pytest.main([*TESTS, "-q", "-rf", "-p", "no:cacheprovider"],
                             plugins=[_InPlaceOfTheProduct(args.pytest_with)]))
    import django
    django.setup()
    paths = subset_images("dcm")[:args.images]
    if not paths:
        sys.exit("No DICOM in the shared SIIM-ACR subset (../shared/data/siim-acr-subset).")
    candidates = available()
    figures = compare(paths, candidates)
    tests = run_tests(candidates) if args.tests else {}
    print(f"{len(paths)} real DICOMs, each as it is and with a planted identity "
          f"({2 * len(paths)} files per candidate)\n")
    print(f"{'candidate':18} {'left':>6} {'files':>6} {'planted':>8} {'misread':>8} "
          f"{'same UID':>9} {'marked':>7} {'ms/file':>8}")
    for name, f in figures.items():
        print(f"{name:18} {f['identifying_attributes_left']:>6} "
              f"{f['files_with_identifying_attributes']:>6} "
              f"{sum(f['planted_values_found'].values()):>8} {f['not_reading_the_same']:>8} "
              f"{str(f['same_study_same_uid']):>9} {str(f['marked_as_deidentified']):>7} "
              f"{f['ms_per_file']:>8}")
    for name, f in figures.items():
        print(f"\n{name}: identifying attributes left {f['attributes_left'] or 'none'}")
        if f["planted_values_found"]:
            print(f"  planted values found: {f['planted_values_found']}")
        if f["reading_problems"]:
            print(f"  reading: {f['reading_problems']}")
    if tests:
        print(f"\nThe suite's de-identification tests ({', '.join(TESTS)}):")
        for name, result in tests.items():
            print(f"  {name:18} {result['summary']}"
                  + (f"; failed: {', '.join(result['failed'])}" if result["failed"] else ""))
            figures[name]["tests"] = result
    out = REPO / "bench" / "results" / "deidentification_compare.json"
    out.write_text(json.dumps({"images": len(paths), "candidates": figures}, indent=2) + "\n")
    print(f"\nWritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
