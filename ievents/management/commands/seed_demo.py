import os
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from checkout.models import PromoCode
from ievents.models import Event, Membership, Organization, Question, TicketType
from payments.models import IntegrationSettings

DEMO_ORGANIZER = "organizer"
DEFAULT_DEMO_PASSWORD = "demo-organizer"


class Command(BaseCommand):
    help = "Create the demo organization (slug 'demo'), an organizer login and an event. Safe to re-run."

    def handle(self, **options):
        org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo Events"})
        User = get_user_model()
        password = os.environ.get("DEMO_ADMIN_PASSWORD", DEFAULT_DEMO_PASSWORD)
        user, created = User.objects.get_or_create(username=DEMO_ORGANIZER, defaults={"is_staff": True})
        if created:
            user.set_password(password)
            user.save()
        # Membership alone opens the back office (ievents.auth): no group to add.
        Membership.objects.get_or_create(user=user, organization=org)
        IntegrationSettings.objects.get_or_create(organization=org, provider="sandbox")
        event = Event.objects.filter(organization=org).first()
        if event is None:
            event = Event.objects.create(
                organization=org, name="Lisbon Tech Summit", venue="Centro de Congressos, Lisboa",
                description="A day of talks and workshops.", description_pt_pt="Um dia de palestras e workshops.",
                starts_at=timezone.now() + timedelta(days=30),
                currency="EUR",
            )
            # Each text in English and in Portuguese (ievents/translation.py).
            TicketType.objects.create(event=event, name_en="General admission", name_pt_pt="Entrada geral",
                                      price=2500, quantity=200, position=0)
            TicketType.objects.create(event=event, name_en="Workshop pass", name_pt_pt="Passe de workshop",
                                      price=7500, quantity=30, position=1)
            TicketType.objects.create(event=event, name_en="Student (free)", name_pt_pt="Estudante (gratuito)",
                                      price=0, quantity=20, position=2, max_per_order=1)
            Question.objects.create(event=event, text="Company", text_pt_pt="Empresa", kind="text", position=0)
            Question.objects.create(event=event, text="T-shirt size", text_pt_pt="Tamanho da T-shirt", kind="choice",
                                    choices="S\nM\nL\nXL",
                                    required=True, position=1)
            Question.objects.create(event=event, text="I accept the code of conduct",
                                    text_pt_pt="Aceito o código de conduta", kind="checkbox",
                                    required=True, position=2)
        # A code to try on the demo event's page: /e/<event>/?code=DEMO20 takes 20 % off.
        PromoCode.objects.get_or_create(event=event, code="DEMO20", defaults={"percent_off": 20})
        if options["verbosity"] > 0:
            self.stdout.write("\n".join(demo_links(settings.PUBLIC_BASE_URL)))


def demo_links(base_url: str) -> list[str]:
    """Where to click, as full URLs on ``base_url``, and the organizer's login.

    The password is shown only while it still opens the account: once the organizer has
    changed it in the admin, the demo no longer knows it and says so.
    """
    event = Event.objects.filter(organization__slug="demo").first()
    user = get_user_model().objects.filter(username=DEMO_ORGANIZER).first()
    password = os.environ.get("DEMO_ADMIN_PASSWORD", DEFAULT_DEMO_PASSWORD)
    if user is None:
        login = "(none: run `python manage.py seed_demo`)"
    elif user.check_password(password):
        login = f"user {DEMO_ORGANIZER}, password {password}"
    else:
        login = f"user {DEMO_ORGANIZER}, password (changed since the demo was seeded)"
    base = base_url.rstrip("/")
    return [
        f"Home:        {base}/",
        f"Demo event:  {base}{event.get_absolute_url()}" if event else
        "Demo event:  (none: run `python manage.py seed_demo`)",
        f"Admin:       {base}/admin/",
        f"Login:       {login}",
    ]
