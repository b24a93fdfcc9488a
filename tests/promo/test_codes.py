"""Promo and access codes in the checkout's services: what they give, and their uses held,
consumed and given back like seats."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from checkout import promo, services
from checkout.models import CheckoutSession, PromoCode, Source, Status
from checkout.representation import session_as_api
from ievents.models import TicketType
from payments import refunds
from payments.models import Payment

from .conftest import make_code

pytestmark = pytest.mark.django_db


def _open(event, tt, qty=1, code=None, **kwargs):
    found = promo.check_code(event, code) if code else None
    return services.create_session(event, [services.Item(tt, qty)], promo_code=found, **kwargs)


def _paid(session):
    """Pay a session as the sandbox does, and leave its payment marked succeeded."""
    payment = Payment.objects.create(session=session, provider="sandbox", amount=session.amount_total,
                                           currency=session.currency, status=Payment.Status.SUCCEEDED,
                                           amount_received=session.amount_total)
    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                      source=Source.PROVIDER_WEBHOOK)
    session.refresh_from_db()
    return payment


def _uses(code) -> tuple[int, int, int]:
    code.refresh_from_db()
    counted = promo.uses_from_orders(code)
    return counted.held, counted.used, code.used


def test_a_percentage_code_takes_it_off_each_ticket_and_the_order_shows_list_price_discount_and_price(event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(price=1850)
    ticket_type.refresh_from_db()
    make_code(event, "members20", percent_off=20)
    session = _open(event, ticket_type, 2, code="  Members20 ")  # any case, spaces around
    assert (session.amount_total, session.discount_total, session.promo_code_text) == (2960, 740, "MEMBERS20")
    shown = session_as_api(session)
    assert shown["promo_code"] == "MEMBERS20" and shown["discount_total"] == 740 and shown["amount_total"] == 2960
    line = shown["line_items"][0]
    assert (line["unit_price"], line["unit_discount"], line["discount"], line["amount"]) == (1850, 370, 740, 2960)
    assert promo.order_discount_matches(session)


def test_a_fixed_amount_never_takes_a_price_below_zero_and_a_100_percent_code_makes_a_free_order(event, ticket_type):
    make_code(event, "BIGGER", amount_off=999_999)
    make_code(event, "ALL", percent_off=100)
    assert _open(event, ticket_type, 1, code="bigger").amount_total == 0
    free = _open(event, ticket_type, 1, code="all")
    assert free.is_free and free.discount_total == 2500
    services.save_attendee_details(free, name="Ana", email="ana@example.com", answers={})
    from payments import services as payments

    assert payments.begin_payment(free, "") is None  # no provider: paid and completed here
    free.refresh_from_db()
    assert free.status == Status.COMPLETED and free.tickets.count() == 1 and not Payment.objects.filter(session=free)


def test_a_code_for_some_ticket_types_discounts_only_those(event, ticket_type):
    vip = TicketType.objects.create(event=event, name="VIP", price=10000, quantity=10)
    make_code(event, "VIPONLY", percent_off=50, ticket_types=[vip])
    session = services.create_session(event, [services.Item(ticket_type, 1), services.Item(vip, 1)],
                                      promo_code=promo.check_code(event, "viponly"))
    assert session.discount_total == 5000 and session.amount_total == 2500 + 5000 and session.promo_uses == 1
    with pytest.raises(promo.CodeRefused) as refused:
        _open(event, ticket_type, 1, code="viponly")
    assert refused.value.reason == "not_applicable"


@pytest.mark.parametrize(("fields", "reason"), [
    ({"valid_until": timezone.now() - timedelta(minutes=1)}, "expired"),
    ({"valid_from": timezone.now() + timedelta(days=1)}, "not_yet"),
    ({"max_uses": 0}, "used_up"),
])
def test_an_expired_early_or_used_up_code_is_refused_and_changes_nothing(event, ticket_type, fields, reason):
    make_code(event, "LATE", percent_off=10, **fields)
    with pytest.raises(promo.CodeRefused) as refused:
        _open(event, ticket_type, 1, code="late")
    assert refused.value.reason == reason and "LATE" in refused.value.message
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0 and not CheckoutSession.objects.exists()


def test_an_unknown_code_and_another_events_code_are_unknown(organization, event, ticket_type):
    from tests.conftest import make_event

    make_code(make_event(organization, name="Other"), "OTHERS", percent_off=10)
    for typed in ("NOPE", "others", "", "x" * 500):
        with pytest.raises(promo.CodeRefused) as refused:
            promo.check_code(event, typed)
        assert refused.value.reason == "unknown"


def test_uses_are_held_by_open_orders_released_when_the_hold_ends_and_consumed_by_paid_ones(event, ticket_type):
    code = make_code(event, "TEN", percent_off=10, max_uses=3)
    first = _open(event, ticket_type, 2, code="ten")
    assert _uses(code) == (2, 0, 2)
    with pytest.raises(promo.CodeRefused) as refused:  # 2 of 3 held: 2 more do not fit
        _open(event, ticket_type, 2, code="ten")
    assert refused.value.reason == "used_up"
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 2  # the refused order's tickets went back with it
    services.expire_session(first.pk)
    assert _uses(code) == (0, 0, 0)
    second = _open(event, ticket_type, 3, code="ten")
    _paid(second)
    assert second.status == Status.COMPLETED and _uses(code) == (0, 3, 3)


def test_a_code_covers_at_most_its_uses_per_order(event, ticket_type):
    make_code(event, "PAIR", percent_off=10, max_uses_per_order=2)
    assert _open(event, ticket_type, 2, code="pair").promo_uses == 2
    with pytest.raises(promo.CodeRefused) as refused:
        _open(event, ticket_type, 3, code="pair")
    assert refused.value.reason == "too_many" and "at most 2 tickets" in refused.value.message


@pytest.mark.parametrize(("gives_back", "after"), [(True, (0, 0, 0)), (False, (0, 1, 1))])
def test_a_full_refund_gives_the_uses_back_only_when_the_code_says_so(event, ticket_type, gives_back, after):
    code = make_code(event, "ONCE", percent_off=20, max_uses=1, uses_return_on_refund=gives_back)
    session = _open(event, ticket_type, 1, code="once")
    _paid(session)
    assert session.amount_paid == 2000
    organizer = get_user_model().objects.create_user("org")
    with pytest.raises(refunds.RefundRefused):  # never more than was paid: the discounted price
        refunds.refund(session, 2500, by=organizer, key="k1", outside=True, note="bank transfer")
    refunds.refund(session, 2000, by=organizer, key="k2", outside=True, note="bank transfer")
    session.refresh_from_db()
    assert session.status == Status.REFUNDED and session.amount_refunded == 2000
    assert _uses(code) == after


def test_a_late_payment_takes_the_uses_again_or_is_flagged_when_they_are_gone(event, ticket_type):
    code = make_code(event, "ONCE", percent_off=20, max_uses=1)
    late = _open(event, ticket_type, 1, code="once")
    services.expire_session(late.pk)
    _paid(late)
    assert late.status == Status.COMPLETED and _uses(code) == (0, 1, 1)

    other = make_code(event, "SOLO", amount_off=500, max_uses=1)
    gone = _open(event, ticket_type, 1, code="solo")
    services.expire_session(gone.pk)
    _open(event, ticket_type, 1, code="solo")  # someone else took the one use meanwhile
    _paid(gone)
    assert gone.status == Status.PAID and "promo code was used up" in gone.needs_attention
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 2  # late and the other; the flagged order's seat was not taken again
    assert _uses(other) == (1, 0, 1)


def test_a_hidden_ticket_type_is_sold_only_with_a_code_that_reveals_it(event, ticket_type, hidden_type):
    make_code(event, "SPEAKERS", reveals=[hidden_type])
    make_code(event, "MEMBERS", percent_off=10)
    offered = promo.offered_ticket_types(event, None)
    assert hidden_type not in offered
    for code in (None, "members"):
        with pytest.raises(services.InvalidOrder):
            _open(event, hidden_type, 1, code=code)
    assert [tt.name for tt in promo.offered_ticket_types(event, promo.check_code(event, "speakers"))] == [
        "General", "Speaker"]
    session = _open(event, hidden_type, 1, code="speakers")
    assert session.discount_total == 0 and session.promo_uses == 1 and session.is_free


def test_the_database_refuses_more_uses_than_the_limit_and_an_edit_never_writes_used_back(event):
    code = make_code(event, "TWO", percent_off=10, max_uses=2)
    promo.take(code, 2)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromoCode.objects.filter(pk=code.pk).update(used=3)
    code.percent_off = 15
    code.save()  # read before the uses were taken: saving must not put used back to 0
    code.refresh_from_db()
    assert (code.used, code.percent_off) == (2, 15)


def test_bulk_codes_are_unique_single_use_and_typed_without_ambiguous_characters(event, ticket_type):
    template = PromoCode(event=event, percent_off=25)
    made = promo.create_single_use_codes(template, 300, prefix="vip-", ticket_types=[ticket_type])
    codes = [c.code for c in made]
    assert len(set(codes)) == 300 and all(c.startswith("VIP-") and len(c) == 12 for c in codes)
    assert not set("".join(c[4:] for c in codes)) & set("01OI")
    assert all(c.max_uses == 1 and c.percent_off == 25 for c in made)
    assert PromoCode.ticket_types.through.objects.filter(promocode__in=made).count() == 300
