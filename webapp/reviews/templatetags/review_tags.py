"""``{% review_form image reviews as form %}``: the review form of one image for the user viewing
the page, filled in with their own review (used by reviews/_review.html); ``outline_summary``:
the corrected outline line of reviews/_outline.html."""

from django import template

from webapp.reviews.forms import ReviewForm
from webapp.reviews.services import own_review

register = template.Library()


@register.simple_tag(takes_context=True)
def review_form(context, image, reviews):
    return ReviewForm.for_image(image, own_review(reviews or [], context.get("user")))


@register.simple_tag
def outline_summary(image):
    """``{% outline_summary image as outline %}``: the image's latest corrected outline and how
    many versions it has (reviews/_outline.html)."""
    from webapp.reviews.outlines import summaries

    return summaries([image])[image.pk]
