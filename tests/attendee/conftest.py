"""An event as an attendee meets it: a venue, a time in Lisbon, a required tick box."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_event

RULES = "I accept the venue's rules"
LISBON_NIGHT = datetime(2027, 1, 3, 20, 0, tzinfo=ZoneInfo("Europe/Lisbon"))  # 20:00 WET = 20:00 UTC


def make_attendee_event(organization, **kwargs):
    from ievents.models import Question

    event = make_event(organization, **kwargs)
    event.venue = "Coliseu dos Recreios, Lisboa"
    event.starts_at = LISBON_NIGHT
    event.save(update_fields=["venue", "starts_at"])
    Question.objects.create(event=event, text=RULES, kind="checkbox", required=True,
                            position=2)
    return event


@pytest.fixture
def event(organization):
    return make_attendee_event(organization)


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def portuguese(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "pt-PT,pt;q=0.9"
    return client


def pick(client, event, quantity=2):
    """Choose ``quantity`` General tickets; the attendee form's URL."""
    ticket_type = event.ticket_types.get()
    response = client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": quantity})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"]


def details(event, **overrides) -> dict:
    field = {q.text: f"q_{q.pk}" for q in event.questions.all()}
    data = {"name": "Ana Silva", "email": "ana@example.com", field["Company"]: "Acme", field["T-shirt size"]: "M",
            field[RULES]: "on"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def completed(event, django_capture_on_commit_callbacks):
    """``completed(client)``: a sandbox purchase of two tickets made through the pages; the session."""
    from checkout.models import CheckoutSession

    def buy(client):
        form_url = pick(client, event)
        review_url = client.post(form_url, details(event))["Location"]
        sandbox = client.post(review_url, {"provider": "sandbox"})["Location"]
        with django_capture_on_commit_callbacks(execute=True):
            client.get(client.post(sandbox, {"outcome": "success"})["Location"])
        return CheckoutSession.objects.get(status="completed")

    return buy
