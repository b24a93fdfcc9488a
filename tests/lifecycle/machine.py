"""The order lifecycle as a model-based test: random interleavings of everything that can
happen to orders, and after every step the invariants, written once (issue 22 item 2).

Three parts, in this order:

1. **The world** (``World``): one organization, one event with two small ticket types (so
   sell-outs happen), a real gate server whose answer each step chooses, the four
   providers configured, their APIs stood in for by ``responses`` and driven by what the
   world says each payment is at the provider (``World.truth``). Helpers do one thing each
   the way the pages, routes and admin do it, through the same service functions:
   ``open_order``, ``submit_details``, ``pay``, ``provider_news``, ``organizer_refund``…
2. **The contract** (``CONTRACT``): the invariants, each a function of the world that
   raises ``Broken`` with what it saw. docs/architecture.md lists them ("Invariants,
   checked by the lifecycle test"). The overview and CSV checks are two small functions
   (``overview_figures_match_their_lists``, ``csv_totals_match_the_overview``) meant to be
   adapted when the overview and the export change.
3. **The machine** (``LifecycleMachine``): the rules. Each draws what it needs and calls a
   helper; refusals the product makes on purpose (sold out, not payable, nothing to refund)
   are expected outcomes, anything else fails the run.

Adding a capability (a promo code, an attendee email) is a helper in part 1, a rule in part
3, and — if it brings a rule of its own — an invariant in part 2.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import responses
import stripe
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client, RequestFactory
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from standardwebhooks.webhooks import Webhook

from checkout import attendee_emails, inventory, order_actions, promo, services, state
from checkout.models import (
    PAID_STATUSES,
    WITH_ISSUED_TICKETS,
    AttendeeEmail,
    CheckoutSession,
    OrderAction,
    PromoCode,
    Source,
    Status,
    Ticket,
    Transition,
)
from ievents.models import Event, Membership, Organization, TicketType
from ievents.operations.erasure import erase_attendee
from ievents.operations.overview import order_totals, upcoming_overview
from payments import refunds
from payments import services as payments
from payments.base import PaymentUpdate, UpdateKind
from payments.models import IntegrationSettings, Payment, Refund
from payments.sandbox import OUTCOME_KEY
from webhooks.gate import run_gate
from webhooks.models import GateSettings, OutboxEvent

from ..servers import LocalServer, Reply

S = Status
STRIPE_API = "https://api.stripe.com"
EASYPAY_API = "https://api.test.easypay.pt/2.0"
IFTHENPAY_API = "https://api.ifthenpay.com"
SECRETS = {"sandbox": "whsec_" + "bGlmZWN5Y2xlc2FuZGJveHNlY3JldDE=", "stripe": "whsec_lifecycle_stripe",
           "easypay": "lifecycle-easypay-notify-secret", "ifthenpay": "lifecycle-anti-phishing-key"}
# (provider, method): every way an attendee can pay.
PAYMENT_WAYS = [("sandbox", "card"), ("stripe", "card"), ("easypay", "multibanco"), ("easypay", "mbway"),
                ("ifthenpay", "multibanco"), ("ifthenpay", "mbway")]
PEOPLE = [("Ana Silva", "ana@example.com"), ("Bruno Costa", "bruno@example.com"), ("Denied Person", "no@example.com")]
LANGUAGES = ["en", "pt-pt"]
# The codes an organizer makes: (kind, percent_off, amount_off). "access" gives nothing off
# but reveals the hidden ticket type; "free" is a 100 % code (orders of it complete without
# a provider).
CODE_KINDS = {"percent": (20, None), "fixed": (None, 700), "free": (100, None), "access": (None, None)}


# ============================================================================================
# 1. The world and its helpers
# ============================================================================================
class Gate:
    """What the organizer's gate answers next ("allow", "deny", "error"), served by a real
    HTTP server on 127.0.0.1 (one for the whole run; each example points its event at it)."""

    def __init__(self):
        self.mode = "allow"
        self.server = LocalServer(self._answer)

    def _answer(self, request) -> Reply:
        if self.mode == "deny":
            return Reply(403, {"message": "Not on the list."})
        if self.mode == "error":
            return Reply(503, {"message": "down"})
        return Reply(200, {})


@dataclass
class Truth:
    """A payment as its provider sees it: what the stand-in APIs answer and what news says."""

    provider: str
    method: str
    payment_id: str  # ours (pay_…)
    reference: str  # theirs
    state: str = "pending"  # pending, paid, failed, expired, canceled
    amount: int = 0  # what was paid, when paid
    refunded: int = 0  # total refunded at the provider


@dataclass
class World:
    organization: Organization
    event: Event
    types: list[TicketType]
    organizer: object
    gate: Gate
    orders: list[int] = field(default_factory=list)  # session pks, in the order opened
    truth: dict[str, Truth] = field(default_factory=dict)  # by provider reference
    # Fingerprints of the details the gate let through, per order: tickets need one of these.
    approved: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: list[tuple[str, object]] = field(default_factory=list)  # news delivered, for replays
    hidden: TicketType | None = None  # sold only with an access code
    codes: list[int] = field(default_factory=list)  # promo code pks, in the order made
    # What each order's code gave when it opened, worked out here from the code's kind (not
    # by the product's arithmetic): the discount must stay exactly this.
    gave: dict[int, int] = field(default_factory=dict)
    # Changes the world made that the attendee must be told of, per order: kind → count.
    told: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))

    # --- setup -------------------------------------------------------------------------------
    @classmethod
    def create(cls, gate: Gate, *, on_error: str, quantities=(3, 2)) -> World:
        organization = Organization.objects.create(name="Lifecycle Events", slug="lifecycle",
                                                   notification_email="ops@lifecycle.test")
        event = Event.objects.create(organization=organization, name="Lifecycle Summit", currency="EUR",
                                     starts_at=timezone.now() + timedelta(days=30))
        types = [TicketType.objects.create(event=event, name=f"Type {n}", price=price, quantity=quantity,
                                           max_per_order=3, position=n)
                 for n, (price, quantity) in enumerate(zip((2500, 1000), quantities, strict=True))]
        hidden = TicketType.objects.create(event=event, name="Speakers", price=1500, quantity=2, max_per_order=2,
                                           position=9, hidden=True)
        GateSettings.objects.create(event=event, enabled=True, url=gate.server.url, timeout_ms=2000, on_error=on_error)
        credentials = {"stripe": {"secret_key": "sk_test_lifecycle"},
                       "easypay": {"account_id": "acc-lifecycle", "api_key": "key-lifecycle"},
                       "ifthenpay": {"mb_key": "MBK-LIFE", "mbway_key": "MBW-LIFE", "backoffice_key": "BO-LIFE"}}
        for provider, secret in SECRETS.items():
            IntegrationSettings.objects.create(organization=organization, provider=provider, webhook_secret=secret,
                                               credentials=json.dumps(credentials.get(provider, {})))
        organizer = get_user_model().objects.create_user("ana", is_staff=True,
                                                         is_superuser=True)
        Membership.objects.create(user=organizer, organization=organization)
        return cls(organization=organization, event=event, types=types, organizer=organizer, gate=gate, hidden=hidden)

    def session(self, pk: int) -> CheckoutSession:
        return CheckoutSession.objects.select_related("event__gate", "organization").get(pk=pk)

    def sessions(self):
        return CheckoutSession.objects.filter(event=self.event).order_by("pk")

    # --- the attendee ------------------------------------------------------------------------
    def open_order(self, quantities: list[int], *, language: str = "en", code: str = "",
                   hidden: int = 0) -> CheckoutSession:
        """The event page's "Continue": hold the tickets chosen (with ``code`` typed, any
        case, and ``hidden`` tickets of the type an access code reveals)."""
        items = [services.Item(tt, qty) for tt, qty in zip(self.types, quantities, strict=True) if qty]
        if hidden:
            items.append(services.Item(self.hidden, hidden))
        found = promo.check_code(self.event, code) if code else None
        session = services.create_session(self.event, items, source=Source.ATTENDEE, language=language,
                                          promo_code=found)
        self.orders.append(session.pk)
        self.gave[session.pk] = self.discount_given(found, items)
        return session

    # --- promo codes -----------------------------------------------------------------------
    def make_code(self, kind: str, max_uses: int | None, returns: bool, only_first_type: bool) -> PromoCode:
        """The organizer makes a code (as the admin's form saves one)."""
        percent_off, amount_off = CODE_KINDS[kind]
        code = PromoCode.objects.create(event=self.event, code=f"{kind.upper()}{len(self.codes) + 1}",
                                        percent_off=percent_off, amount_off=amount_off, max_uses=max_uses,
                                        uses_return_on_refund=returns)
        if kind == "access":
            code.reveals_ticket_types.set([self.hidden])
        elif only_first_type:
            code.ticket_types.set([self.types[0]])
        self.codes.append(code.pk)
        return code

    def edit_code(self, pk: int) -> None:
        """Half off, or 3.00 off, from now on (as saving the code's admin form does)."""
        code = PromoCode.objects.get(pk=pk)
        if code.percent_off:
            code.percent_off = 50
        elif code.amount_off:
            code.amount_off = 300
        code.save()

    @staticmethod
    def discount_given(code: PromoCode | None, items) -> int:
        """What ``code`` takes off these items, by the code's own terms as the organizer
        wrote them: a percentage of each price in scope (half up), or a fixed amount, never
        more than the price; nothing for an access code."""
        if code is None:
            return 0
        scope = set(code.ticket_types.values_list("pk", flat=True))
        total = 0
        for item in items:
            if scope and item.ticket_type.pk not in scope:
                continue
            price = item.ticket_type.price
            off = (price * code.percent_off + 50) // 100 if code.percent_off else (code.amount_off or 0)
            total += min(off, price) * item.quantity
        return total

    def submit_details(self, pk: int, name: str, email: str, gate_answers: str):
        """The details form's "Continue": save, then ask the gate about the rows as saved, from
        the line items read for the form (``checkout.views.attendee_form``)."""
        session = self.session(pk)
        line_items = list(session.line_items.select_related("ticket_type"))
        session = services.save_attendee_details(session, name=name, email=email, answers={})
        self.gate.mode = gate_answers
        items, answers = services.rows_as_saved(line_items, [], {})
        decision = run_gate(session, client_ip="203.0.113.7", line_items=items, answers=answers)
        if decision.allowed:
            self.approved[pk].add(services.details_fingerprint(self.session(pk)))
        return decision

    def pay(self, pk: int, provider: str, method: str) -> Payment | None:
        """The review page's "Pay" (``payments.services.begin_payment``)."""
        payment = payments.begin_payment(self.session(pk), provider, method=method, phone="912345678")
        if payment is not None and payment.provider_reference and payment.provider_reference not in self.truth:
            self.truth[payment.provider_reference] = Truth(provider, payment.method or method, payment.public_id,
                                                           payment.provider_reference)
        return payment

    def attendee_cancels(self, pk: int) -> None:
        """From the order's link: "Cancel" on an unpaid order (a note that nothing was charged)."""
        canceled = order_actions.cancel_by_attendee(self.session(pk))
        self.told[pk]["canceled"] += bool(canceled.customer_email)  # nobody to tell before the details

    # --- the provider ------------------------------------------------------------------------
    def settle(self, truth: Truth, outcome: str, amount: int) -> None:
        """The provider decides a pending payment: paid (``amount``), failed or expired."""
        truth.state, truth.amount = outcome, (amount if outcome == "paid" else 0)
        if truth.provider == "sandbox" and outcome in ("paid", "failed"):
            # What the sandbox's own payment page records when its button is pressed.
            payment = Payment.objects.get(provider_reference=truth.reference)
            payment.instructions = {**payment.instructions, OUTCOME_KEY: "success" if outcome == "paid" else "failure"}
            payment.save(update_fields=["instructions"])

    def attendee_returns(self, truth: Truth) -> str:
        """Back from the provider's page (or the status page polling MB WAY): ask it now."""
        payment = Payment.objects.select_related("session").get(provider_reference=truth.reference)
        return payments.confirm_on_return(self.session(payment.session_id), payment)

    def provider_news(self, truth: Truth, client: Client) -> None:
        """The provider tells us what ``truth`` says now, through its real webhook route (the
        sandbox's too), signed or keyed as each provider does."""
        session = CheckoutSession.objects.get(payments__provider_reference=truth.reference)
        news = getattr(self, f"_news_{truth.provider}")(truth, session)
        if news is not None:
            self.sent.append(news)
            self.deliver(news, client)

    def deliver(self, news, client: Client) -> None:
        provider, request = news
        response = request(client)
        assert response.status_code == 200, (provider, response.status_code, response.content[:300])

    def _org(self) -> str:
        return self.organization.public_id

    def _news_sandbox(self, truth: Truth, session) -> tuple | None:
        kinds = {"paid": "succeeded", "failed": "failed", "expired": "expired", "canceled": "canceled"}
        if truth.state not in kinds and not truth.refunded:
            return None
        kind = kinds.get(truth.state, "succeeded")
        amount = truth.amount if truth.state == "paid" else None
        if truth.refunded:
            kind = "refunded" if truth.refunded >= truth.amount else "partially_refunded"
            amount = truth.refunded
        event_id = f"evt_{uuid.uuid4().hex[:16]}"
        body = json.dumps({"id": event_id, "type": kind, "data": {"session": session.public_id,
                           "payment": truth.reference, "amount": amount, "currency": "EUR"}})

        def post(client, body=body, event_id=event_id):
            now = datetime.now(tz=UTC)
            signature = Webhook(SECRETS["sandbox"]).sign(event_id, now, body)
            return client.post(f"/api/webhooks/sandbox/{self._org()}", data=body, content_type="application/json",
                               HTTP_WEBHOOK_ID=event_id, HTTP_WEBHOOK_TIMESTAMP=str(int(now.timestamp())),
                               HTTP_WEBHOOK_SIGNATURE=signature)
        return ("sandbox", post)

    def _news_stripe(self, truth: Truth, session) -> tuple | None:
        ours = {"checkout_session": session.public_id, "payment": truth.payment_id}
        if truth.refunded:
            obj = {"id": "ch_" + truth.reference, "object": "charge", "amount": truth.amount,
                   "amount_refunded": truth.refunded, "currency": "eur", "metadata": ours,
                   "payment_intent": "pi_" + truth.reference}
            event_type = "charge.refunded"
        else:
            types = {"paid": "checkout.session.completed", "failed": "checkout.session.async_payment_failed",
                     "expired": "checkout.session.expired", "canceled": "checkout.session.expired"}
            if truth.state not in types:
                return None
            event_type = types[truth.state]
            obj = {"id": truth.reference, "object": "checkout.session", "client_reference_id": session.public_id,
                   "metadata": ours, "currency": "eur", "amount_total": truth.amount or session.amount_total,
                   "status": {"paid": "complete", "failed": "complete"}.get(truth.state, "expired"),
                   "payment_status": "paid" if truth.state == "paid" else "unpaid",
                   "payment_intent": "pi_" + truth.reference}
        return ("stripe", self._stripe_post(event_type, obj))

    def stale_stripe_processing(self, truth: Truth) -> None:
        """Stripe's ``payment_intent.processing``, arriving after whatever came later."""
        session = CheckoutSession.objects.get(payments__provider_reference=truth.reference)
        obj = {"id": "pi_" + truth.reference, "object": "payment_intent", "amount": session.amount_total,
               "currency": "eur", "metadata": {"checkout_session": session.public_id}}
        self.sent.append(("stripe", self._stripe_post("payment_intent.processing", obj)))

    def _stripe_post(self, event_type: str, obj: dict):
        event = {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
                 "created": int(datetime.now(tz=UTC).timestamp()), "data": {"object": obj}}
        payload = json.dumps(event)

        def post(client, payload=payload):
            header = stripe.WebhookSignature.generate_signature_header(payload, SECRETS["stripe"])
            return client.post(f"/api/webhooks/stripe/{self._org()}", data=payload, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=header)
        return post

    def _news_easypay(self, truth: Truth, session) -> tuple | None:
        if truth.state == "pending":
            return None
        note = {"id": truth.reference, "key": truth.payment_id, "type": "capture",
                "status": "success" if truth.state == "paid" else "failed", "messages": ["news"],
                "date": datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")}
        body = json.dumps(note)

        def post(client, body=body):
            return client.post(f"/api/webhooks/easypay/{self._org()}?secret={SECRETS['easypay']}", data=body,
                               content_type="application/json")
        return ("easypay", post)

    def _news_ifthenpay(self, truth: Truth, session) -> tuple | None:
        if truth.state != "paid":
            return None  # Ifthenpay calls back for money only
        params = {"key": SECRETS["ifthenpay"], "orderId": "x", "amount": f"{truth.amount / 100:.2f}",
                  "requestId": truth.reference, "payment_datetime": "07-12-2026 10:00:00"}
        if truth.method == "multibanco":
            params.update(entity="12345", reference="123456789")

        def get(client, params=params):
            return client.get(f"/api/webhooks/ifthenpay/{self._org()}", params)
        return ("ifthenpay", get)

    # --- the organizer -----------------------------------------------------------------------
    def organizer_refund(self, pk: int, amount: int, *, restock: bool, some_tickets: bool, outside: bool):
        session = self.session(pk)
        tickets = list(Ticket.objects.filter(session=session, voided_at__isnull=True).values_list("pk", flat=True))
        return refunds.refund(session, amount, by=self.organizer, note="lifecycle refund" if outside else "",
                              restock=restock, key=secrets.token_hex(8), outside=outside,
                              tickets=tickets[:1] if some_tickets else tickets)

    def organizer_cancel(self, pk: int) -> list[str]:
        session = self.session(pk)
        _, problems = payments.cancel_order(session, by=self.organizer, note="fraud, do not sell",
                                            key=secrets.token_hex(8))
        if session.status not in PAID_STATUSES and session.customer_email:
            self.told[pk]["canceled"] += 1  # a paid one's is the refund's email (one per Refund row)
        return problems

    def resend(self, pk: int, corrected: bool) -> str:
        session = self.session(pk)
        before = session.customer_email
        to = "corrected@example.com" if corrected else None
        address = order_actions.resend_tickets(session, to=to, by=self.organizer)
        self.told[pk]["tickets"] += 1
        if to and before and before.lower() != to:
            self.told[pk]["email_changed"] += 1
        return address

    def resolve(self, pk: int, tell: bool) -> None:
        order_actions.resolve_attention(self.session(pk), by=self.organizer, note="refunded by bank transfer",
                                        tell_attendee=tell)
        if tell and self.session(pk).customer_email:
            self.told[pk]["resolved"] += 1

    def expire_hold(self, pk: int) -> None:
        """The hold's time runs out (its expiry moved into the past) and the timer runs."""
        CheckoutSession.objects.filter(pk=pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        services.release_expired_holds()


# --- The providers' APIs, stood in for -------------------------------------------------------
def provider_apis(world_of) -> responses.RequestsMock:
    """``responses`` answering as Stripe, Easypay and Ifthenpay would, from ``world_of()``'s
    truths; the gate on 127.0.0.1 is a real server and passes through."""
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.add_passthru("http://127.0.0.1")

    def truth(reference: str) -> Truth | None:
        return world_of().truth.get(reference)

    def stripe_create(request):
        return 200, {}, json.dumps({"id": f"cs_test_{uuid.uuid4().hex[:20]}", "object": "checkout.session",
                                    "url": "https://checkout.stripe.test/pay"})

    def stripe_retrieve(request):
        reference = request.url.rsplit("/", 1)[-1]
        found = truth(reference)
        body = {"id": reference, "object": "checkout.session", "payment_intent": "pi_" + reference, "status": "open",
                "payment_status": "unpaid", "currency": "eur"}
        if found is not None:
            session = CheckoutSession.objects.filter(payments__provider_reference=reference).first()
            body.update(client_reference_id=session.public_id if session else "", amount_total=found.amount,
                        status={"paid": "complete", "failed": "complete", "pending": "open"}.get(found.state, "expired"),
                        payment_status="paid" if found.state == "paid" else "unpaid")
        return 200, {}, json.dumps(body)

    def mbway_status(request):
        found = truth(parse_qs(request.url.split("?", 1)[1]).get("requestId", [""])[0])
        code = {"paid": "000", "failed": "020"}.get(found.state if found else "", "123")
        return 200, {}, json.dumps({"Status": code, "Message": "status"})

    def stripe_expire(request):
        found = truth(request.url.split("/")[-2])
        if found is None or found.state != "pending":
            return 400, {}, json.dumps({"error": {"type": "invalid_request_error",
                                                  "message": "Only Checkout Sessions with a status of open can be expired."}})
        found.state = "canceled"
        return 200, {}, json.dumps({"id": found.reference, "object": "checkout.session", "status": "expired"})

    def stripe_refund(request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        found = truth(form["payment_intent"].removeprefix("pi_"))
        if found is not None:
            found.refunded += int(form["amount"])
        return 200, {}, json.dumps({"id": f"re_{uuid.uuid4().hex[:12]}", "object": "refund", "status": "succeeded"})

    def easypay_create(request):
        body = {"status": "ok", "id": str(uuid.uuid4()), "method": {"type": "mb", "entity": "21098",
                                                                     "reference": "987654321"}}
        return 201, {}, json.dumps(body)

    def easypay_single(request):
        found = truth(request.url.rsplit("/", 1)[-1])
        if found is None:
            return 404, {}, json.dumps({"status": "error", "message": ["not found"]})
        status = {"paid": "paid", "failed": "failed", "expired": "deleted", "canceled": "deleted"}.get(found.state,
                                                                                                     "pending")
        body = {"id": found.reference, "value": found.amount / 100, "currency": "EUR", "payment_status": status,
                "transactions": []}
        if found.state == "paid":
            body["transactions"] = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, found.reference)),
                                     "values": {"requested": found.amount / 100, "paid": found.amount / 100}}]
        return 200, {}, json.dumps(body)

    def easypay_delete(request):
        found = truth(request.url.rsplit("/", 1)[-1])
        if found is None or found.state != "pending":
            return 400, {}, json.dumps({"status": "error", "message": ["This payment can no longer be deleted"]})
        found.state = "canceled"
        return 204, {}, ""

    def easypay_refund(request):
        capture = request.url.rsplit("/", 1)[-1]
        for found in world_of().truth.values():
            if str(uuid.uuid5(uuid.NAMESPACE_URL, found.reference)) == capture:
                found.refunded += round(json.loads(request.body)["value"] * 100)
        return 201, {}, json.dumps({"status": "ok", "id": str(uuid.uuid4())})

    def ifthenpay_refund(request):
        body = json.loads(request.body)
        found = truth(body["requestId"])
        if found is not None:
            found.refunded += round(float(body["amount"]) * 100)
        return 200, {}, json.dumps({"Code": "1", "Message": "Successful refunded"})

    request_id = lambda: f"REQ{uuid.uuid4().hex[:12]}"  # noqa: E731
    mock.add_callback("POST", f"{STRIPE_API}/v1/checkout/sessions", callback=stripe_create)
    mock.add_callback("POST", re.compile(rf"{STRIPE_API}/v1/checkout/sessions/[^/]+/expire"), callback=stripe_expire)
    mock.add_callback("GET", re.compile(rf"{STRIPE_API}/v1/checkout/sessions/[^/]+$"), callback=stripe_retrieve)
    mock.add_callback("POST", f"{STRIPE_API}/v1/refunds", callback=stripe_refund)
    mock.add_callback("POST", f"{EASYPAY_API}/single", callback=easypay_create)
    mock.add_callback("GET", re.compile(rf"{EASYPAY_API}/single/[^/]+$"), callback=easypay_single)
    mock.add_callback("DELETE", re.compile(rf"{EASYPAY_API}/single/[^/]+$"), callback=easypay_delete)
    mock.add_callback("POST", re.compile(rf"{EASYPAY_API}/refund/[^/]+$"), callback=easypay_refund)
    mock.add_callback("POST", f"{IFTHENPAY_API}/multibanco/reference/init", callback=lambda r: (
        200, {}, json.dumps({"Status": "0", "Entity": "12345", "Reference": "123456789", "RequestId": request_id()})))
    mock.add_callback("POST", f"{IFTHENPAY_API}/spg/payment/mbway", callback=lambda r: (
        200, {}, json.dumps({"Status": "000", "RequestId": request_id(), "Message": "Pending"})))
    mock.add_callback("POST", f"{IFTHENPAY_API}/endpoint/payments/refund", callback=ifthenpay_refund)
    mock.add_callback("GET", re.compile(rf"{IFTHENPAY_API}/spg/payment/mbway/status.*"), callback=mbway_status)
    return mock


# ============================================================================================
# 2. The contract: the invariants, checked after every step
# ============================================================================================
class Broken(AssertionError):
    """An invariant does not hold; the message says which and what was seen."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Broken(message)


# Statuses in which an order without tickets may hold seats: it may still be paid.
HOLDING = {S.OPEN, S.PAYMENT_PENDING, S.PROCESSING, S.AUTHORIZED, S.REJECTED, S.UNPAID}
NO_MONEY = HOLDING | {S.EXPIRED, S.CANCELED}
# How far along an order is: history never goes to a lower rank.
RANK = {S.OPEN: 0, S.PAYMENT_PENDING: 0, S.PROCESSING: 0, S.AUTHORIZED: 0, S.REJECTED: 0, S.UNPAID: 0,
        S.EXPIRED: 1, S.CANCELED: 1, S.PAID: 2, S.COMPLETED: 3, S.PARTIALLY_REFUNDED: 4, S.REFUNDED: 5}
MONEY_IN = (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED)


def _accounted(session: CheckoutSession) -> bool:
    """Money the order holds beyond what it shows is flagged, or an organizer resolved it."""
    return bool(session.needs_attention) or session.actions.filter(kind=OrderAction.Kind.RESOLVE).exists()


def inventory_adds_up(world: World) -> None:
    """For every ticket type: held + sold + kept off sale + available = quantity, none
    negative; seats are held by orders that may still be paid, by valid tickets, and by
    voided tickets the organizer chose to keep off sale — by nothing else."""
    seats = Counter()  # what the orders account for, per ticket type
    held = Counter()
    for session in world.sessions().prefetch_related("line_items", "tickets"):
        tickets = list(session.tickets.all())
        if session.holds_released:
            expect(not [t for t in tickets if t.voided_at is None],
                   f"{session.public_id} ({session.status}) has valid tickets but its seats were released")
            continue
        expect(bool(tickets) or session.status in HOLDING,
               f"{session.public_id} holds seats without tickets while {session.status}: they never come back")
        for item in session.line_items.all():
            seats[item.ticket_type_id] += item.quantity
            if not tickets:
                held[item.ticket_type_id] += item.quantity
        for ticket in tickets:
            if ticket.back_on_sale:
                seats[ticket.ticket_type_id] -= 1
    for tt in TicketType.objects.filter(event=world.event):
        sold = Ticket.objects.filter(ticket_type=tt, voided_at__isnull=True).count()
        off_sale = Ticket.objects.filter(ticket_type=tt, voided_at__isnull=False, back_on_sale=False,
                                         session__holds_released=False).count()
        available = tt.quantity - tt.reserved
        expect(tt.reserved == seats[tt.pk], f"{tt.name}: reserved {tt.reserved}, but orders account for {seats[tt.pk]}")
        expect(min(available, held[tt.pk], sold, off_sale) >= 0, f"{tt.name}: a negative count")
        expect(held[tt.pk] + sold + off_sale + available == tt.quantity,
               f"{tt.name}: held {held[tt.pk]} + sold {sold} + kept off sale {off_sale} + available {available} "
               f"!= {tt.quantity}")


def money_adds_up(world: World) -> None:
    """Per order: refunded ≤ paid ≤ received; the status agrees with the money; money
    received and not kept as the order's (a wrong amount, a second payment, money after a
    cancel) is flagged with the reason."""
    for session in world.sessions():
        paid, refunded, total = session.amount_paid, session.amount_refunded, session.amount_total
        received = Payment.objects.filter(session=session, status__in=MONEY_IN).aggregate(
            s=Sum("amount_received"))["s"] or 0
        name = f"{session.public_id} ({session.status})"
        expect(0 <= refunded <= paid, f"{name}: refunded {refunded} of {paid} paid")
        expect(paid <= received, f"{name}: shows {paid} paid, but payments received {received}")
        if session.status in NO_MONEY:
            expect(paid == 0 and refunded == 0, f"{name}: paid {paid}, refunded {refunded}")
        elif session.status in (S.PAID, S.COMPLETED):
            expect(paid == total and refunded == 0, f"{name}: paid {paid} of {total}, refunded {refunded}")
        elif session.status == S.PARTIALLY_REFUNDED:
            expect(paid == total and 0 < refunded < paid, f"{name}: paid {paid}, refunded {refunded}")
        elif session.status == S.REFUNDED:
            expect(paid == total and refunded == paid, f"{name}: paid {paid}, refunded {refunded}")
        if received != paid:
            expect(_accounted(session), f"{name}: received {received} but keeps {paid}, and nobody is told")
        refund_rows = Refund.objects.filter(session=session).aggregate(s=Sum("amount"))["s"] or 0
        expect(refund_rows <= refunded, f"{name}: refunds made {refund_rows} > refunded {refunded}")


def tickets_only_for_approved_payments(world: World) -> None:
    """Tickets exist only for orders paid for details the gate let through, one per seat
    bought; an order holding money without tickets is flagged; an order that was canceled
    never issues tickets."""
    for session in world.sessions().prefetch_related("line_items"):
        name = f"{session.public_id} ({session.status})"
        issued = Ticket.objects.filter(session=session).count()
        valid = Ticket.objects.filter(session=session, voided_at__isnull=True).count()
        bought = sum(item.quantity for item in session.line_items.all())
        triggers = list(session.transitions.values_list("trigger", flat=True))
        if issued:
            expect(session.status in WITH_ISSUED_TICKETS, f"{name}: has {issued} tickets")
            expect(issued == bought, f"{name}: {issued} tickets issued for {bought} bought")
            expect("cancel" not in triggers, f"{name}: canceled, yet issued tickets")
            fingerprints = set(Payment.objects.filter(session=session, status__in=MONEY_IN)
                               .values_list("approved_fingerprint", flat=True))
            if session.amount_total == 0:  # a free order (a 100 % code): no payment, the gate's approval itself
                fingerprints.add(session.gate_approved_fingerprint)
            expect(bool(fingerprints & world.approved[session.pk]),
                   f"{name}: tickets, but no payment was for details the gate let through")
        else:  # paid but never completed (flagged): it may be refunded in part or in full, no more
            expect(session.status != S.COMPLETED, f"{name}: no tickets")
        if session.status == S.REFUNDED or session.status in NO_MONEY:
            expect(valid == 0, f"{name}: {valid} valid tickets")
        if session.amount_paid - session.amount_refunded > 0 and not valid:
            # Unless the organizer chose it: a partial refund that voided the tickets keeps a fee.
            kept_a_fee = issued and session.actions.filter(kind=OrderAction.Kind.REFUND).exists()
            expect(_accounted(session) or kept_a_fee, f"{name}: holds money without tickets, and nobody is told")


def history_moves_forward(world: World) -> None:
    """The transitions chain from ``open`` to the status, never to a lower rank; the version
    counts them; each transition that announces announced once, and nothing else was."""
    from checkout.state import EVENT_FOR_TRIGGER

    for session in world.sessions():
        name = session.public_id
        transitions = list(Transition.objects.filter(session=session).order_by("id"))
        at = S.OPEN
        for t in transitions:
            expect(t.from_status == at, f"{name}: {t.trigger} from {t.from_status}, but it was {at}")
            expect(RANK[t.to_status] >= RANK[t.from_status], f"{name}: {t.from_status} → {t.to_status} goes back")
            at = t.to_status
        expect(at == session.status, f"{name}: history ends at {at}, the order is {session.status}")
        expect(session.version == 1 + len(transitions), f"{name}: version {session.version}, {len(transitions)} steps")
        announced = Counter(OutboxEvent.objects.filter(session=session).values_list("type", flat=True))
        wanted = Counter(EVENT_FOR_TRIGGER[t.trigger] for t in transitions if t.trigger in EVENT_FOR_TRIGGER)
        wanted["checkout.session.created"] += 1
        expect(announced == wanted, f"{name}: announced {dict(announced)}, transitions call for {dict(wanted)}")


# --- The overview and the export: small on purpose, to adapt when they change ---------------
def _admin_request(world: World, link: str):
    request = RequestFactory().get(link)
    request.user = world.organizer
    return request


def _orders_admin():
    from django.contrib import admin

    return admin.site.get_model_admin(CheckoutSession)


def _list_of(world: World, link: str):
    """The orders a link of the overview opens: the admin list's own queryset for that URL
    (its filters and search), without rendering the page."""
    return _orders_admin().get_changelist_instance(_admin_request(world, link)).queryset


def _export_of(world: World, link: str) -> list[dict]:
    """The CSV the list at ``link`` exports (the admin's own view), read as a spreadsheet would."""
    import csv
    import io

    response = _orders_admin().export_csv(_admin_request(world, link.replace("/?", "/export/?")))
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _overview_row(world: World):
    [row] = [r for r in upcoming_overview([world.organization.pk]) if r.event.pk == world.event.pk]
    return row


def overview_figures_match_their_lists(world: World) -> None:
    """Each figure of the overview equals the count or the sum of exactly the list its link
    opens (the list's own totals, ``order_totals``), and that list is exactly the orders the
    figure's name says, worked out here from the orders themselves."""
    from ievents.money import format_money

    row = _overview_row(world)
    everything = list(world.sessions())
    meant = {  # link → the orders it must open
        "paid_orders": {s.pk for s in everything if s.status in PAID_STATUSES},
        "net_revenue": {s.pk for s in everything if s.amount_paid > 0},
        "refunded": {s.pk for s in everything if s.amount_refunded > 0},
        "canceled_orders": {s.pk for s in everything if s.status == S.CANCELED},
        "needs_attention": {s.pk for s in everything if s.needs_attention},
    }
    lists = {}
    for link, pks in meant.items():
        opened = _list_of(world, row.links[link])
        lists[link] = opened
        got = set(opened.values_list("pk", flat=True))
        expect(got == pks, f"overview: the {link} link opens {sorted(got)}, it means {sorted(pks)}")
    totals = {link: (order_totals(opened) or [None])[0] for link, opened in lists.items()}

    def count(link):
        return totals[link].orders if totals[link] else 0

    def minor(link, what):
        return getattr(totals[link], what) if totals[link] else 0

    figures = {
        "paid orders": (row.paid_orders, count("paid_orders")),
        "net revenue": (row.net_revenue_minor, minor("net_revenue", "net_minor")),
        "net revenue, written": (row.net_revenue, format_money(minor("net_revenue", "net_minor"), "EUR")),
        "refunded": (row.refunded_minor, minor("refunded", "refunded_minor")),
        "refunded, written": (row.refunded, format_money(minor("refunded", "refunded_minor"), "EUR")),
        "refunded orders": (row.refunded_orders, count("refunded")),
        "canceled orders": (row.canceled_orders, count("canceled_orders")),
        "need attention": (row.needs_attention, count("needs_attention")),
    }
    for name, (shown, listed) in figures.items():
        expect(shown == listed, f"overview: {name} {shown}, the list its link opens says {listed}")


def _amount(cell: str) -> int:
    return round(float(cell) * 100) if cell else 0


def csv_totals_match_the_overview(world: World) -> None:
    """The export of the list each money figure's link opens adds up to that figure: one
    row per ticket (an order without tickets is one row), each order's paid and refunded
    amounts once, on its first row, so the columns' sums are the orders' money."""
    row = _overview_row(world)
    for link, figure in (("net_revenue", row.net_revenue_minor), ("refunded", row.refunded_minor),
                         ("paid_orders", None)):
        orders = _list_of(world, row.links[link])
        rows = _export_of(world, row.links[link])
        rows_wanted = sum(max(s.tickets.count(), 1) for s in orders)
        expect(len(rows) == rows_wanted, f"export of {link}: {len(rows)} rows for {rows_wanted} tickets/orders")
        references = {r["Order id"] for r in rows}
        expect(references == {s.public_id for s in orders}, f"export of {link}: orders {sorted(references)}")
        paid = sum(_amount(r["Order paid"]) for r in rows)
        refunded = sum(_amount(r["Order refunded"]) for r in rows)
        want_paid = sum(s.amount_paid for s in orders)
        want_refunded = sum(s.amount_refunded for s in orders)
        expect((paid, refunded) == (want_paid, want_refunded),
               f"export of {link}: paid {paid}, refunded {refunded}; the orders {want_paid}, {want_refunded}")
        if link == "net_revenue":
            expect(paid - refunded == figure, f"export: net {paid - refunded}, the overview's net revenue {figure}")
        elif link == "refunded":
            expect(refunded == figure, f"export: refunded {refunded}, the overview's refunded {figure}")
        else:
            expect(len(references) == row.paid_orders, f"export: {len(references)} paid orders, "
                                                        f"the overview {row.paid_orders}")


def codes_add_up(world: World) -> None:
    """Promo codes, counted like seats: for each code, the uses its orders hold (open ones)
    and used (paid ones) add up to ``used``, never over ``max_uses``; every order's discount
    is exactly what its code gave when it opened; an order refunded in full gave its uses
    back exactly when its code says so; a free order (a 100 % code) completes without a
    provider."""
    for code in PromoCode.objects.filter(event=world.event):
        uses = promo.uses_from_orders(code)
        expect(uses.total == code.used, f"code {code.code}: held {uses.held} + used {uses.used} != {code.used}")
        expect(code.max_uses is None or code.used <= code.max_uses, f"code {code.code}: used {code.used} of "
                                                                    f"{code.max_uses}")
    for session in world.sessions().select_related("promo_code").prefetch_related("line_items"):
        name = f"{session.public_id} ({session.status})"
        expect(promo.order_discount_matches(session), f"{name}: its discount is not what its code gave")
        expect(session.discount_total == world.gave.get(session.pk, 0),
               f"{name}: discount {session.discount_total}, the code gave {world.gave.get(session.pk, 0)}")
        if session.promo_code_id and session.status == S.REFUNDED and session.tickets.exists():
            returns = session.promo_code.uses_return_on_refund
            expect(session.promo_uses_released == returns, f"{name}: refunded in full, its code's uses "
                   f"{'given back' if session.promo_uses_released else 'kept'}, the code says "
                   f"{'give them back' if returns else 'keep them'}")
        if session.amount_total == 0:
            expect(not Payment.objects.filter(session=session).exists(), f"{name}: free, yet sent to a provider")
            expect(session.status not in (S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED), f"{name}: free")


TOLD_BY_REFUND = {AttendeeEmail.Kind.REFUND, AttendeeEmail.Kind.CANCELED}


def attendee_told_once(world: World) -> None:
    """Each change is told to the attendee by one email, never two, in the order's language:
    every refund (made from the admin: one email naming it; made at the provider: one per
    refunded total) — the money told adds up to the money refunded; every cancellation of
    an unpaid order; tickets sent again; an address corrected (a notice to the old one); a
    flag the attendee must hear of (paid, no tickets) and a resolution they were to be told.
    Nothing is sent twice: a sent email was sent by one attempt. (An erased attendee's
    emails are erased with them: such an order is checked for language and sending only.)"""
    K = AttendeeEmail.Kind
    for session in world.sessions():
        name = f"{session.public_id} ({session.status})"
        rows = list(AttendeeEmail.objects.filter(session=session).order_by("id"))
        for row in rows:
            expect(row.language == session.language, f"{name}: {row.key} in {row.language!r}, "
                                                     f"the order is in {session.language!r}")
            expect(row.attempts == (1 if row.sent_at else 0), f"{name}: {row.key} sent in {row.attempts} attempts")
        if session.personal_data_erased_at is not None:
            continue  # its emails were erased with the attendee (``ievents.operations.erasure``): nothing left to count
        kinds = Counter(row.kind for row in rows)
        for refund in Refund.objects.filter(session=session).exclude(status=Refund.Status.FAILED):
            told = [row for row in rows if row.key in (f"refund:{refund.public_id}", f"canceled:{refund.public_id}")]
            expect(len(told) == 1, f"{name}: refund {refund.public_id} told {len(told)} times")
        money_told = sum(row.params.get("amount", row.params.get("refunded", 0)) or 0
                         for row in rows if row.kind in TOLD_BY_REFUND)
        expect(money_told == session.amount_refunded, f"{name}: refunds told {money_told}, refunded "
                                                      f"{session.amount_refunded}")
        unpaid_cancels = sum(1 for row in rows if row.kind == K.CANCELED and not row.key.startswith("canceled:rf_"))
        wanted = world.told[session.pk]
        expect(unpaid_cancels == wanted["canceled"], f"{name}: {unpaid_cancels} cancellation emails for "
                                                     f"{wanted['canceled']} cancellations")
        for kind in ("tickets", "email_changed", "resolved"):
            expect(kinds[kind] == wanted[kind], f"{name}: {kinds[kind]} {kind} emails for {wanted[kind]} changes")
        if session.status == S.PAID and session.needs_attention and session.customer_email:
            expect(kinds[K.FLAGGED] >= 1, f"{name}: paid, flagged, and the attendee not told")


CONTRACT = [inventory_adds_up, money_adds_up, tickets_only_for_approved_payments, history_moves_forward,
            codes_add_up, attendee_told_once]
VIEWS = [overview_figures_match_their_lists, csv_totals_match_the_overview]


# ============================================================================================
# 3. The machine: what can happen, in any order
# ============================================================================================
# What the examples reached, over a run (statuses, refusals, flags): printed by the test, to
# see that the rules do reach every corner.
REACHED: Counter = Counter()
EXPECTED_REFUSALS = (services.CheckoutError, inventory.SoldOut, state.InvalidTransition, refunds.RefundRefused,
                     order_actions.OrderActionRefused, promo.CodeRefused)


class LifecycleMachine(RuleBasedStateMachine):
    """Set up by ``run`` in tests/lifecycle/test_lifecycle_machine.py: ``gate`` and
    ``apis`` are shared by every example; the database is emptied before each."""

    gate: Gate
    world: World | None = None

    def __init__(self):
        super().__init__()
        call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=True)
        type(self).world = None
        self.client = Client()
        self.refusals = Counter()

    @initialize(on_error=st.sampled_from(["block", "allow"]), small=st.booleans(),
                code=st.tuples(st.sampled_from(sorted(CODE_KINDS)), st.sampled_from([1, 2, 3, None]), st.booleans()))
    def set_up(self, on_error, small, code):
        type(self).world = World.create(self.gate, on_error=on_error, quantities=(2, 1) if small else (3, 2))
        self.world.make_code(*code, only_first_type=False)  # one code from the start, so orders use codes often
        self.client.force_login(self.world.organizer)

    # --- helpers for the rules ---------------------------------------------------------------
    def attempt(self, what: str, fn, *args, **kwargs):
        """Run one action; a refusal the product makes on purpose is an outcome, counted."""
        try:
            return fn(*args, **kwargs)
        except EXPECTED_REFUSALS as exc:
            self.refusals[f"{what}: {type(exc).__name__}"] += 1
            return None

    def pick_order(self, data):
        return data.draw(st.sampled_from(self.world.orders), label="order")

    def pick_truth(self, data, *, states=None):
        truths = [t for t in self.world.truth.values() if states is None or t.state in states]
        return data.draw(st.sampled_from(truths), label="payment") if truths else None

    def has_orders(self):
        return self.world is not None and bool(self.world.orders)

    def has_payments(self):
        return self.world is not None and bool(self.world.truth)

    # --- attendees ---------------------------------------------------------------------------
    def pick_code(self, data) -> str:
        """A code an attendee types: none, mostly; else one of the event's, in any case."""
        if not self.world.codes or not data.draw(st.booleans(), label="with a code"):
            return ""
        code = PromoCode.objects.get(pk=data.draw(st.sampled_from(self.world.codes), label="code"))
        return code.code.lower() if data.draw(st.booleans(), label="lower case") else code.code

    @rule(data=st.data(), quantities=st.lists(st.integers(0, 2), min_size=2, max_size=2),
          hidden=st.integers(0, 1), language=st.sampled_from(LANGUAGES))
    def open_order(self, data, quantities, hidden, language):
        if any(quantities) or hidden:
            self.attempt("open", self.world.open_order, quantities, language=language, code=self.pick_code(data),
                         hidden=hidden)

    @rule(data=st.data(), quantities=st.lists(st.integers(0, 2), min_size=2, max_size=2).filter(any),
          person=st.sampled_from(PEOPLE[:2]), way=st.sampled_from(PAYMENT_WAYS),
          outcome=st.sampled_from([None, "paid", "paid", "failed"]), language=st.sampled_from(LANGUAGES))
    def buy(self, data, quantities, person, way, outcome, language):
        """The common path in one step: tickets, details the gate allows, Pay, and maybe the
        provider's news of it."""
        session = self.attempt("open", self.world.open_order, quantities, language=language,
                               code=self.pick_code(data))
        if session is None or not self.attempt("details", self.world.submit_details, session.pk, *person, "allow"):
            return
        payment = self.attempt("pay", self.world.pay, session.pk, *way)
        if payment is None and self.world.session(session.pk).amount_total == 0:
            free = self.world.session(session.pk)
            expect(free.status == S.COMPLETED, f"{free.public_id}: a free order paid for is {free.status}")
        if payment is not None and outcome is not None and payment.provider_reference in self.world.truth:
            truth = self.world.truth[payment.provider_reference]
            self.world.settle(truth, outcome, session.amount_total)
            self.world.provider_news(truth, self.client)

    @precondition(has_orders)
    @rule(data=st.data(), person=st.sampled_from(PEOPLE), gate=st.sampled_from(["allow", "deny", "error"]))
    def submit_details(self, data, person, gate):
        self.attempt("details", self.world.submit_details, self.pick_order(data), *person, gate)

    @rule(kind=st.sampled_from(sorted(CODE_KINDS)), max_uses=st.sampled_from([1, 2, 3, None]), returns=st.booleans(),
          only_first_type=st.booleans())
    def organizer_makes_code(self, kind, max_uses, returns, only_first_type):
        if len(self.world.codes) < 3:
            self.world.make_code(kind, max_uses, returns, only_first_type)

    @rule(data=st.data())
    def organizer_edits_code(self, data):
        """The organizer changes what a code gives: orders opened before keep what it gave them."""
        if self.world.codes:
            self.world.edit_code(data.draw(st.sampled_from(self.world.codes), label="code"))

    @precondition(has_orders)
    @rule(data=st.data(), way=st.sampled_from(PAYMENT_WAYS))
    def pay(self, data, way):
        self.attempt("pay", self.world.pay, self.pick_order(data), *way)

    @precondition(has_orders)
    @rule(data=st.data())
    def attendee_cancels(self, data):
        self.attempt("attendee cancel", self.world.attendee_cancels, self.pick_order(data))

    @precondition(has_orders)
    @rule(data=st.data(), known=st.booleans())
    def attendee_erased(self, data, known):
        session = self.world.session(self.pick_order(data))
        email = session.customer_email if known and session.customer_email else PEOPLE[0][1]
        erase_attendee(self.world.organization, email, source="api", requested_by="lifecycle")

    # --- providers ---------------------------------------------------------------------------
    @precondition(has_payments)
    @rule(data=st.data(), outcome=st.sampled_from(["paid", "paid", "wrong_amount", "failed", "expired"]))
    def provider_settles(self, data, outcome):
        truth = self.pick_truth(data, states={"pending"})
        if truth is None:
            return
        session = CheckoutSession.objects.get(payments__provider_reference=truth.reference)
        amount = session.amount_total + (100 if outcome == "wrong_amount" else 0)
        self.world.settle(truth, "paid" if outcome == "wrong_amount" else outcome, amount)
        self.world.provider_news(truth, self.client)

    @precondition(has_payments)
    @rule(data=st.data())
    def provider_tells_again(self, data):
        """The same news again: a retry (the same delivery) or a second notification."""
        truth = self.pick_truth(data)
        if data.draw(st.booleans(), label="the very same delivery") and self.world.sent:
            self.world.deliver(data.draw(st.sampled_from(self.world.sent), label="earlier news"), self.client)
        else:
            self.world.provider_news(truth, self.client)

    @precondition(has_payments)
    @rule(data=st.data())
    def attendee_returns(self, data):
        self.world.attendee_returns(self.pick_truth(data))

    @precondition(has_payments)
    @rule(data=st.data())
    def stripe_processing_arrives_late(self, data):
        truth = self.pick_truth(data)
        if truth.provider == "stripe":
            self.world.stale_stripe_processing(truth)
            self.world.deliver(self.world.sent[-1], self.client)

    @precondition(has_payments)
    @rule(data=st.data(), share=st.sampled_from([0.5, 1.0]))
    def provider_refunds_from_its_dashboard(self, data, share):
        truth = self.pick_truth(data, states={"paid"})
        if truth is None or truth.provider not in ("stripe", "sandbox"):
            return  # Easypay and Ifthenpay tell us only of refunds we made
        truth.refunded = max(truth.refunded, int(truth.amount * share))
        self.world.provider_news(truth, self.client)

    # --- the organizer -----------------------------------------------------------------------
    @precondition(has_orders)
    @rule(data=st.data(), share=st.sampled_from([0.4, 1.0]), restock=st.booleans(), some_tickets=st.booleans(),
          outside=st.booleans())
    def organizer_refunds(self, data, share, restock, some_tickets, outside):
        session = self.world.session(self.pick_order(data))
        left = refunds.refundable_amount(session)
        amount = max(1, int(left * share)) if left else 100
        made = self.attempt("refund", self.world.organizer_refund, session.pk, amount, restock=restock,
                            some_tickets=some_tickets, outside=outside)
        if made is None and not outside:  # no refund API for it (a Multibanco reference): made outside
            self.attempt("refund outside", self.world.organizer_refund, session.pk, amount, restock=restock,
                         some_tickets=some_tickets, outside=True)

    @precondition(has_orders)
    @rule(data=st.data())
    def organizer_cancels(self, data):
        self.attempt("cancel", self.world.organizer_cancel, self.pick_order(data))

    @precondition(has_orders)
    @rule(data=st.data(), corrected=st.booleans())
    def organizer_resends(self, data, corrected):
        self.attempt("resend", self.world.resend, self.pick_order(data), corrected)

    @precondition(has_orders)
    @rule(data=st.data(), tell=st.booleans())
    def organizer_resolves(self, data, tell):
        self.attempt("resolve", self.world.resolve, self.pick_order(data), tell)

    # --- the attendee's emails -------------------------------------------------------------------
    @precondition(has_orders)
    @rule()
    def emails_sweep(self):
        """The outbox's sweep (celery beat): whatever is queued goes out now, once."""
        attendee_emails.sweep()
        unsent = AttendeeEmail.objects.filter(session__event=self.world.event, sent_at__isnull=True).count()
        expect(unsent == 0, f"after the sweep, {unsent} attendee emails are still unsent")

    # --- time ----------------------------------------------------------------------------------
    @precondition(has_orders)
    @rule(data=st.data())
    def hold_expires(self, data):
        self.world.expire_hold(self.pick_order(data))

    # --- after every step ----------------------------------------------------------------------
    @invariant()
    def the_contract_holds(self):
        if self.world is None:
            return
        for check in CONTRACT:
            check(self.world)

    def teardown(self):
        """The overview and the export read what the admin reads (a tenth of a second): they
        are checked once the example's steps are done, on everything those steps left."""
        if self.world is not None and self.world.orders:
            for check in VIEWS:
                check(self.world)
            REACHED.update(self.world.sessions().values_list("status", flat=True))
            REACHED.update(f"refused {what}" for what in self.refusals)
            REACHED.update(f"flag: {r.split(':')[0]}" for r in self.world.sessions().exclude(needs_attention="")
                           .values_list("needs_attention", flat=True))
            REACHED.update(f"code {text.rstrip('0123456789').lower()}: {status}" for text, status in
                           self.world.sessions().exclude(promo_code_text="").values_list("promo_code_text", "status"))
            REACHED.update(f"email {kind}" for kind in AttendeeEmail.objects.filter(
                session__event=self.world.event).values_list("kind", flat=True))


def apply_directly(world: World, truth: Truth, kind: UpdateKind, amount: int | None = None) -> str:
    """Provider news applied without its route (``payments.services.apply_update``), for
    regression tests that need one exact update."""
    session = CheckoutSession.objects.get(payments__provider_reference=truth.reference)
    update = PaymentUpdate(kind, session_public_id=session.public_id, provider_reference=truth.reference,
                           amount=amount, currency="EUR", detail="lifecycle test")
    return payments.apply_update(session, update, source=Source.PROVIDER_WEBHOOK, provider=truth.provider)
