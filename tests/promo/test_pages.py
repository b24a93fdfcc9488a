"""Promo codes on the attendee's pages: the field, ``?code=``, what a code does shown before
anything is bought, refusals said plainly, and guessing slowed down."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checkout.models import CheckoutSession, PromoCodeFailure
from ievents.models import TicketType

from .conftest import make_code

pytestmark = pytest.mark.django_db
ATTENDEE = "198.51.100.7"  # not exempt from the limits, as 127.0.0.1 is in development


def _alerts(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).strip()
            for text in re.findall(r'role="alert">(.*?)</div>', html, re.S)]


def test_the_event_page_has_a_labelled_promo_code_field_filled_in_by_the_link(client, event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(price=1850)
    make_code(event, "MEMBERS20", percent_off=20)
    page = client.get(event.get_absolute_url()).content.decode()
    assert '<label id="promo-code-label" for="id_code">Promo code</label>' in page
    page = client.get(event.get_absolute_url() + "?code=members20", REMOTE_ADDR=ATTENDEE).content.decode()
    assert 'name="code" id="id_code" value="members20"' in page
    assert "<s><span class=\"sr-only\">Was </span>€18.50</s> <strong class=\"offer-price\">€14.80</strong>" in page
    assert 'data-price="1480"' in page and "Code MEMBERS20 applied" in page
    assert not _alerts(page)


def test_in_portuguese_the_field_and_the_prices_are_written_as_in_portugal(client, event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(price=1850)
    make_code(event, "MEMBERS20", percent_off=20)
    page = client.get(event.get_absolute_url() + "?code=members20", HTTP_ACCEPT_LANGUAGE="pt-PT",
                      REMOTE_ADDR=ATTENDEE).content.decode()
    assert ">Código promocional</label>" in page and "14,80 €" in page and "18,50 €" in page


def test_buying_with_the_code_opens_the_order_at_the_discounted_price_and_the_summary_shows_it(
        client, event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(price=1850)
    make_code(event, "MEMBERS20", percent_off=20)
    response = client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": 2, "code": "MEMBERS20"},
                           REMOTE_ADDR=ATTENDEE)
    assert response.status_code == 302
    session = CheckoutSession.objects.get()
    assert (session.amount_total, session.discount_total, session.promo_code_text) == (2960, 740, "MEMBERS20")
    summary = re.sub(r"\s*\n\s*", "", client.get(response["Location"]).content.decode())
    assert "<s><span class=\"sr-only\">Was </span>€37.00</s> €29.60" in summary
    assert "Promo code MEMBERS20" in summary and "−€7.40" in summary


def test_an_access_code_shows_the_hidden_ticket_type_and_sells_it(client, event, hidden_type):
    make_code(event, "SPEAKERS", reveals=[hidden_type])
    assert "Speaker" not in client.get(event.get_absolute_url()).content.decode()
    page = client.get(event.get_absolute_url() + "?code=speakers", REMOTE_ADDR=ATTENDEE).content.decode()
    assert "Speaker" in page and "Unlocked by your code" in page
    # Posting the hidden type without the code: refused, nothing held.
    response = client.post(event.get_absolute_url(), {f"qty_{hidden_type.public_id}": 1}, REMOTE_ADDR=ATTENDEE)
    assert response.status_code == 200 and not CheckoutSession.objects.exists()
    response = client.post(event.get_absolute_url(), {f"qty_{hidden_type.public_id}": 1, "code": "speakers"},
                           REMOTE_ADDR=ATTENDEE)
    assert response.status_code == 302 and CheckoutSession.objects.get().line_items.get().ticket_type == hidden_type


@pytest.mark.parametrize(("typed", "fields", "english", "portuguese"), [
    ("nope", None, "There is no promo code “NOPE” for this event.", "Não existe o código promocional “NOPE”"),
    ("late", {"valid_until": timezone.now() - timedelta(hours=1)}, "The promo code “LATE” has expired.",
     "O código promocional “LATE” expirou."),
    ("late", {"max_uses": 0}, "The promo code “LATE” has been used up.",
     "O código promocional “LATE” já foi totalmente utilizado."),
])
def test_a_wrong_expired_or_used_up_code_says_so_in_an_alert_in_both_languages_and_holds_nothing(
        client, event, ticket_type, typed, fields, english, portuguese):
    if fields is not None:
        make_code(event, "LATE", percent_off=10, **fields)
    url = event.get_absolute_url()
    page = client.get(f"{url}?code={typed}", REMOTE_ADDR=ATTENDEE).content.decode()
    assert any(english in alert for alert in _alerts(page))
    page = client.get(f"{url}?code={typed}", REMOTE_ADDR=ATTENDEE, HTTP_ACCEPT_LANGUAGE="pt-PT").content.decode()
    assert any(portuguese in alert for alert in _alerts(page))
    response = client.post(url, {f"qty_{ticket_type.public_id}": 1, "code": typed}, REMOTE_ADDR=ATTENDEE)
    assert response.status_code == 200 and any(english in alert for alert in _alerts(response.content.decode()))
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0 and not CheckoutSession.objects.exists()


def test_typed_code_is_shown_escaped(client, event):
    page = client.get(event.get_absolute_url() + "?code=<script>alert(1)</script>", REMOTE_ADDR=ATTENDEE)
    assert "<script>alert(1)" not in page.content.decode() and "&lt;SCRIPT&gt;" in page.content.decode()


def test_a_wrong_and_an_expired_code_take_the_same_statements(client, event):
    """Timing is not asserted with a clock (tests must not); the same path is: the same SQL
    statements, in the same order, for a code that does not exist and one that expired."""
    make_code(event, "EXPIRED", percent_off=10, valid_until=timezone.now() - timedelta(days=1))

    def statements(typed):
        with CaptureQueriesContext(connection) as ctx:
            client.get(event.get_absolute_url() + f"?code={typed}", REMOTE_ADDR=ATTENDEE)
        return [re.sub(r"'[^']*'|\b\d+\b", "?", q["sql"]) for q in ctx.captured_queries]

    client.get(event.get_absolute_url() + "?code=warmup", REMOTE_ADDR=ATTENDEE)
    assert statements("NOTACODE") == statements("EXPIRED")


def test_guessing_codes_is_limited_per_address_and_per_event(client, event, settings):
    settings.PROMO_CODE_MAX_FAILURES_PER_ADDRESS = 3
    settings.PROMO_CODE_MAX_FAILURES_PER_EVENT = 5
    make_code(event, "REAL", percent_off=10)
    url = event.get_absolute_url()
    for n in range(3):
        assert client.get(f"{url}?code=guess{n}", REMOTE_ADDR=ATTENDEE).status_code == 200
    response = client.get(f"{url}?code=real", REMOTE_ADDR=ATTENDEE)  # even the right one, until the wait is over
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert any("Too many codes that do not work" in alert for alert in _alerts(response.content.decode()))
    assert PromoCodeFailure.objects.count() == 3  # the refused try is not counted again
    # Another address may still try, until the event's cap for everyone is reached.
    assert client.get(f"{url}?code=real", REMOTE_ADDR="203.0.113.9").status_code == 200
    for n in range(2):
        client.get(f"{url}?code=other{n}", REMOTE_ADDR="203.0.113.9")
    assert client.get(f"{url}?code=real", REMOTE_ADDR="192.0.2.44").status_code == 429
    # The window moves on.
    PromoCodeFailure.objects.update(at=timezone.now() - timedelta(hours=1))
    assert client.get(f"{url}?code=real", REMOTE_ADDR=ATTENDEE).status_code == 200


def test_starting_again_after_the_hold_ended_keeps_the_code(client, event, ticket_type):
    make_code(event, "MEMBERS20", percent_off=20)
    client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": 1, "code": "members20"},
                REMOTE_ADDR=ATTENDEE)
    session = CheckoutSession.objects.get()
    response = client.post(f"/c/{session.public_id}/again/")
    assert response["Location"] == event.get_absolute_url() + "?code=MEMBERS20"


def test_codes_that_did_not_work_are_forgotten_by_the_retention_pass(client, event):
    from ievents.operations import retention

    client.get(event.get_absolute_url() + "?code=nope", REMOTE_ADDR=ATTENDEE)
    assert PromoCodeFailure.objects.count() == 1
    retention.prune()
    assert PromoCodeFailure.objects.count() == 1  # within the day: still counted
    retention.prune(now=timezone.now() + timedelta(days=2))
    assert not PromoCodeFailure.objects.exists()
