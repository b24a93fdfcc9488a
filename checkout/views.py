"""Attendee pages. Thin: parse the form, call a service, render."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_http_methods

from ievents.models import Event
from payments import services as payments
from payments.models import Payment
from payments.registry import PROVIDER_CLASSES, enabled_providers
from webhooks.gate import run_gate

from . import drafts, holders, limits, order_actions, promo, services
from .emails import calendar_for, calendar_name
from .forms import AttendeeForm, PaymentChoiceForm, TicketSelectionForm
from .inventory import SoldOut
from .models import EDITABLE_STATUSES, CheckoutSession, Status
from .state import InvalidTransition

WAITING = (Status.PAYMENT_PENDING, Status.PROCESSING, Status.AUTHORIZED, Status.PAID)


@require_http_methods(["GET", "POST"])
def event_page(request, event_id):
    """Choose tickets. A promo code (``?code=`` in a link, or typed in the code form, which
    sends it so) is tried first, within the limits on guessing: what it gives is shown
    before anything is bought (prices struck through, hidden types shown), and the tickets
    form carries it to the purchase."""
    event = get_object_or_404(Event, public_id=event_id, published=True)
    source = request.POST if request.method == "POST" else request.GET
    typed = source.get("code", "").strip()[:100]
    code, code_error, retry_after = None, "", None
    if typed:
        try:
            code = limits.try_code(event, typed, address=limits.client_address(request))
        except limits.LimitReached as exc:  # 429: the same page, the reason in its alert
            code_error, retry_after = exc.message, exc.retry_after
        except promo.CodeRefused as exc:
            code_error = exc.message
    ticket_types = promo.offered_ticket_types(event, code)
    form = TicketSelectionForm(request.POST or None, ticket_types=ticket_types,
                               initial=drafts.picks(request, event))
    error = ""
    if request.method == "POST" and form.is_valid() and not code_error:
        items = [services.Item(tt, qty) for tt, qty in form.selected() if qty]
        try:
            # Known sold out from the rows this page just read: answered now, without the
            # limits, a transaction or a lock (the on-sale's refused attendees, issue 26).
            services.check_available(items)
            session = limits.hold_tickets(event, items, address=limits.client_address(request), promo_code=code)
        except limits.LimitReached as exc:  # 429: the same page, the reason in its alert
            error, retry_after = exc.message, exc.retry_after
        except SoldOut as exc:
            error = gettext("Sorry, only %(count)s %(name)s ticket(s) are left.") % {
                "count": exc.ticket_type.available, "name": exc.ticket_type.name}
        except promo.CodeRefused as exc:  # used up meanwhile, or not for these tickets
            code_error = exc.message
        except services.CheckoutError as exc:
            error = str(exc.message)
        else:
            return redirect("checkout:session", session.public_id)
    response = render(request, "checkout/event.html", {
        "event": event, "form": form, "error": error, "ticket_types": ticket_types,
        "typed_code": typed, "code": code, "code_error": code_error,
    }, status=200 if retry_after is None else 429)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


# What a page that saves details or starts a payment reads with its session, in the same
# read: the event's gate (run or checked there) and the organization (its payment
# providers), which the session's lock then takes as read here (``state.lock``).
FOR_THE_LOCK = ("event__gate", "organization")


def _session(session_id, related: tuple[str, ...] = ()) -> CheckoutSession:
    """The session a page's link names, with its event and the ``related`` rows the page
    reads of it (a separate read costs each attendee a round trip; one it does not use
    costs every page the columns it builds and loads)."""
    return get_object_or_404(CheckoutSession.objects.select_related("event", *related), public_id=session_id)


def _line_items(session):
    return session.line_items.select_related("ticket_type")


def _hold_seconds_left(session) -> int:
    return max(int((session.expires_at - timezone.now()).total_seconds()), 0)


def _page(session, **context) -> dict:
    """What every step shows: the event, the order summary and the hold."""
    return {"session": session, "event": session.event, "line_items": _line_items(session),
            "hold_seconds_left": _hold_seconds_left(session), **context}


@require_http_methods(["GET", "POST"])
def attendee_form(request, session_id):
    """Name, email and the organizer's questions; Continue runs the pre-payment gate."""
    session = _session(session_id, FOR_THE_LOCK if request.method == "POST" else ())
    if session.status not in EDITABLE_STATUSES:
        return redirect("checkout:status", session.public_id)
    questions = session.event.questions.all()
    line_items = list(_line_items(session))  # the summary's rows, and the tickets named one by one
    initial = {}
    if request.method == "GET":  # a posted form shows what was posted: its initial values go unread
        initial = {**_saved_details(session), **holders.initial(line_items)}
        if not (session.customer_name or session.customer_email):  # a new start: what they typed last time
            initial.update(drafts.details(request, session.event))
    form = AttendeeForm(request.POST or None, questions=questions, initial=initial,
                        holder_slots=holders.slots(line_items), invoice_details=session.event.invoice_details)
    alert = ""
    if request.method == "POST" and form.is_valid():
        try:
            session = services.save_attendee_details(
                session, name=form.cleaned_data["name"], email=form.cleaned_data["email"], answers=form.answers(),
                holders=form.holders(), invoice=form.invoice() if form.invoice_fields() else None,
                language=get_language() or "",
            )
        except services.CheckoutError as exc:
            # An expired hold is said once, by the hold's own box (with its Start again).
            alert = "" if _hold_seconds_left(session) == 0 else str(exc.message)
        else:
            # The gate judges the rows just saved, built from what this request holds (not read back).
            items, answers = services.rows_as_saved(line_items, questions, form.answers(), form.holders())
            decision = run_gate(session, client_ip=limits.client_address(request), line_items=items, answers=answers)
            if decision.allowed:
                return redirect("checkout:review", session.public_id)
            alert = str(decision.message)
    if request.method == "POST":  # not saved: kept for a new start, should the hold run out
        drafts.keep(request, session.event, details=drafts.typed(form))
    return render(request, "checkout/attendee_form.html", _page(session, form=form, alert=alert,
                                                               line_items=line_items))


def _saved_details(session) -> dict:
    """The session's saved name, email and answers, as the attendee form's initial values."""
    initial = {"name": session.customer_name, "email": session.customer_email,
               "invoice_tax_id": session.invoice_tax_id, "invoice_name": session.invoice_name,
               "invoice_address": session.invoice_address}
    # Details never saved (``details_version`` 0) have no answers: nothing to read.
    for answer in session.answers.select_related("question") if session.details_version else ():
        initial[f"q_{answer.question_id}"] = answer.value == "yes" if answer.question.kind == "checkbox" else answer.value
    return initial


@require_http_methods(["POST"])
def start_again(request, session_id):
    """The hold ran out: keep the tickets chosen and what was typed (posted from the form, or
    saved before), and choose again on the event's page."""
    session = _session(session_id)
    form = AttendeeForm(request.POST, questions=session.event.questions.all())
    if "name" in request.POST:
        typed = drafts.typed(form)
    else:  # from the status page: what was saved, or else what an earlier try kept
        typed = _saved_details(session) if session.customer_name or session.customer_email else None
    chosen = {f"qty_{item.ticket_type.public_id}": str(item.quantity) for item in _line_items(session)}
    drafts.keep(request, session.event, details=typed, picks=chosen)
    again = session.event.get_absolute_url()
    if session.promo_code_text:  # the code goes on with the tickets chosen, tried again as typed
        again += "?" + urlencode({"code": session.promo_code_text})
    return redirect(again)


@require_http_methods(["GET", "POST"])
def review(request, session_id):
    """Order review and the choice of payment method; Pay starts the payment."""
    session = _session(session_id, FOR_THE_LOCK)
    if session.status not in EDITABLE_STATUSES:
        return redirect("checkout:status", session.public_id)
    if not services.has_gate_approval(session):
        messages.info(request, gettext("Please confirm your details first."))
        return redirect("checkout:session", session.public_id)
    providers = enabled_providers(session.organization, session.event)
    form = PaymentChoiceForm(request.POST or None, choices=[(p, PROVIDER_CLASSES[p].checkout_label) for p in providers])
    alert = ""
    if request.method == "POST" and (session.is_free or form.is_valid()):
        provider = "" if session.is_free else form.cleaned_data["provider"]
        try:
            payment = payments.begin_payment(session, provider, phone=form.data.get("phone", ""))
        except services.CheckoutError as exc:
            alert = str(exc.message)
        else:
            if payment is None:
                return redirect("checkout:status", session.public_id)
            if payment.redirect_url:
                return redirect(payment.redirect_url)
            return redirect("checkout:status", session.public_id)
    return render(request, "checkout/review.html", _page(
        session, form=form, alert=alert, providers=providers,
        asks_phone=any("mbway" in PROVIDER_CLASSES[p].methods for p in providers),  # MB WAY pays by phone
        answers=session.answers.select_related("question"),
        payment_failed=session.status in (Status.REJECTED, Status.UNPAID),
    ))


def return_page(request, session_id):
    """The attendee is back from the provider: confirm with it now, then show the status."""
    # The payment and its session in one read (the session's gate and organization come
    # along, as with ``_session``); only a link without a payment of this session reads the
    # session alone, for its 404.
    try:
        payment = (Payment.objects.select_related("session__event__gate", "session__organization")
                   .get(session__public_id=session_id, public_id=request.GET.get("payment", "")))
    except Payment.DoesNotExist:
        return redirect("checkout:status", _session(session_id).public_id)
    payments.confirm_on_return(payment.session, payment)
    return redirect("checkout:status", payment.session.public_id)


@require_http_methods(["GET", "POST"])
def cancel(request, session_id):
    """The attendee gives up: asked once to confirm (GET), then the tickets are released."""
    session = _session(session_id)
    if request.method == "GET":
        if session.status not in EDITABLE_STATUSES:
            return redirect("checkout:status", session.public_id)
        return render(request, "checkout/cancel.html", _page(session))
    try:
        order_actions.cancel_by_attendee(session)
    except InvalidTransition:
        return redirect("checkout:status", session.public_id)
    messages.success(request, gettext("Your order was canceled and its tickets were released. Nothing was charged."))
    return redirect(session.cancel_url or session.event.get_absolute_url())


def status_page(request, session_id):
    """The order's state. With ``?live=1`` only the part that changes, for the page's polling."""
    session = _session(session_id)
    # Only a payment awaited is shown (its reference, or the MB WAY prompt): read then only.
    payment = session.payments.first() if session.status in WAITING else None
    if payment is not None and payment.method == "mbway" and session.status == Status.PAYMENT_PENDING:
        # The attendee is waiting for the MB WAY push on their phone; each refresh of this
        # page asks the provider (the callback may be slower than the attendee).
        if payments.confirm_on_return(session, payment) == "applied":
            session = _session(session_id)
    if session.status == Status.COMPLETED:
        drafts.forget(request, session.event)
    context = _page(
        session, payment=payment, tickets=session.tickets.filter(voided_at__isnull=True).select_related("ticket_type"),
        waiting=session.status in WAITING,
        live_url=reverse("checkout:status", args=[session.public_id]) + "?live=1",
    )
    template = "checkout/_status_live.html" if request.GET.get("live") else "checkout/status.html"
    return render(request, template, context)


def calendar(request, session_id):
    """The event as an ``.ics`` file for the attendee's calendar."""
    return calendar_response(_session(session_id))


def calendar_response(session) -> HttpResponse:
    response = HttpResponse(calendar_for(session), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{calendar_name(session)}"'
    return response
