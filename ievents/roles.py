"""Who may do what for an organization.

A minimal rule for the order actions: a superuser may do anything; a member acts by the
role of their membership, where owners and managers (and the older "staff") may act on
orders and viewers may only look. Anyone who is not a member may do nothing.
"""

ACTING_ROLES = {"owner", "manager", "staff"}

ORDER_ACTIONS = {"refund", "cancel_order", "resend_tickets", "resolve"}


def can(user, organization, action: str) -> bool:
    """True if ``user`` may perform ``action`` (one of ``ORDER_ACTIONS``) for ``organization``."""
    from .models import Membership

    if action not in ORDER_ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    role = Membership.objects.filter(user=user, organization=organization).values_list("role", flat=True).first()
    return role in ACTING_ROLES
