"""Two tenants with something to lose, and a fingerprint of everything money depends on.

Org A ("mine") and org B ("theirs") each have an event with a gate, questions, every
provider configured with its own secret, sessions in several states with a payment from
each provider, an endpoint, an outbox event and a delivery. A hostile request passes a
test when ``state_fingerprint()`` is the same before and after it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from checkout import services, state
from checkout.models import CheckoutSession, PromoCode, Source, Ticket, Transition
from ievents.models import ApiKey, Organization, TicketType
from payments.models import Payment
from tests.conftest import make_event
from tests.payments.helpers import configure
from webhooks.models import Delivery, GateCall, GateSettings, InboundWebhook, OutboxEvent, WebhookEndpoint

# Bounded so the whole directory runs in well under two minutes; deadline off because the
# first example pays for imports and template compilation.
FUZZ = hypothesis_settings(max_examples=60, deadline=None, derandomize=True,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])


def sandbox_secret(seed: str) -> str:
    return "whsec_" + base64.b64encode(seed.encode().ljust(32, b"!")[:32]).decode()


@dataclass
class Tenant:
    org: Organization
    event: object
    ticket_type: TicketType
    open_session: CheckoutSession
    pending: dict  # provider -> (session, payment)
    endpoint: WebhookEndpoint
    outbox_event: OutboxEvent
    delivery: Delivery
    gate: GateSettings
    gate_call: GateCall
    inbound: InboundWebhook
    api_key: str
    secrets: dict  # provider -> webhook secret
    promo_code: PromoCode | None = None

    @property
    def stripe_session(self):
        return self.pending["stripe"][0]


def build_tenant(org: Organization, tag: str) -> Tenant:
    event = make_event(org, name=f"Event {tag}", providers=())
    tt = event.ticket_types.get()
    secrets = {
        "stripe": f"whsec_stripe_{tag}_" + "s" * 20,
        "easypay": f"easypay-{tag}-" + "e" * 20,
        "ifthenpay": f"ifthenpay-{tag}-" + "i" * 20,
        "sandbox": sandbox_secret(f"sandbox-{tag}"),
    }
    configure(org, "stripe", secret=secrets["stripe"], credentials={"secret_key": "sk_test_" + tag})
    configure(org, "easypay", secret=secrets["easypay"], credentials={"account_id": "acc", "api_key": "key"})
    configure(org, "ifthenpay", secret=secrets["ifthenpay"], credentials={"mb_key": "MBK-" + tag, "entity": "12345"})
    configure(org, "sandbox", secret=secrets["sandbox"])
    open_session = services.create_session(event, [services.Item(tt, 1)], customer_email=f"{tag}@example.com")
    pending = {}
    for provider in ("stripe", "easypay", "ifthenpay", "sandbox"):
        session = services.create_session(event, [services.Item(tt, 2)], customer_email=f"{tag}@example.com")
        state.apply(session.pk, "start_payment", Source.ATTENDEE, detail=provider)
        reference = {"easypay": "3fa85f64-5717-4562-b3fc-2c963f66afa6" if tag == "A" else
                     "4fa85f64-5717-4562-b3fc-2c963f66afa7", "ifthenpay": f"REQ-{tag}"}.get(provider, "")
        payment = Payment.objects.create(session=session, provider=provider, amount=session.amount_total,
                                         currency=session.currency, status=Payment.Status.PENDING,
                                         provider_reference=reference)
        if provider == "sandbox":
            payment.provider_reference = payment.public_id
            payment.save(update_fields=["provider_reference"])
        session.refresh_from_db()
        pending[provider] = (session, payment)
    gate = GateSettings.objects.create(event=event, url="http://127.0.0.1:9/gate", enabled=False)
    gate_call = GateCall.objects.create(event=event, session=open_session, outcome="denied", decision="deny",
                                        status_code=403, message=f"denied for {tag}")
    endpoint = WebhookEndpoint.objects.create(organization=org, url=f"http://127.0.0.1:9/{tag}", enabled_events=["*"])
    # A real state change writes the outbox event and its delivery (to the endpoint above).
    services.cancel_session(open_session.pk, Source.ADMIN, detail="set-up")
    open_session = services.create_session(event, [services.Item(tt, 1)], customer_email=f"{tag}@example.com")
    outbox_event = OutboxEvent.objects.filter(organization=org, type="checkout.session.canceled").get()
    delivery = Delivery.objects.filter(event=outbox_event).get()
    inbound = InboundWebhook.objects.create(provider="stripe", organization=org, event_id=f"evt_{tag}",
                                            type="checkout.session.completed", verified=True, outcome="processed",
                                            dedupe_key=f"stripe:{org.pk}:evt_{tag}", payload="{}")
    return Tenant(org=org, event=event, ticket_type=tt, open_session=open_session, pending=pending, endpoint=endpoint,
                  outbox_event=outbox_event, delivery=delivery, gate=gate, gate_call=gate_call, inbound=inbound,
                  api_key=ApiKey.issue(org)[1], secrets=secrets,
                  promo_code=PromoCode.objects.create(event=event, code=f"CODE-{tag}", percent_off=10, max_uses=5))


@pytest.fixture
def mine(db) -> Tenant:
    return build_tenant(Organization.objects.create(name="Mine Org", slug="mine"), "A")


@pytest.fixture
def theirs(db) -> Tenant:
    return build_tenant(Organization.objects.create(name="Their Org", slug="theirs"), "B")


def state_fingerprint() -> dict:
    """Everything a forged or malformed request must not change."""
    return {
        "sessions": list(CheckoutSession.objects.order_by("pk").values_list(
            "pk", "status", "version", "amount_paid", "amount_refunded", "needs_attention", "customer_name",
            "customer_email", "gate_approved_fingerprint", "holds_released")),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "status", "amount_received", "instructions")),
        "reserved": list(TicketType.objects.order_by("pk").values_list("pk", "reserved")),
        "outbox": list(OutboxEvent.objects.order_by("pk").values_list("pk", flat=True)),
        "deliveries": list(Delivery.objects.order_by("pk").values_list("pk", "status", "attempts_count")),
        "transitions": Transition.objects.count(),
        "tickets": Ticket.objects.count(),
        "endpoints": list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "url", "enabled")),
        "gates": list(GateSettings.objects.order_by("pk").values_list("pk", "url", "enabled")),
    }
