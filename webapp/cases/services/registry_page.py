"""What the registry page shows: each model's held-out figures (from its ml.evaluate report,
else those stored in its file), the active model's beside each candidate's."""

from __future__ import annotations

from webapp.cases.models import RegisteredModel

# The figures compared, in this order; a report may hold more.
COMPARED = (("images", "Images"), ("positives", "With pneumothorax"),
            ("sensitivity", "Sensitivity"), ("specificity", "Specificity"),
            ("auc", "ROC AUC"), ("dice_positive", "Dice on positives"))
# Report sections named for what they were measured on: ml.evaluate writes "test" (and
# "calibration"); a report on this site's held-out films adds its own section.
SECTION_NAMES = {"test": "Held-out test images", "calibration": "Calibration half",
                 "site": "This site's held-out films", "feedback": "This site's held-out films",
                 "local": "This site's held-out films"}


def figure_sets(model: RegisteredModel) -> dict[str, dict]:
    """{section label: {figure: value}} for ``model``: every section of its report that has a
    sensitivity, else the test figures its file holds."""
    sets = {}
    for key, section in (model.report or {}).items():
        if isinstance(section, dict) and "sensitivity" in section:
            sets[SECTION_NAMES.get(key, key.replace("_", " ").capitalize())] = section
    if not sets and model.test_figures:
        sets[SECTION_NAMES["test"]] = model.test_figures
    return sets


def comparison(model: RegisteredModel, active: RegisteredModel | None) -> list[dict]:
    """Rows for the table: per section and figure, this model's value and the active one's."""
    mine, theirs = figure_sets(model), figure_sets(active) if active else {}
    rows = []
    for section in list(mine) + [s for s in theirs if s not in mine]:
        for key, label in COMPARED:
            value = mine.get(section, {}).get(key)
            other = theirs.get(section, {}).get(key)
            if value is None and other is None:
                continue
            rows.append({"section": section, "label": label, "value": value, "active": other,
                         "fraction": key not in ("images", "positives")})
    return rows


def registry_rows() -> dict:
    models = list(RegisteredModel.objects.select_related("uploaded_by", "previous"))
    active = next((m for m in models if m.status == RegisteredModel.Status.ACTIVE), None)
    for model in models:
        model.comparison = comparison(model, active if model is not active else None)
        model.can_promote = (model is not active
                             and model.validation == RegisteredModel.Validation.VALID)
    return {"active": active, "models": models,
            "can_roll_back": bool(active and active.previous_id)}
