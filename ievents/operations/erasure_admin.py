"""The admin action that erases the attendees of the selected orders (``ievents.operations.erasure``).

Registered on the orders' admin: ``actions = [erase_selected_attendees]``.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from checkout.models import ErasureRecord

from .. import roles
from ..models import Organization
from . import erasure


@admin.action(description=_("Erase these attendees' personal data (on their request)"), permissions=["erase"])
def erase_selected_attendees(modeladmin, request, queryset):
    """Each distinct attendee (organization and email) of the selected orders is erased once,
    in all of that organization's orders; orders already erased are skipped, and so are
    orders of an organization where this user's role may not erase."""
    mine = [org for org, role in roles.roles_of(request.user).items() if roles.allows(role, roles.ERASE_ATTENDEE)]
    if not request.user.is_superuser:
        queryset = queryset.filter(organization__in=mine)
    people = set(queryset.exclude(customer_email="").values_list("organization", "customer_email"))
    by_email = {(organization_id, email.lower()): email for organization_id, email in people}
    organizations = Organization.objects.in_bulk({organization_id for organization_id, _email in by_email})
    rows = 0
    for (organization_id, _email), email in sorted(by_email.items()):
        record = erasure.erase_attendee(organizations[organization_id], email, source=ErasureRecord.Source.ADMIN,
                                        requested_by=f"admin {request.user.get_username()}")
        rows += record.rows_total
    if by_email:
        modeladmin.message_user(request, ngettext(
            "Erased %(count)d attendee: %(rows)d rows now hold a marker instead.",
            "Erased %(count)d attendees: %(rows)d rows now hold a marker instead.", len(by_email))
            % {"count": len(by_email), "rows": rows}, messages.SUCCESS)
    else:
        modeladmin.message_user(request, gettext("Nothing to erase: the selected orders hold no attendee any more."),
                                messages.WARNING)
