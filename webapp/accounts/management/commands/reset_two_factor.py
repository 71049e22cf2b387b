"""``manage.py reset_two_factor alice``: remove a user's authenticator and recovery codes (a
lost phone, and no administrator who can do it in the admin: the only one is the one locked
out). Where two-factor is required of them, they set up a new one at their next sign-in."""

from django.core.management.base import BaseCommand, CommandError

from webapp.accounts import two_factor
from webapp.accounts.models import User


class Command(BaseCommand):
    help = "Remove a user's two-factor authenticator and recovery codes (they set up anew)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username, **options):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}.")
        if not two_factor.turn_off(user, by=None, reason="reset_with_manage_py"):
            raise CommandError(f"{username} has no two-factor authenticator: nothing to reset.")
        self.stdout.write(f"Two-factor reset for {username}: they set up a new authenticator at "
                          "their next sign-in where it is required.")
