"""For a member who lost both their authenticator app and their recovery codes: remove their
two-factor devices, so their password alone signs them in again (and, where their
organization requires two-factor sign-in, they set up a new app at once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ievents.two_factor import remove_devices


class Command(BaseCommand):
    help = "Remove a member's authenticator app and recovery codes (they lost both). Check who asks first."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        removed = remove_devices(user)
        self.stdout.write(f"Removed {removed} two-factor device(s) of {username}: their password alone signs them in "
                          "until they set up a new authenticator app.")
