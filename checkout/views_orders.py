"""The attendee's own pages after the purchase: Find my order, and an order opened from its
signed link (its tickets, the calendar, the tickets by email again, cancelling an unpaid
order). Thin: the rules are in ``checkout.find_order``, ``checkout.order_links`` and
``checkout.order_actions``."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from ievents.models import Event, Organization

from . import find_order, limits, order_actions, order_links, state, tickets
from .models import EDITABLE_STATUSES, WITH_VALID_TICKETS
from .views import calendar_response


class FindOrderForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))


@require_http_methods(["GET", "POST"])
def find(request, organization_slug=None, event_id=None):
    """Find my order, for an organization (by its slug, or one of its events' pages) or for all.
    The answer to a valid email is the same page whether or not it has orders."""
    if event_id:
        organization = get_object_or_404(Event.objects.select_related("organization"), public_id=event_id).organization
    else:
        organization = get_object_or_404(Organization, slug=organization_slug) if organization_slug else None
    form = FindOrderForm(request.POST or None)
    context = {"form": form, "organization": organization, "sent": False, "alert": ""}
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            find_order.request_order_links(organization, form.cleaned_data["email"],
                                           address=limits.client_address(request), language=get_language() or "")
        except find_order.TooManyRequests as exc:
            context["alert"] = gettext("Too many requests from your connection. Please try again later.")
            status = 429
            response = render(request, "checkout/find_order.html", context, status=status)
            response["Retry-After"] = str(exc.retry_after)
            return response
        context["sent"] = form.cleaned_data["email"]
    return render(request, "checkout/find_order.html", context, status=status)


def _order(token):
    try:
        return order_links.session_for(token)
    except order_links.LinkInvalid:
        raise Http404("This link is not valid or has expired.") from None


def order(request, token):
    session = _order(token)
    valid = session.tickets.filter(voided_at__isnull=True).select_related("ticket_type")
    return render(request, "checkout/order.html", {
        "session": session, "event": session.event, "token": token,
        "line_items": session.line_items.select_related("ticket_type"),
        "tickets": valid if session.status in WITH_VALID_TICKETS else [],
        "can_cancel": state.can_apply(session.status, "cancel") and session.status in EDITABLE_STATUSES,
        "can_continue": session.status in EDITABLE_STATUSES,
        "hold_seconds_left": 0,
    })


def order_calendar(request, token):
    return calendar_response(_order(token))


def ticket_png(request, token, code):
    """One ticket's QR code as a picture to download or print."""
    session = _order(token)
    if session.status not in WITH_VALID_TICKETS or not session.tickets.filter(
            code=code, voided_at__isnull=True).exists():
        raise Http404("No such ticket.")
    response = HttpResponse(tickets.qr_png(code), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="ticket-{code}.png"'
    return response


@require_http_methods(["POST"])
def order_resend(request, token):
    session = _order(token)
    if order_actions.resend_to_attendee(session):
        messages.success(request, gettext("We are sending your tickets to %(email)s again.")
                         % {"email": session.customer_email})
    return redirect("checkout:order", token)


@require_http_methods(["GET", "POST"])
def order_cancel(request, token):
    session = _order(token)
    if request.method == "GET":
        if session.status not in EDITABLE_STATUSES:
            return redirect("checkout:order", token)
        return render(request, "checkout/cancel.html", {
            "session": session, "event": session.event, "hold_seconds_left": 0, "keep_url": token,
            "line_items": session.line_items.select_related("ticket_type")})
    if session.status in EDITABLE_STATUSES:
        try:
            order_actions.cancel_by_attendee(session)
        except state.InvalidTransition:
            pass
        else:
            messages.success(request, gettext("Your order was canceled and its tickets were released. "
                                              "Nothing was charged."))
    return redirect("checkout:order", token)



