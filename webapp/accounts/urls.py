from django.urls import path

from . import two_factor_views, views

app_name = "accounts"
urlpatterns = [
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    # Two-factor sign-in (issue 24): the user's own page, and the steps after the password.
    path("two-factor/", two_factor_views.account, name="two_factor"),
    path("two-factor/verify/", two_factor_views.verify, name="two_factor_verify"),
    path("two-factor/set-up/", two_factor_views.set_up, name="two_factor_set_up"),
    path("two-factor/recovery-codes/", two_factor_views.recovery_codes,
         name="two_factor_recovery_codes"),
    path("two-factor/turn-off/", two_factor_views.turn_off, name="two_factor_turn_off"),
]
