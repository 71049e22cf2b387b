"""The two-factor pages: the code after the password, setting up an authenticator app (QR code,
the secret as text, a code to confirm), and the account page where a user sees their state,
makes new recovery codes or turns two-factor off. What is allowed is decided in
webapp.accounts.two_factor; every page here is never cached (secrets and codes)."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts import two_factor
from webapp.audit.services import client_address


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code", max_length=64, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True,
                                      "spellcheck": "false", "autocapitalize": "off"}))


def _next_url(request) -> str:
    """Where to go once the step is done: ?next= when it is one of this site's own pages."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("cases:list")


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _verified(request) -> None:
    """The session now has its second factor: a new session key, as at any change of privilege,
    so that a key seen before (a fixation) is worth nothing."""
    request.session.cycle_key()


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    next_url = _next_url(request)
    step = two_factor.pending_step(request)
    if step == two_factor.SET_UP:
        return redirect(_with_next("accounts:two_factor_set_up", next_url))
    if step is None:  # nothing owed (already verified, or not asked of this user)
        return redirect(next_url)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = two_factor.verify(request, form.cleaned_data["code"])
        if outcome.ok:
            _verified(request)
            left = two_factor.recovery_codes_left(request.user)
            if left <= 3:
                plural = "s" if left != 1 else ""
                messages.warning(request, f"You have {left} recovery code{plural} left: make new "
                                          "ones on your Two-factor page.")
            return redirect(next_url)
        form.add_error("code", outcome.reason)
    return render(request, "accounts/two_factor/verify.html", {"form": form, "next": next_url},
                  status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def set_up(request):
    user = request.user
    next_url = _next_url(request)
    if not two_factor.asked_here(request):
        messages.info(request, "You signed in through your organisation's directory: its own "
                               "sign-in asks for the second factor.")
        return redirect("accounts:two_factor")
    if two_factor.is_enabled(user) and not user.is_verified():
        # Someone who knows only the password must not add their own phone to the account.
        return redirect(_with_next("accounts:two_factor_verify", next_url))
    device = two_factor.pending_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = two_factor.confirm_set_up(request, device, form.cleaned_data["code"])
        if outcome.ok:
            _verified(request)
            return render(request, "accounts/two_factor/recovery_codes.html",
                          {"codes": outcome.recovery_codes, "next": next_url, "set_up": True})
        form.add_error("code", outcome.reason)
    return render(request, "accounts/two_factor/set_up.html",
                  {"form": form, "next": next_url, "required": two_factor.is_required(user),
                   "replacing": two_factor.is_enabled(user),
                   "qr_svg": mark_safe(two_factor.qr_svg(device)),  # segno's own markup
                   "secret": two_factor.secret_text(device)},
                  status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET"])
def account(request):
    user = request.user
    local = two_factor.asked_here(request)
    return render(request, "accounts/two_factor/account.html", {
        "local": local,
        "enabled": local and two_factor.is_enabled(user),
        "required": two_factor.is_required(user),
        "codes_left": two_factor.recovery_codes_left(user) if local else 0,
        "form": CodeForm(),
    })


@never_cache
@require_POST
def recovery_codes(request):
    """New recovery codes (the old ones stop working), shown once on the answer to the POST."""
    if not (two_factor.asked_here(request) and two_factor.is_enabled(request.user)):
        messages.error(request, "Set up an authenticator app first: recovery codes come with it.")
        return redirect("accounts:two_factor")
    codes = two_factor.new_recovery_codes(request.user, client_address=client_address(request))
    return render(request, "accounts/two_factor/recovery_codes.html",
                  {"codes": codes, "next": reverse("accounts:two_factor"), "set_up": False})


@never_cache
@require_POST
def turn_off(request):
    """Only for a user of whom it is not required, and with a current code: a session left open
    on a shared ward computer must not be enough to remove the second factor."""
    user = request.user
    if two_factor.is_required(user):
        messages.error(request, "Two-factor sign-in is required for your account: it cannot be "
                                "turned off. To move to a new phone, set up the new one.")
        return redirect("accounts:two_factor")
    form = CodeForm(request.POST)
    if not form.is_valid() or not two_factor.verify(request, form.cleaned_data["code"]).ok:
        messages.error(request, "That code is not right: two-factor sign-in is still on.")
        return redirect("accounts:two_factor")
    two_factor.turn_off(user, by=user, client_address=client_address(request))
    messages.success(request, "Two-factor sign-in is off. You can set it up again at any time.")
    return redirect("accounts:two_factor")
