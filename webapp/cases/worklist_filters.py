"""The worklist's filters: a form over the GET parameters of the case list and its JSON."""

from django import forms

from webapp.day_filters import day_field, day_range


class WorklistFilterForm(forms.Form):
    """Every field optional; a bad value is ignored and its error shown (the list still renders)."""

    q = forms.CharField(label="Search (reference or file name)", max_length=200, required=False)
    status = forms.ChoiceField(label="Status", required=False, choices=[
        ("", "any"), ("queued", "queued"), ("running", "running"), ("done", "done"), ("failed", "failed")])
    result = forms.ChoiceField(label="Result", required=False, choices=[
        ("", "any"), ("positive", "pneumothorax suspected"), ("negative", "not detected"),
        ("review_first", "review first")])
    # By case, and a case is reviewed only when every image with a result is: one with 1 of 3
    # images reviewed still awaits review (webapp.reviews.services.filter_reviewed). The
    # choices say so, where the clinician picks them.
    reviewed = forms.ChoiceField(label="Reviewed", required=False, choices=[
        ("", "any"), ("yes", "every image reviewed"), ("no", "an image not yet reviewed")])
    created_after = day_field("From")
    created_before = day_field("Until (inclusive)")

    def filters(self) -> dict:
        """The cleaned values as ``worklist.filter_cases`` takes them; {} when any is invalid."""
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        result = data.get("result")
        start, end = day_range(data.get("created_after"), data.get("created_before"))
        return {
            "q": data.get("q"), "status": data.get("status") or None,
            "positive": {"positive": True, "negative": False}.get(result),
            "review_first": result == "review_first",
            "reviewed": {"yes": True, "no": False}.get(data.get("reviewed")),
            "created_after": start,
            "created_before": end,
        }
