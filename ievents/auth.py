"""Model permissions from membership: a member of an organization holds the admin's
permissions on the organizer's apps without a group or a per-user grant.

Django's admin asks ``user.has_perm("checkout.view_checkoutsession")`` before it asks our
ModelAdmins; this backend answers yes for an active staff member of any organization. What
they then see and may change is narrowed by their role in each organization
(``ievents.roles``, ``ievents.admin_base``): the permission opens the screen, the role decides
the rows. Superusers hold every permission through Django's own backend.
"""

from django.contrib.auth.backends import BaseBackend

from .models import Membership

ORGANIZER_APPS = frozenset({"ievents", "checkout", "webhooks", "payments"})
# Making a tenant, or a membership by hand, is the platform's: members join by invitation.
NEVER_FROM_MEMBERSHIP = frozenset({"ievents.add_organization", "ievents.delete_organization",
                                   "ievents.add_membership"})


def is_member(user) -> bool:
    """Whether ``user`` belongs to any organization; read once per user object (per request)."""
    if not hasattr(user, "organization_member"):
        user.organization_member = Membership.objects.filter(user_id=user.pk).exists()
    return user.organization_member


class MembershipPermissions(BaseBackend):
    """Grants no login (``authenticate`` is the base's: None), only permissions."""

    def _applies(self, user) -> bool:
        return bool(user.is_active and user.is_staff and not user.is_anonymous and is_member(user))

    def has_perm(self, user_obj, perm, obj=None):
        app_label = perm.partition(".")[0]
        return app_label in ORGANIZER_APPS and perm not in NEVER_FROM_MEMBERSHIP and self._applies(user_obj)

    def has_module_perms(self, user_obj, app_label):
        return app_label in ORGANIZER_APPS and self._applies(user_obj)
