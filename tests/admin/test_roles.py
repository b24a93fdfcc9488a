"""Owner, Manager, Viewer: what each may do in the admin and through an API key."""

import pytest
from rest_framework.test import APIClient

from ievents import roles
from ievents.models import ApiKey, Membership, Role
from payments.models import IntegrationSettings
from tests.conftest import event_change_form, make_event, make_organizer
from webhooks.models import GateSettings, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client, organization):
    """``member("viewer")`` → a logged-in organizer of ``organization`` with that role."""

    def make(role):
        user = make_organizer(organization, username=f"{role}-user")
        Membership.objects.filter(user=user).update(role=role)
        client.force_login(user)
        return user

    return make


@pytest.fixture
def event(organization):
    return make_event(organization)


def test_the_policy_table():
    for action in ("view", "add", "change", "delete", *roles.ORDER_ACTIONS, "see_secrets"):
        assert roles.allows(Role.OWNER, action)
        assert roles.allows(Role.OWNER, action, "payments.integrationsettings")
    assert roles.allows(Role.MANAGER, "refund") and roles.allows(Role.MANAGER, "change", "ievents.event")
    assert not roles.allows(Role.MANAGER, "see_secrets")
    assert not roles.allows(Role.MANAGER, "view", "payments.integrationsettings")
    assert not roles.allows(Role.MANAGER, "view", "ievents.apikey")
    assert roles.allows(Role.VIEWER, "view", "checkout.checkoutsession")
    for action in ("add", "change", "delete", *roles.ORDER_ACTIONS, "see_secrets"):
        assert not roles.allows(Role.VIEWER, action)
    assert not roles.allows(None, "view") and not roles.allows("staff", "view")


@pytest.mark.parametrize(("role", "expected"), [("owner", True), ("manager", True), ("viewer", False)])
def test_can_answers_the_order_actions_per_role_and_organization(organization, other_organization, role, expected):
    user = make_organizer(organization)
    Membership.objects.filter(user=user).update(role=role)
    for action in roles.ORDER_ACTIONS:
        assert roles.can(user, organization, action) is expected
        assert roles.can(user, organization.pk, action) is expected
        assert roles.can(user, other_organization, action) is False  # not a member there


def test_an_inactive_user_can_do_nothing(organization):
    user = make_organizer(organization)
    user.is_active = False
    assert not roles.can(user, organization, "view")


def test_a_viewer_reads_but_changes_nothing(client, member, event, open_session):
    member("viewer")
    assert client.get("/admin/ievents/event/").status_code == 200
    page = client.get(f"/admin/ievents/event/{event.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and 'name="name_en"' not in html  # read-only, no Save
    assert client.get(f"/admin/checkout/checkoutsession/{open_session.pk}/change/").status_code == 200
    data = {**event_change_form(event), "name_en": "Renamed"}
    assert client.post(f"/admin/ievents/event/{event.pk}/change/", data).status_code == 403
    assert client.get("/admin/ievents/event/add/").status_code == 403
    assert client.post(f"/admin/ievents/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.name == "Summit"


def test_a_viewer_cannot_run_actions(client, member, event):
    endpoint = WebhookEndpoint.objects.create(organization=event.organization, url="http://127.0.0.1:9/x",
                                              enabled_events=["*"])
    member("viewer")
    html = client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "disable_endpoints" not in html and "rotate_endpoint_secret" not in html
    client.post("/admin/webhooks/webhookendpoint/", {"action": "disable_endpoints", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.enabled


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_owner_only_screens_are_closed_to_managers_and_viewers(client, member, organization, role):
    row = IntegrationSettings.objects.create(organization=organization, provider="stripe",
                                             credentials='{"secret_key": "sk_test_abcdefabcdef1234"}')
    key, _ = ApiKey.issue(organization)
    member(role)
    index = client.get("/admin/").content.decode()
    assert ">Payments</a>" not in index and "API keys" not in index
    for url in ("/admin/payments/integrationsettings/", f"/admin/payments/integrationsettings/{row.pk}/change/",
                "/admin/ievents/apikey/", f"/admin/ievents/apikey/{key.pk}/change/", "/admin/ievents/apikey/add/",
                f"/admin/ievents/organization/{organization.pk}/change/"):
        response = client.get(url, follow=True)
        assert response.status_code in (403, 404) or "doesn’t exist" in response.content.decode(), url
        assert "1234" not in response.content.decode()


def test_a_manager_edits_events_but_never_sees_a_secret(client, member, event):
    member("manager")
    data = {**event_change_form(event), "name_en": "Renamed", "gate-TOTAL_FORMS": 1, "gate-0-event": event.pk,
            "gate-0-url": "https://gate.example.com/check", "gate-0-timeout_ms": 3000, "gate-0-on_error": "block",
            "gate-0-denial_message": "No.", "gate-0-error_message": "Later.", "gate-0-enabled": "on"}
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", data, follow=True)
    gate = GateSettings.objects.get(event=event)
    html = response.content.decode()
    assert gate.secret not in html and "an owner can rotate it" in html
    event.refresh_from_db()
    assert event.name == "Renamed"
    # The rotate action is not offered, and posting it anyway does nothing.
    listing = client.get("/admin/ievents/event/").content.decode()
    assert "rotate_gate_secret" not in listing and "send_gate_test_request" in listing
    old = gate.secret
    response = client.post("/admin/ievents/event/", {"action": "rotate_gate_secret", "_selected_action": [event.pk]},
                           follow=True)
    gate.refresh_from_db()
    assert gate.secret == old and old not in response.content.decode()


def test_a_manager_creates_an_endpoint_without_seeing_its_secret(client, member, organization):
    member("manager")
    response = client.post("/admin/webhooks/webhookendpoint/add/", {
        "organization": organization.pk, "url": "http://127.0.0.1:9/hook", "description": "",
        "enabled_events": ["*"]}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret not in response.content.decode()


def test_an_owner_sees_everything(client, member, organization, event):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="stripe")
    member("owner")
    index = client.get("/admin/").content.decode()
    assert ">Payments</a>" in index and "API keys" in index and "Orders" in index
    assert client.get("/admin/ievents/apikey/add/").status_code == 200


def test_roles_are_per_organization(client, organization, other_organization):
    """Owner of one, viewer of the other: the other's events are read-only."""
    mine, theirs = make_event(organization, name="Mine"), make_event(other_organization, name="Theirs")
    user = make_organizer(organization)
    Membership.objects.create(user=user, organization=other_organization, role=Role.VIEWER)
    client.force_login(user)
    assert 'name="_save"' in client.get(f"/admin/ievents/event/{mine.pk}/change/").content.decode()
    assert 'name="_save"' not in client.get(f"/admin/ievents/event/{theirs.pk}/change/").content.decode()
    data = {**event_change_form(theirs), "name_en": "Hijacked"}
    assert client.post(f"/admin/ievents/event/{theirs.pk}/change/", data).status_code == 403
    # The add form offers only the organization where the user may write.
    html = client.get("/admin/ievents/event/add/").content.decode()
    assert f'value="{organization.pk}"' in html and other_organization.name not in html


# The API: a key has a role too.

def key_client(organization, role):
    _, key = ApiKey.issue(organization, name=role, role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


NEW_EVENT = {"name": "Jazz", "currency": "EUR", "starts_at": "2030-03-01T20:00:00Z",
             "ticket_types": [{"name": "Standing", "price": 1800, "quantity": 5}]}
NEW_ENDPOINT = {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}


def test_a_viewer_key_only_reads(organization, event):
    api = key_client(organization, "viewer")
    assert api.get("/v1/events").status_code == 200
    response = api.post("/v1/events", NEW_EVENT, format="json")
    assert response.status_code == 403 and "role" in response.json()["error"]["message"]
    assert api.patch(f"/v1/events/{event.public_id}", {"name": "x"}, format="json").status_code == 403
    assert api.post("/v1/webhook_endpoints", NEW_ENDPOINT, format="json").status_code == 403
    event.refresh_from_db()
    assert event.name == "Summit"


def test_a_manager_key_writes_but_reaches_no_secret(organization, event):
    api = key_client(organization, "manager")
    assert api.post("/v1/events", NEW_EVENT, format="json").status_code == 201
    response = api.post("/v1/webhook_endpoints", NEW_ENDPOINT, format="json")
    assert response.status_code == 403 and "whsec_" not in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    gate = {"url": "https://gate.example.com/", "enabled": True}
    assert api.put(f"/v1/events/{event.public_id}/gate", gate, format="json").status_code == 403
    GateSettings.objects.create(event=event, url="https://gate.example.com/")
    assert api.post(f"/v1/events/{event.public_id}/gate/rotate_secret").status_code == 403
    assert api.get(f"/v1/events/{event.public_id}/gate").status_code == 200


def test_an_owner_key_does_everything(organization, event):
    api = key_client(organization, "owner")
    assert api.post("/v1/webhook_endpoints", NEW_ENDPOINT, format="json").status_code == 201
    assert api.post("/v1/events", NEW_EVENT, format="json").status_code == 201


def test_existing_keys_are_owners(organization):
    row, _ = ApiKey.issue(organization)
    assert row.role == Role.OWNER


# Members: owners set roles and remove people on the Team screen (tests/team/).


def test_create_api_key_gives_the_role_asked_for(organization):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_api_key", organization.slug, "--role", "viewer", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]
    assert ApiKey.authenticate(key).role == "viewer"


@pytest.mark.parametrize(("role", "erased"), [("manager", True), ("viewer", False)])
def test_only_a_role_that_may_erase_gets_the_erase_action(client, member, event, role, erased):
    from checkout import services
    from checkout.models import CheckoutSession

    session = services.create_session(event, [services.Item(event.ticket_types.get(), 1)],
                                       customer_email="ana@example.com")
    member(role)
    page = client.get("/admin/checkout/checkoutsession/").content.decode()
    assert ("erase_selected_attendees" in page) is erased
    client.post("/admin/checkout/checkoutsession/", {"action": "erase_selected_attendees",
                                                     "_selected_action": [session.pk]})
    assert (CheckoutSession.objects.get(pk=session.pk).customer_email == "") is erased
