"""``manage.py create_api_token alice [--name "PACS bridge"] [--days 30]``: a new API token for
a user, printed once (only its digest is stored). ``--revoke-all`` first revokes the user's
other tokens."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.accounts import services
from webapp.accounts.models import User


class Command(BaseCommand):
    help = "Create an API token for a user and print it (shown once; only a digest is kept)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--days", type=int, default=None,
                            help="lifetime in days (default and maximum: API_TOKEN_TTL_DAYS)")
        parser.add_argument("--revoke-all", action="store_true",
                            help="revoke the user's other tokens first")

    def handle(self, username, name, days, revoke_all, **options):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username} is deactivated.")
        with transaction.atomic():  # the token and its audit rows together
            if revoke_all:
                services.revoke_all_tokens(user, reason="replaced with manage.py create_api_token")
            try:
                token, key = services.issue_token(user, name=name, days=days)
            except services.TokenLifetimeError as error:
                raise CommandError(str(error))
        self.stderr.write(f"Token for {username}, expires {token.expiry:%Y-%m-%d %H:%M %Z}; "
                          "shown once, store it now:")
        self.stdout.write(key)
