"""The attendee's pages in Portuguese and English, accessible, with the event's time."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from checkout import services
from checkout.models import CheckoutSession, Status
from payments import services as payments

from .conftest import RULES, details, english, pick, portuguese

pytestmark = pytest.mark.django_db


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- Languages ---------------------------------------------------------------------------
def test_the_browsers_language_chooses_and_html_lang_follows(client, event):
    portuguese(client)
    page = page_of(client.get(pick(client, event)))
    assert '<html lang="pt-PT">' in page
    assert '<label for="id_name">Nome</label>' in page and '<label for="id_email">Email</label>' in page
    assert ">Continuar</button>" in page and "50,00 €" in page
    assert "3 de janeiro de 2027, 20:00 WET" in page and "Coliseu dos Recreios, Lisboa" in page
    # The organizer's own words are shown as written.
    assert '>Company</label>' in page and f">{RULES}</label>".replace("'", "&#x27;") in page

    english(client)
    page = page_of(client.get(event.get_absolute_url()))
    assert '<html lang="en">' in page and "€25.00" in page and "3 January 2027, 20:00 WET" in page


def test_the_switcher_overrides_the_browser_and_is_remembered(client, event):
    english(client)
    url = event.get_absolute_url()
    response = client.post("/i18n/setlang/", {"language": "pt-pt", "next": url})
    assert response.status_code == 302 and response["Location"] == url
    page = page_of(client.get(url))  # the browser still asks for English
    assert '<html lang="pt-PT">' in page and "Obter bilhetes" in page
    assert 'name="language" value="en"' in page  # and offers the way back


def test_the_switcher_never_sends_the_attendee_to_another_site(client, event):
    response = client.post("/i18n/setlang/", {"language": "pt-pt", "next": "https://evil.example/phish"})
    assert response.status_code == 302 and "evil.example" not in response["Location"]


def test_the_gates_default_messages_are_translated_and_the_organizers_are_not(client, event):
    from tests.servers import refused_url
    from webhooks.models import GateSettings

    gate = GateSettings.objects.create(event=event, enabled=True, url=refused_url(), timeout_ms=500)
    portuguese(client)
    form_url = pick(client, event)
    page = page_of(client.post(form_url, details(event)))
    assert re.search(r'role="alert"[^>]*>Não conseguimos verificar a sua compra neste momento', page)

    gate.error_message = "Volte mais tarde, por favor."
    gate.save(update_fields=["error_message"])
    page = page_of(client.post(form_url, details(event)))
    assert re.search(r'role="alert"[^>]*>Volte mais tarde, por favor.</div>', page)


# --- Form errors -------------------------------------------------------------------------
def test_form_errors_are_summarised_linked_to_their_fields_and_named_in_the_title(client, event):
    english(client)
    page = page_of(client.post(pick(client, event), details(event, name="", email="not-an-email", **{
        f"q_{event.questions.get(text=RULES).pk}": None})))
    assert re.search(r"<title>Error: Your details", page)
    summary = re.search(r'<div class="error-summary" id="error-summary" role="alert" tabindex="-1"[^>]*>(.*?)</div>',
                        page, re.S)
    assert summary, "no error summary"
    linked = re.findall(r'<a href="#(id_\w+)">', summary.group(1))
    assert linked == ["id_name", "id_email", f"id_q_{event.questions.get(text=RULES).pk}"]
    described = re.findall(r'aria-describedby="([^"]+)"', page)
    assert described and all(f'id="{target}"' in page for ids in described for target in ids.split())
    for field_id in linked:
        assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="{field_id}"', page)


def test_a_tick_box_reads_box_label_then_error(client, event):
    english(client)
    rules = event.questions.get(text=RULES)
    page = page_of(client.post(pick(client, event), details(event, **{f"q_{rules.pk}": None})))
    box = page.index(f'id="id_q_{rules.pk}"')
    label = page.index(f'<label for="id_q_{rules.pk}">')
    error = page.index(f'id="id_q_{rules.pk}_error"')
    assert box < label < error


def test_portuguese_errors_are_in_portuguese(client, event):
    portuguese(client)
    page = page_of(client.post(pick(client, event), details(event, name="")))
    assert "<title>Erro: Os seus dados" in page and "Há um problema" in page and "Este campo é obrigatório." in page


# --- Time and the hold ---------------------------------------------------------------------
def test_the_hold_shows_the_minutes_left_and_its_end_in_the_events_zone(client, event, settings):
    english(client)
    event.timezone = "America/New_York"
    event.save(update_fields=["timezone"])
    page = page_of(client.get(pick(client, event)))
    session = CheckoutSession.objects.get()
    until = session.expires_at.astimezone(ZoneInfo("America/New_York"))
    minutes = settings.CHECKOUT_HOLD_MINUTES
    assert f"{minutes} more minutes</strong> (until {until:%H:%M} {until.tzname()})" in page
    assert "3 January 2027, 15:00 EST" in page
    assert "UTC" not in page


def test_an_expired_hold_keeps_what_the_attendee_typed_when_they_start_again(client, event):
    english(client)
    form_url = pick(client, event, quantity=3)
    typed = details(event, **{f"q_{event.questions.get(text=RULES).pk}": None})  # one answer still missing
    client.post(form_url, typed)
    first = CheckoutSession.objects.get()
    services.expire_session(first.pk)

    status = page_of(client.get(f"/c/{first.public_id}/status/"))
    assert "This checkout has expired" in status and "<title>Error:" in status
    assert f'action="/c/{first.public_id}/again/"' in status
    assert client.post(f"/c/{first.public_id}/again/")["Location"] == event.get_absolute_url()
    event_page = page_of(client.get(event.get_absolute_url()))
    assert re.search(r'name="qty_\w+" value="3"', event_page)  # the same tickets, chosen again
    assert "€75.00" in event_page  # the running total of them
    page = page_of(client.get(pick(client, event, quantity=3)))
    assert 'value="Ana Silva"' in page and 'value="ana@example.com"' in page and 'value="Acme"' in page
    assert '<option value="M" selected>' in page


def test_start_again_from_an_expired_form_keeps_the_typed_details(client, event):
    english(client)
    form_url = pick(client, event)
    session = CheckoutSession.objects.get()
    CheckoutSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = page_of(client.get(form_url))
    assert "Your ticket hold has expired" in page and "<div class=\"hold-restart\" >" in page
    response = client.post(f"/c/{session.public_id}/again/", details(event, name="Rui Costa"))
    assert response["Location"] == event.get_absolute_url()
    assert 'value="Rui Costa"' in page_of(client.get(pick(client, event)))


# --- Clarity -------------------------------------------------------------------------------
def test_pay_says_how_much_and_a_failed_payment_is_explained_on_the_retry_page(client, event):
    portuguese(client)
    form_url = pick(client, event)
    review_url = client.post(form_url, details(event))["Location"]
    review = page_of(client.get(review_url))
    assert ">Pagar 50,00 €</button>" in review and "3 de janeiro de 2027, 20:00 WET" in review
    assert f"<dt>{RULES}</dt><dd>Sim</dd>".replace("'", "&#x27;") in review  # our "yes", in their language
    assert "último pagamento" not in review
    sandbox = client.post(review_url, {"provider": "sandbox"})["Location"]
    assert "Simular falha" in page_of(client.get(sandbox))
    client.get(client.post(sandbox, {"outcome": "failure"})["Location"])
    session = CheckoutSession.objects.get()
    assert session.status == Status.REJECTED
    review = page_of(client.get(review_url))
    assert re.search(r'role="alert">O seu último pagamento não foi concluído', review)


def test_cancelling_asks_first_then_says_it_was_done(client, event):
    english(client)
    pick(client, event)
    session = CheckoutSession.objects.get()
    question = page_of(client.get(f"/c/{session.public_id}/cancel/"))
    assert "Cancel this order?" in question and "Yes, cancel my order" in question
    session.refresh_from_db()
    assert session.status == Status.OPEN  # asking changed nothing
    response = client.post(f"/c/{session.public_id}/cancel/", follow=True)
    assert "Your order was canceled and its tickets were released" in page_of(response)
    session.refresh_from_db()
    assert session.status == Status.CANCELED


def test_a_pending_payment_updates_politely_without_a_meta_refresh(client, event):
    english(client)
    session = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    session = services.save_attendee_details(session, name="Ana", email="ana@example.com", answers={})
    payments.begin_payment(session, "sandbox")
    page = page_of(client.get(f"/c/{session.public_id}/status/"))
    assert "http-equiv" not in page
    assert re.search(r'<div id="order-status" aria-live="polite" data-poll="/c/\w+/status/\?live=1">', page)
    live = page_of(client.get(f"/c/{session.public_id}/status/?live=1"))
    assert "<html" not in live and 'data-status="payment_pending"' in live and "data-final" not in live


def test_the_tickets_page_shows_a_qr_code_per_ticket_a_calendar_link_and_both_references(client, event,
                                                                                           completed):
    english(client)
    session = completed(client)
    page = page_of(client.get(f"/c/{session.public_id}/status/"))
    codes = [t.code for t in session.tickets.all()]
    assert page.count('<svg role="img" aria-label="QR code"') == len(codes) == 2
    assert all(page.count(code) == 1 for code in codes)  # each code said once, beside its picture
    assert f'href="/c/{session.public_id}/calendar.ics"' in page
    reference = session.public_id[-6:].upper()
    assert f"{reference[:3]}-{reference[3:]}" in page and session.public_id in page


def test_the_calendar_file_is_a_valid_vcalendar_in_utc(client, event, completed):
    event.name = "Fado; Jazz, and more"
    event.save(update_fields=["name"])
    session = completed(client)
    response = client.get(f"/c/{session.public_id}/calendar.ics")
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = response.content.decode()
    assert body.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert "\r\nDTSTART:20270103T200000Z\r\n" in body
    assert "\r\nSUMMARY:Fado\\; Jazz\\, and more\r\n" in body
    assert "\r\nLOCATION:Coliseu dos Recreios\\, Lisboa\r\n" in body
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))


# --- Hostile input on the new routes ---------------------------------------------------------
@pytest.mark.parametrize("route", ["/c/{}/again/", "/c/{}/calendar.ics", "/c/{}/status/?live=1", "/c/{}/cancel/"])
def test_an_unknown_order_is_a_404_on_the_new_routes(client, route):
    assert client.post(route.format("cs_doesnotexist")).status_code in (404, 405)
    assert client.get(route.format("cs_doesnotexist")).status_code in (404, 405)


@pytest.mark.parametrize("junk", ["", "\u202e\ufeff", "<script>alert(1)</script>", "💳" * 3000, "' OR 1=1 --"])
def test_starting_again_with_junk_keeps_it_as_text_and_never_fails(client, event, junk):
    english(client)
    pick(client, event)
    session = CheckoutSession.objects.get()
    rules = event.questions.get(text=RULES)
    response = client.post(f"/c/{session.public_id}/again/", {"name": junk, "email": junk, f"q_{rules.pk}": junk,
                                                              "q_999999": junk, "unrelated": junk})
    assert response.status_code == 302
    page = page_of(client.get(pick(client, event)))
    assert "<script>alert(1)</script>" not in page and "q_999999" not in page
    kept = client.session[f"checkout_details:{event.public_id}"]
    assert {"name", "email"} <= set(kept) <= {"name", "email", *(f"q_{q.pk}" for q in event.questions.all())}
    assert all(len(value) <= 1000 for value in kept.values() if isinstance(value, str))
