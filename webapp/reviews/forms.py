from django import forms

from .models import COMMENT_MAX_LENGTH, TrueLabel, Verdict


class ReviewForm(forms.Form):
    """One image's review on the case page. Several images share a page: give each form its own
    ``auto_id`` (``for_image``) so that every label points at its own field."""

    verdict = forms.ChoiceField(label="Your verdict on the model's result", choices=Verdict.choices,
                                widget=forms.RadioSelect)
    true_label = forms.ChoiceField(label="What the X-ray shows", choices=TrueLabel.choices,
                                   widget=forms.RadioSelect)
    comment = forms.CharField(label="Comment (optional)", required=False,
                              max_length=COMMENT_MAX_LENGTH,
                              widget=forms.Textarea(attrs={"rows": 3}))

    @classmethod
    def for_image(cls, image, review=None):
        """The unbound form of ``image``, filled in with the reviewer's own ``review``."""
        initial = ({"verdict": review.verdict, "true_label": review.true_label,
                    "comment": review.comment} if review is not None else {})
        return cls(initial=initial, auto_id=f"review-{image.pk}-%s")

    def error_text(self) -> str:
        """The form's errors as one sentence, for the message shown on the case page."""
        return " ".join(f"{self.fields[name].label}: {' '.join(errors)}"
                        if name in self.fields else " ".join(errors)
                        for name, errors in self.errors.items())
