"""The "API tokens" page: a user creates a token (its key shown once, on the answer to the POST,
never in a URL or the session), lists their own and revokes them. Nobody sees another's."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts import services
from webapp.accounts.forms import ApiTokenForm
from webapp.audit.services import client_address


@never_cache  # the page that shows a new key must not be kept by a browser or a proxy
@require_http_methods(["GET", "POST"])
def token_list(request):
    form = ApiTokenForm(request.POST or None, max_days=services.max_days())
    new_key = None
    if request.method == "POST" and form.is_valid():
        _, new_key = services.issue_token(request.user, name=form.cleaned_data["name"],
                                          days=form.cleaned_data["days"],
                                          client_address=client_address(request))
        form = ApiTokenForm(max_days=services.max_days())
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "accounts/tokens.html",
                  {"form": form, "new_key": new_key, "tokens": services.own_tokens(request.user),
                   "max_days": services.max_days()}, status=status)


@require_POST
def token_revoke(request, token_id: int):
    token = get_object_or_404(services.own_tokens(request.user), pk=token_id)  # another's: 404
    services.revoke_token(token, by=request.user, client_address=client_address(request))
    messages.success(request, f"Token {token.token_key}\u2026 revoked: it no longer works.")
    return redirect("accounts:tokens")
