"""Who may do what for an organization: one policy for the admin and for API keys.

- **Owner**: everything, including payment integrations, API keys, the organization's
  settings and members, and seeing secrets (a new or rotated signing secret).
- **Manager**: events, orders (refund, cancel, resend, resolve), the gate, webhook
  endpoints and deliveries; never a secret, never the owner-only screens.
- **Viewer**: reads what a manager reads; changes nothing.

``allows(role, action, model_label)`` is the policy; ``can(user, organization, action)``
asks it for a person (the order actions' views call it); the admin's bases
(``ievents.admin_base``) and the API's permission (``ievents.api_auth``) ask it too.
"""

from __future__ import annotations

from .models import Membership, Role

# The admin's four model permissions.
VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
# Acting on an order (the buttons on an order's page).
REFUND, CANCEL_ORDER, RESEND_TICKETS, RESOLVE = "refund", "cancel_order", "resend_tickets", "resolve"
ORDER_ACTIONS = (REFUND, CANCEL_ORDER, RESEND_TICKETS, RESOLVE)
# Seeing a secret in full (shown once after it is made or rotated).
SEE_SECRETS = "see_secrets"
# Erasing an attendee's personal data on their request (ievents.operations.erasure).
ERASE_ATTENDEE = "erase_attendee"

# Screens that hold secrets or decide who is who: owners only, even to look at.
OWNER_ONLY_MODELS = frozenset({
    "ievents.organization", "ievents.membership", "ievents.invitation", "ievents.apikey",
    "payments.integrationsettings",
})

_ALLOWED: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset({VIEW, ADD, CHANGE, DELETE, *ORDER_ACTIONS, ERASE_ATTENDEE, SEE_SECRETS}),
    Role.MANAGER: frozenset({VIEW, ADD, CHANGE, DELETE, *ORDER_ACTIONS, ERASE_ATTENDEE}),
    Role.VIEWER: frozenset({VIEW}),
}


def allows(role: str | None, action: str, model_label: str = "") -> bool:
    """Whether ``role`` may do ``action`` (on ``model_label``, "app.model", when it is about one)."""
    if role not in _ALLOWED:
        return False
    if model_label in OWNER_ONLY_MODELS and role != Role.OWNER:
        return False
    return action in _ALLOWED[role]


def roles_of(user) -> dict[int, str]:
    """organization id → the user's role there (one query)."""
    return dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))


def can(user, organization, action: str, model_label: str = "") -> bool:
    """Whether ``user`` may do ``action`` for ``organization`` (an Organization or its id)."""
    if not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    organization_id = getattr(organization, "pk", organization)
    return allows(roles_of(user).get(organization_id), action, model_label)
