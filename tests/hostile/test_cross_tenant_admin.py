"""An organizer of org A in the admin, probing every object type of org B.

For each admin screen: B's objects are not listed, their change, delete and history pages
do not open, admin actions given B's ids do nothing, and no form offers B's objects (or B
itself) as a choice. The organizer has the permissions ``seed_demo`` gives organizers.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from ievents.models import ApiKey, Membership, Organization
from payments.models import IntegrationSettings
from webhooks.models import Delivery, GateSettings, InboundWebhook, WebhookEndpoint

from .conftest import state_fingerprint

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer(client, mine):
    user = get_user_model().objects.create_user("ana-a", is_staff=True)  # no password: no hashing, force_login
    Membership.objects.create(user=user, organization=mine.org)
    client.force_login(user)
    return user


def their_objects(theirs) -> dict[str, tuple[object, str]]:
    """admin URL name → (B's object, a string that identifies it on a page)."""
    session, payment = theirs.pending["stripe"]
    integration = IntegrationSettings.objects.get(organization=theirs.org, provider="stripe")
    api_key = ApiKey.objects.filter(organization=theirs.org).get()
    return {
        "ievents/organization": (theirs.org, theirs.org.public_id),
        "ievents/event": (theirs.event, theirs.event.public_id),
        "ievents/apikey": (api_key, api_key.prefix),
        "checkout/checkoutsession": (session, session.public_id),
        "payments/payment": (payment, payment.public_id),
        "payments/integrationsettings": (integration, theirs.org.public_id),
        "webhooks/gatecall": (theirs.gate_call, "denied for B"),
        "webhooks/webhookendpoint": (theirs.endpoint, theirs.endpoint.url),
        "webhooks/outboxevent": (theirs.outbox_event, theirs.outbox_event.public_id),
        "webhooks/delivery": (theirs.delivery, theirs.delivery.public_id),
        "webhooks/inboundwebhook": (theirs.inbound, theirs.inbound.event_id),
    }


def my_objects(mine) -> dict[str, str]:
    session, payment = mine.pending["stripe"]
    return {
        "ievents/organization": mine.org.name, "ievents/event": mine.event.name,
        "ievents/apikey": ApiKey.objects.filter(organization=mine.org).get().prefix,
        "checkout/checkoutsession": session.public_id, "payments/payment": payment.public_id,
        "payments/integrationsettings": mine.org.name, "webhooks/gatecall": "denied for A",
        "webhooks/webhookendpoint": mine.endpoint.url, "webhooks/outboxevent": mine.outbox_event.public_id,
        "webhooks/delivery": mine.delivery.public_id, "webhooks/inboundwebhook": mine.inbound.event_id,
    }


MODELS = [
    "ievents/organization", "ievents/event", "ievents/apikey", "checkout/checkoutsession", "payments/payment",
    "payments/integrationsettings", "webhooks/gatecall", "webhooks/webhookendpoint", "webhooks/outboxevent",
    "webhooks/delivery", "webhooks/inboundwebhook",
]


def _theirs_everything(theirs) -> dict:
    return {
        "state": state_fingerprint(),
        "secrets": (theirs.endpoint.__class__.objects.get(pk=theirs.endpoint.pk).secret,
                    GateSettings.objects.get(pk=theirs.gate.pk).secret),
        "inbound": list(InboundWebhook.objects.filter(organization=theirs.org).values_list("pk", "outcome", "error")),
        "keys": list(ApiKey.objects.filter(organization=theirs.org).values_list("pk", "name", "revoked_at")),
        "org": Organization.objects.filter(pk=theirs.org.pk).values_list("name", "slug").get(),
        "memberships": list(Membership.objects.order_by("pk").values_list("pk", "user_id", "organization_id")),
    }


@pytest.mark.parametrize("model", MODELS)
def test_another_organizations_objects_are_not_listed(client, organizer, mine, theirs, model):
    page = client.get(f"/admin/{model}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert my_objects(mine)[model] in html  # the control: the list does show my rows
    _, marker = their_objects(theirs)[model]
    assert marker not in html
    assert theirs.org.name not in html and theirs.event.name not in html  # also not in filters or columns


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("page", ["change", "delete", "history"])
def test_another_organizations_object_pages_do_not_open(client, organizer, mine, theirs, model, page):
    obj, marker = their_objects(theirs)[model]
    before = _theirs_everything(theirs)
    response = client.get(f"/admin/{model}/{obj.pk}/{page}/")
    assert response.status_code in (302, 403, 404)
    assert marker not in client.get(f"/admin/{model}/{obj.pk}/{page}/", follow=True).content.decode()
    # Posting the form anyway (a confirmed delete, a change) does nothing either.
    response = client.post(f"/admin/{model}/{obj.pk}/{page}/", {"post": "yes", "name": "Hijacked",
                                                                "url": "https://evil.example/hook"})
    assert response.status_code in (302, 403, 404, 405)
    assert _theirs_everything(theirs) == before


ACTIONS = [
    ("ievents/event", "send_gate_test_request", lambda t: t.event),
    ("ievents/event", "rotate_gate_secret", lambda t: t.event),
    ("ievents/event", "delete_selected", lambda t: t.event),
    ("webhooks/webhookendpoint", "send_test_event", lambda t: t.endpoint),
    ("webhooks/webhookendpoint", "rotate_endpoint_secret", lambda t: t.endpoint),
    ("webhooks/webhookendpoint", "disable_endpoints", lambda t: t.endpoint),
    ("webhooks/webhookendpoint", "delete_selected", lambda t: t.endpoint),
    ("webhooks/delivery", "retry_now", lambda t: t.delivery),
    ("webhooks/inboundwebhook", "reprocess_selected", lambda t: t.inbound),
    ("ievents/apikey", "delete_selected", lambda t: ApiKey.objects.filter(organization=t.org).get()),
    ("payments/integrationsettings", "delete_selected",
     lambda t: IntegrationSettings.objects.get(organization=t.org, provider="stripe")),
]


@pytest.mark.parametrize(("model", "action", "target"), ACTIONS, ids=[f"{m}:{a}" for m, a, _ in ACTIONS])
def test_admin_actions_given_another_organizations_ids_do_nothing(client, organizer, mine, theirs, model, action,
                                                                   target):
    obj = target(theirs)
    if action == "retry_now":
        Delivery.objects.filter(pk=obj.pk).update(status=Delivery.Status.FAILED)
    before = _theirs_everything(theirs)
    response = client.post(f"/admin/{model}/", {"action": action, "_selected_action": [obj.pk], "post": "yes",
                                                "index": 0}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "whsec_" not in html  # no secret of theirs (or a new one) is shown
    assert _theirs_everything(theirs) == before


def test_an_action_over_mixed_ids_acts_on_mine_only(client, organizer, mine, theirs):
    """The control for the test above, and the mixed case: both ids, only mine rotates."""
    mine_before = WebhookEndpoint.objects.get(pk=mine.endpoint.pk).secret
    theirs_before = WebhookEndpoint.objects.get(pk=theirs.endpoint.pk).secret
    client.post("/admin/webhooks/webhookendpoint/", {"action": "rotate_endpoint_secret",
                                                     "_selected_action": [mine.endpoint.pk, theirs.endpoint.pk]})
    assert WebhookEndpoint.objects.get(pk=mine.endpoint.pk).secret != mine_before
    assert WebhookEndpoint.objects.get(pk=theirs.endpoint.pk).secret == theirs_before


ADD_FORMS = ["ievents/event", "ievents/apikey", "payments/integrationsettings", "webhooks/webhookendpoint"]


@pytest.mark.parametrize("model", ADD_FORMS)
def test_no_form_offers_another_organization_as_a_choice(client, organizer, mine, theirs, model):
    html = client.get(f"/admin/{model}/add/").content.decode()
    assert f'value="{mine.org.pk}"' in html  # the control: my organization is offered
    assert f'value="{theirs.org.pk}"' not in html and theirs.org.name not in html


@pytest.mark.parametrize(("model", "obj"), [("webhooks/webhookendpoint", "endpoint"), ("ievents/event", "event")])
def test_my_objects_change_forms_offer_none_of_theirs(client, organizer, mine, theirs, model, obj):
    html = client.get(f"/admin/{model}/{getattr(mine, obj).pk}/change/").content.decode()
    assert theirs.org.name not in html and theirs.event.name not in html


def test_moving_my_endpoint_into_another_organization_is_refused(client, organizer, mine, theirs):
    before = _theirs_everything(theirs)
    response = client.post(f"/admin/webhooks/webhookendpoint/{mine.endpoint.pk}/change/", {
        "organization": theirs.org.pk, "url": "http://127.0.0.1:9/moved", "description": "",
        "enabled_events": ["*"]})
    assert response.status_code == 200  # the form again, with an error
    assert WebhookEndpoint.objects.get(pk=mine.endpoint.pk).organization_id == mine.org.pk
    assert _theirs_everything(theirs) == before


def test_an_api_key_cannot_be_issued_for_another_organization(client, organizer, mine, theirs):
    client.post("/admin/ievents/apikey/add/", {"organization": theirs.org.pk, "name": "sneaky"})
    assert not ApiKey.objects.filter(organization=theirs.org, name="sneaky").exists()


def test_an_organizer_cannot_join_another_organization_through_memberships(client, organizer, mine, theirs):
    """Memberships decide every tenant filter above: an organizer must not edit them."""
    own = Membership.objects.get(user=organizer)
    before = _theirs_everything(theirs)
    # An owner sees their own team (the Team screen), where who and which organization are
    # read-only: only the role changes, and people join by invitation, never by this form.
    assert client.get("/admin/ievents/membership/").status_code == 200
    client.post(f"/admin/ievents/membership/{own.pk}/change/", {
        "user": organizer.pk, "organization": theirs.org.pk, "role": "owner"})
    assert client.post("/admin/ievents/membership/add/", {
        "user": organizer.pk, "organization": theirs.org.pk, "role": "owner"}).status_code == 403
    assert _theirs_everything(theirs) == before
    assert list(Membership.objects.filter(user=organizer).values_list("organization_id", flat=True)) == [mine.org.pk]


def test_an_organizer_cannot_delete_another_organization(client, organizer, mine, theirs):
    response = client.post(f"/admin/ievents/organization/{theirs.org.pk}/delete/", {"post": "yes"})
    assert response.status_code in (302, 403, 404)  # 403: organizers may not delete organizations at all
    assert Organization.objects.filter(pk=theirs.org.pk).exists()


@pytest.mark.parametrize("query", ["event__id__exact={event}", "event={event}", "endpoint={endpoint}",
                                   "q={session}", "organization__id__exact={org}"])
def test_filtering_by_another_organizations_ids_shows_none_of_their_rows(client, organizer, mine, theirs, query):
    session = theirs.stripe_session
    query = query.format(event=theirs.event.pk, endpoint=theirs.endpoint.pk, session=session.public_id,
                         org=theirs.org.pk)
    theirs_by_model = {"checkout/checkoutsession": session.pk, "webhooks/delivery": theirs.delivery.pk,
                       "webhooks/gatecall": theirs.gate_call.pk, "webhooks/outboxevent": theirs.outbox_event.pk}
    for model, their_pk in theirs_by_model.items():
        response = client.get(f"/admin/{model}/?{query}", follow=True)
        assert response.status_code == 200
        if response.context and "cl" in response.context:
            assert their_pk not in [row.pk for row in response.context["cl"].result_list]
        if not query.startswith("q="):  # the search box and links echo a search; nothing else may show it
            html = response.content.decode()
            assert session.public_id not in html and theirs.delivery.public_id not in html
            assert theirs.outbox_event.public_id not in html and "denied for B" not in html
