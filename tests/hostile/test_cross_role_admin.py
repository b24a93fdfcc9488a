"""A user with a different role in each of two organizations, running every admin action.

Ana owns org A ("mine") and is only a viewer, or a manager, of org B ("theirs"). Django
offers her every action (she may run each in A); each one must still act on B's rows only
as far as her role *in B* allows. The actions are read from the admin's registry, not
listed here, so an action added later is tested too.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from ievents import roles
from ievents.admin_base import TenantScopedAdmin
from ievents.models import Membership, Role
from webhooks.models import Delivery, GateSettings, WebhookEndpoint

pytestmark = pytest.mark.django_db

TENANT_SCOPED = sorted(
    (model._meta.label_lower for model in apps.get_models()
     if admin.site.is_registered(model) and isinstance(admin.site.get_model_admin(model), TenantScopedAdmin)),
)
# Rows an admin action must never touch without the role for it (sessions and the admin's
# own log change with every request).
NOT_COMPARED = {"sessions.session", "admin.logentry"}


def everything() -> dict:
    """Every row of every table, as stored."""
    return {model._meta.label_lower: list(model._base_manager.order_by("pk").values())
            for model in apps.get_models() if model._meta.label_lower not in NOT_COMPARED}


@pytest.fixture
def ana(client, mine, theirs):
    """``ana(role)``: owner of mine, ``role`` of theirs, logged in."""

    def make(role: str):
        user = get_user_model().objects.create_user("ana-two-orgs", is_staff=True)
        Membership.objects.create(user=user, organization=mine.org, role=Role.OWNER)
        Membership.objects.create(user=user, organization=theirs.org, role=role)
        client.force_login(user)
        return user

    return make


def actions_offered(model_admin, user) -> dict:
    request = RequestFactory().get("/admin/")
    request.user = user
    return model_admin.get_actions(request)


def refused(role: str, label: str, func) -> bool:
    """Whether a ``role`` of B may run ``func`` on B's rows, as docs/admin.md's roles table
    says: a viewer changes nothing; a manager never sees a secret nor an owner-only screen."""
    if role == Role.VIEWER:
        return True
    return "see_secrets" in getattr(func, "allowed_permissions", ()) or label in roles.OWNER_ONLY_MODELS


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER])
def test_every_action_acts_on_a_row_only_as_the_role_in_its_organization_allows(client, ana, mine, theirs, role):
    """Every registered tenant-scoped screen, every action it offers (one set-up of the two
    tenants for all of them: building them is most of this test's time)."""
    user = ana(role)
    Delivery.objects.update(status=Delivery.Status.FAILED)  # so "Retry now" has something to retry
    ran = 0
    for label in TENANT_SCOPED:
        model = apps.get_model(label)
        model_admin = admin.site.get_model_admin(model)
        offered = actions_offered(model_admin, user)
        assert offered or not model_admin.actions, f"{label}: the owner of A is offered no action"
        for name, (func, _, _) in offered.items():
            rows = list(model._base_manager.filter(**{model_admin.tenant_path: theirs.org.pk})
                        .values_list("pk", flat=True))
            if not rows:
                continue
            before = everything()
            response = client.post(f"/admin/{model._meta.app_label}/{model._meta.model_name}/", {
                "action": name, "_selected_action": rows, "index": 0, "post": "yes"}, follow=True)
            ran += 1
            if refused(role, label, func):
                assert response.status_code == 200, (label, name)
                assert everything() == before, f"{label}: {name} changed B's rows for a {role} of B"
                html = response.content.decode()
                assert "whsec_" not in html, f"{label}: {name} showed a secret to a {role} of B"
            else:  # allowed in B: runs (a delete may still be refused by Django for the records it would take)
                assert response.status_code in (200, 403), (label, name)
                assert "your role does not allow" not in response.content.decode(), (label, name)
    assert ran >= 12  # the walk reached the actions (a control on the walk itself)


def test_the_actions_under_test_include_the_ones_the_probe_ran():
    """The registry walk above reaches the actions the attacker used (a control on the walk)."""
    names = {label: set(admin.site.get_model_admin(apps.get_model(label)).actions or []) for label in TENANT_SCOPED}
    assert {"rotate_gate_secret", "send_gate_test_request"} <= names["ievents.event"]
    assert {"rotate_endpoint_secret", "disable_endpoints"} <= names["webhooks.webhookendpoint"]
    assert "retry_now" in names["webhooks.delivery"] and "reprocess_selected" in names["webhooks.inboundwebhook"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER])
def test_rotating_gate_secrets_of_both_organizations_rotates_only_the_owned_one(client, ana, mine, theirs, role):
    ana(role)
    before = dict(GateSettings.objects.values_list("event_id", "secret"))
    response = client.post("/admin/ievents/event/", {
        "action": "rotate_gate_secret", "_selected_action": [mine.event.pk, theirs.event.pk]}, follow=True)
    after = dict(GateSettings.objects.values_list("event_id", "secret"))
    assert after[mine.event.pk] != before[mine.event.pk]  # the control: the owned one rotates, shown once
    assert after[theirs.event.pk] == before[theirs.event.pk]
    html = response.content.decode()
    assert after[mine.event.pk] in html and after[theirs.event.pk] not in html
    assert "1 selected row belongs to an organization where your role does not allow" in html


def test_a_viewer_of_b_cannot_disable_bs_endpoints_but_a_manager_can(client, ana, mine, theirs):
    user = ana(Role.VIEWER)
    client.post("/admin/webhooks/webhookendpoint/", {"action": "disable_endpoints",
                                                     "_selected_action": [theirs.endpoint.pk]})
    assert WebhookEndpoint.objects.get(pk=theirs.endpoint.pk).enabled
    Membership.objects.filter(user=user, organization=theirs.org).update(role=Role.MANAGER)
    client.post("/admin/webhooks/webhookendpoint/", {"action": "disable_endpoints",
                                                     "_selected_action": [theirs.endpoint.pk]})
    assert not WebhookEndpoint.objects.get(pk=theirs.endpoint.pk).enabled


@pytest.mark.parametrize("model", ["webhooks/webhookendpoint", "ievents/event"])
def test_a_viewer_of_b_is_offered_only_a_on_add_forms_and_cannot_post_into_b(client, ana, mine, theirs, model):
    ana(Role.VIEWER)
    html = client.get(f"/admin/{model}/add/").content.decode()
    assert f'value="{mine.org.pk}"' in html and f'value="{theirs.org.pk}"' not in html
    before = everything()
    client.post("/admin/webhooks/webhookendpoint/add/", {
        "organization": theirs.org.pk, "url": "https://hooks.example.com/sneaky", "description": "",
        "enabled_events": ["*"]})
    assert everything() == before


def test_a_viewer_of_b_cannot_change_bs_endpoint_or_test_bs_gate(client, ana, mine, theirs):
    ana(Role.VIEWER)
    before = everything()
    response = client.post(f"/admin/webhooks/webhookendpoint/{theirs.endpoint.pk}/change/", {
        "organization": theirs.org.pk, "url": "https://evil.example/hook", "description": "", "enabled_events": ["*"]})
    assert response.status_code == 403
    assert client.post(f"/admin/ievents/event/{theirs.event.pk}/gate-test/").status_code == 403
    assert everything() == before
