"""The codes' invariant, checked after every step of random order lifecycles: uses held +
used equal the code's count and never pass its limit, and every order's discount is what
its code gave when the order opened, whatever the organizer changed since."""

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from checkout import promo, services
from checkout.models import CheckoutSession, PromoCode, Source, Status
from ievents.models import Organization
from payments import refunds
from payments.models import Payment
from tests.conftest import make_event

LIMIT = 5


class CodeLifecycle(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        org = Organization.objects.create(name="Org", slug=f"org-{Organization.objects.count()}")
        self.event = make_event(org, price=1850, questions=False)
        self.tt = self.event.ticket_types.get()
        self.code = PromoCode.objects.create(event=self.event, code="SM", percent_off=20, max_uses=LIMIT)
        self.user = get_user_model().objects.create_user(f"u{org.pk}")
        self.refusals = 0

    def _orders(self, *statuses):
        return list(CheckoutSession.objects.filter(event=self.event, status__in=statuses).order_by("pk"))

    @rule(quantity=st.integers(1, 3))
    def open_an_order(self, quantity):
        try:
            services.create_session(self.event, [services.Item(self.tt, quantity)],
                                    promo_code=promo.check_code(self.event, "sm"))
        except promo.CodeRefused:
            self.refusals += 1

    @rule(percent=st.integers(1, 100))
    def organizer_changes_the_discount(self, percent):
        code = PromoCode.objects.get(pk=self.code.pk)
        code.percent_off = percent
        code.save()

    @precondition(lambda self: self._orders(Status.OPEN))
    @rule(pick=st.integers(0, 10), cancel=st.booleans())
    def hold_ends(self, pick, cancel):
        orders = self._orders(Status.OPEN)
        session = orders[pick % len(orders)]
        (services.cancel_session if cancel else services.expire_session)(session.pk, Source.TIMER)

    @precondition(lambda self: self._orders(Status.OPEN, Status.EXPIRED))
    @rule(pick=st.integers(0, 10))
    def money_arrives(self, pick):
        orders = self._orders(Status.OPEN, Status.EXPIRED)
        session = orders[pick % len(orders)]
        Payment.objects.create(session=session, provider="sandbox", amount=session.amount_total, currency="EUR",
                               status=Payment.Status.SUCCEEDED, amount_received=session.amount_total)
        services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                          source=Source.PROVIDER_WEBHOOK)

    @precondition(lambda self: self._orders(Status.COMPLETED))
    @rule(pick=st.integers(0, 10), gives_back=st.booleans())
    def refunded_in_full(self, pick, gives_back):
        PromoCode.objects.filter(pk=self.code.pk).update(uses_return_on_refund=gives_back)
        orders = self._orders(Status.COMPLETED)
        session = orders[pick % len(orders)]
        refunds.refund(session, session.amount_paid, by=self.user, key=f"k{session.pk}", outside=True, note="bank")

    @invariant()
    def uses_held_plus_used_are_the_count_and_within_the_limit(self):
        code = PromoCode.objects.get(pk=self.code.pk)
        uses = promo.uses_from_orders(code)
        assert uses.total == code.used <= LIMIT, (uses, code.used)

    @invariant()
    def every_order_got_what_its_code_gave_when_it_opened(self):
        for session in CheckoutSession.objects.filter(event=self.event).prefetch_related("line_items"):
            assert promo.order_discount_matches(session), session.public_id
            assert session.amount_paid in (0, session.amount_total)


@pytest.mark.django_db
def test_codes_keep_their_invariant_through_random_lifecycles():
    run_state_machine_as_test(CodeLifecycle, settings=settings(
        max_examples=25, stateful_step_count=12, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
