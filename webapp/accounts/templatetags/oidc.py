"""``{% oidc_sign_in %}``: the "Sign in with <provider>" link on the login page, only while
OpenID Connect is on. A link, not a form: the redirect to the provider then is a navigation,
which the Content-Security-Policy's form-action 'self' does not cover."""

from django import template
from django.conf import settings

register = template.Library()


@register.inclusion_tag("accounts/oidc_sign_in.html")
def oidc_sign_in(next_url=""):
    return {"enabled": settings.OIDC_ENABLED, "provider_name": settings.OIDC_PROVIDER_NAME,
            "next": next_url}
