"""``{% acknowledgement image %}`` on the case page: the film's "Acknowledge" button, or who has
seen it; nothing for a film that is not review first."""

from django import template
from django.urls import reverse

from webapp.alerts.acknowledgements import state_for_image

register = template.Library()


@register.inclusion_tag("alerts/_acknowledgement.html", takes_context=True)
def acknowledgement(context, image, number=1, of=1):
    """Film ``number`` of the ``of`` films of its case (the loop's counter and length)."""
    back = reverse("cases:detail", kwargs={"case_id": image.case_id}) + f"#image-{image.pk}"
    return {"alert": state_for_image(image, number, of), "next": back,
            "csrf_token": context.get("csrf_token")}
