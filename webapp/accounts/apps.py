from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webapp.accounts"
    label = "accounts"
    verbose_name = "Users and roles"

    def ready(self):
        from . import signals  # noqa: F401  (login/logout audit, token revocation)
