"""What the case page writes: DICOM keywords and values as people read them, and the result with
the threshold it was decided at (webapp.cases.services.display: plain functions)."""

import pytest

from webapp.cases.services.display import (
    dicom_age,
    dicom_date,
    dicom_label,
    probability_text,
    result_text,
    study_fields,
)


@pytest.mark.parametrize("value, shown", [
    ("19010101", "1 January 1901"), ("20240229", "29 February 2024"), ("1999.12.31", "31 December 1999"),
    ("20231301", "20231301"), ("2023", "2023"), ("", ""),  # not a date: shown as it is
])
def test_dicom_dates_read_as_dates(value, shown):
    assert dicom_date(value) == shown


@pytest.mark.parametrize("keyword, label", [
    ("StudyDate", "Study date"), ("PatientSex", "Sex"), ("PatientAge", "Age"), ("ViewPosition", "View"),
    ("BodyPartExamined", "Body part"), ("StudyInstanceUID", "Study UID"),
    ("AcquisitionDeviceProcessingDescription", "Acquisition device processing description"),
    ("SOPClassUID", "SOP class UID"),
])
def test_dicom_keywords_read_as_words(keyword, label):
    assert dicom_label(keyword) == label


@pytest.mark.parametrize("value, shown", [("045Y", "45 years"), ("001Y", "1 year"), ("006M", "6 months"),
                                          ("081", "81 years"), ("3W", "3 weeks"), ("old", "old")])
def test_dicom_ages_read_as_ages(value, shown):
    assert dicom_age(value) == shown


def test_study_fields_keep_order_and_skip_empty_values():
    metadata = {"Modality": "CR", "StudyDate": "19010101", "PatientSex": "F", "StudyDescription": "",
                "ViewPosition": "AP", "Manufacturer": "Acme"}
    assert study_fields(metadata) == [
        ("Modality", "CR"), ("Study date", "1 January 1901"), ("Sex", "Female"),
        ("View", "AP (anteroposterior)"), ("Manufacturer", "Acme")]
    assert study_fields({}) == [] and study_fields(None) == []


def test_probability_is_given_with_its_threshold():
    assert probability_text(0.63, 0.45) == "probability 0.63 (suspected at ≥ 0.45, the model's operating point)"
    # Never "0.48 (suspected at ≥ 0.48)" for an image below the threshold: more digits then.
    assert probability_text(0.4779, 0.4783) == ("probability 0.4779 (suspected at ≥ 0.4783, "
                                                "the model's operating point)")
    assert probability_text(0.5, 0.5).startswith("probability 0.50 (suspected at ≥ 0.50")
    assert probability_text(0.63, None) == "probability 0.63 (the threshold of this model is not recorded)"


def test_result_text_of_done_and_unfinished_jobs():
    done = {"status": "done", "probability": 0.2, "positive": False, "area_fraction": 0.0,
            "area_cm2": None, "model_version": "unet-x"}
    assert result_text(done, 0.45) == ("No pneumothorax detected · probability 0.20 (suspected at "
                                       "≥ 0.45, the model's operating point) · model unet-x")
    positive = {**done, "probability": 0.81, "positive": True, "area_fraction": 0.0512, "area_cm2": 12.34}
    assert result_text(positive, 0.45) == ("Pneumothorax suspected · probability 0.81 (suspected at "
                                           "≥ 0.45, the model's operating point) · area 5.1% of the "
                                           "image (12.3 cm²) · model unet-x")
    assert result_text({**done, "status": "running", "probability": None}, 0.45) == ""
