from django.core.management.base import BaseCommand, CommandError

from ievents.models import ApiKey, Organization, Role


class Command(BaseCommand):
    help = "Create an API key for an organization and print it once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("organization_slug")
        parser.add_argument("--name", default="default")
        parser.add_argument("--role", choices=Role.values, default=Role.OWNER,
                            help="viewer: read only; manager: no secret-bearing routes; owner: everything")

    def handle(self, organization_slug, name, role, **options):
        organization = Organization.objects.filter(slug=organization_slug).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {organization_slug!r}.")
        _, key = ApiKey.issue(organization, name=name, role=role)
        self.stderr.write(f"API key for {organization.name} (store it now: it is not shown again):")
        self.stdout.write(key)
