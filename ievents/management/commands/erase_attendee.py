"""Erase one attendee's personal data in one organization, on their request."""

from django.core.management.base import BaseCommand, CommandError

from checkout.models import ErasureRecord
from ievents.models import Organization
from ievents.operations import erasure


class Command(BaseCommand):
    help = "Replace an attendee's name, email and answers by a marker everywhere the organization keeps them."

    def add_arguments(self, parser):
        parser.add_argument("organization_slug")
        parser.add_argument("email")

    def handle(self, organization_slug, email, **options):
        organization = Organization.objects.filter(slug=organization_slug).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {organization_slug!r}.")
        try:
            record = erasure.erase_attendee(organization, email, source=ErasureRecord.Source.COMMAND,
                                            requested_by="manage.py erase_attendee")
        except erasure.ErasureError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"erased {record.rows_total} rows ({record.rows or 'nothing held'}); "
                          f"record {record.pk}, email sha256 {record.email_sha256}")
