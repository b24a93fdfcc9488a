"""The attendee pages, fed random and adversarial forms, query strings and ids.

Pages: the event page (ticket selection), the attendee form, review/pay, the sandbox
provider's page, the return page, the status page and cancel. Invariants: never a 5xx; a
bad form is re-rendered (200) with an error and changes nothing (``state_fingerprint``);
what is accepted is exactly what was valid; an id that does not exist is a 404.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from checkout.models import CheckoutSession, Status
from payments.models import Payment
from payments.sandbox import OUTCOME_KEY

from .conftest import FUZZ, state_fingerprint

pytestmark = pytest.mark.django_db

hostile_text = st.one_of(
    st.text(max_size=80),
    st.text(min_size=900, max_size=1500),
    st.sampled_from(["", " ", "\x00", "a\x00b", "<script>alert(1)</script>", "💳" * 300, "\u202e\ufeff", "' OR 1=1 --",
                     "x" * 5000, "ana@example.com", "ANA@EXAMPLE.COM ", "ana@exa\x00mple.com", "a@b", "@", "a" * 250 + "@x.pt"]),
)
quantities = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.integers(min_value=-2, max_value=12).map(str),
    st.sampled_from(["", " 3 ", "1.5", "1e3", "0x10", "NaN", "-0", "٣", "³", "1\x00", "9" * 400, "2,5", "+2"]),
    hostile_text,
)
ids = st.text(alphabet=st.characters(blacklist_characters="/?#", blacklist_categories=("Cs",)), min_size=1, max_size=300)


def shows_an_error(response) -> bool:
    return b'class="error"' in response.content or b'role="alert"' in response.content


# --- Event page: ticket selection ---------------------------------------------------------------
@FUZZ
@given(qty=quantities, extra=st.dictionaries(st.text(max_size=30), hostile_text, max_size=4), wrong_name=st.booleans())
def test_any_ticket_selection_reserves_exactly_a_valid_quantity_or_nothing(client, mine, qty, extra, wrong_name):
    tt = mine.ticket_type
    before = state_fingerprint()
    sessions_before = set(CheckoutSession.objects.values_list("pk", flat=True))
    reserved_before = type(tt).objects.get(pk=tt.pk).reserved
    field = f"qty_{tt.public_id}" + ("x" if wrong_name else "")
    data = {**{k: v for k, v in extra.items() if not k.startswith("qty_")}, field: qty}
    response = client.post(mine.event.get_absolute_url(), data)
    assert response.status_code in (200, 302), response.status_code
    reserved_after = type(tt).objects.get(pk=tt.pk).reserved
    if response.status_code == 302:
        assert re.fullmatch(r"/c/cs_[A-Za-z0-9]+/", response["Location"]), response["Location"]
        (new,) = set(CheckoutSession.objects.values_list("pk", flat=True)) - sessions_before
        wanted = int(qty.strip())  # Django's IntegerField strips; the value must have been valid
        assert not wrong_name and 1 <= wanted <= tt.max_per_order
        assert reserved_after - reserved_before == wanted
        assert CheckoutSession.objects.get(pk=new).line_items.get().quantity == wanted
    else:
        assert state_fingerprint() == before
        assert shows_an_error(response)


@FUZZ
@given(query=st.dictionaries(st.text(max_size=20), hostile_text, max_size=5))
def test_the_event_page_renders_whatever_the_query_string(client, mine, query):
    response = client.get(mine.event.get_absolute_url(), query)
    assert response.status_code in (200, 400)  # 400: a NUL byte in the query string


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/xml", "multipart/form-data"])
def test_a_ticket_selection_in_the_wrong_content_type_is_rerendered_and_reserves_nothing(client, mine, content_type):
    before = state_fingerprint()
    body = b'{"qty_%s": 2}' % mine.ticket_type.public_id.encode()
    if content_type == "multipart/form-data":
        content_type += "; boundary=nothing-matches"
    response = client.generic("POST", mine.event.get_absolute_url(), body, content_type=content_type)
    assert response.status_code in (200, 400)
    assert state_fingerprint() == before


def test_a_body_over_the_upload_limit_is_400_and_reserves_nothing(client, mine, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = state_fingerprint()
    response = client.post(mine.event.get_absolute_url(),
                           {f"qty_{mine.ticket_type.public_id}": "1", "padding": "x" * 20_000})
    assert response.status_code == 400
    too_many = {f"f{i}": "1" for i in range(1200)} | {f"qty_{mine.ticket_type.public_id}": "1"}
    assert client.post(mine.event.get_absolute_url(), too_many).status_code == 400
    assert state_fingerprint() == before


def test_a_cross_site_post_without_the_csrf_token_is_refused(mine):
    client = Client(enforce_csrf_checks=True)
    before = state_fingerprint()
    session = mine.open_session
    assert client.post(mine.event.get_absolute_url(), {f"qty_{mine.ticket_type.public_id}": "1"}).status_code == 403
    assert client.post(f"/c/{session.public_id}/cancel/").status_code == 403
    assert client.post(f"/c/{session.public_id}/", {"name": "Mallory", "email": "m@example.com"}).status_code == 403
    assert state_fingerprint() == before


# --- Attendee form --------------------------------------------------------------------------------
@FUZZ
@given(name=hostile_text, email=hostile_text, company=hostile_text, size=hostile_text,
       extra=st.dictionaries(st.text(max_size=20), hostile_text, max_size=3))
def test_any_attendee_form_is_saved_only_when_valid(client, mine, name, email, company, size, extra):
    session = mine.open_session
    company_q, size_q = mine.event.questions.order_by("position")
    before = state_fingerprint()
    data = {**extra, "name": name, "email": email, f"q_{company_q.pk}": company, f"q_{size_q.pk}": size}
    response = client.post(f"/c/{session.public_id}/", data)
    assert response.status_code in (200, 302)
    session.refresh_from_db()
    if response.status_code == 302:
        assert response["Location"] == f"/c/{session.public_id}/review/"
        assert "\x00" not in name + email + company + size
        assert session.customer_name == name.strip() and session.customer_email == email.strip()
        assert size in ("S", "M", "L") and len(name.strip()) <= 200 and len(company.strip()) <= 1000
    else:
        assert state_fingerprint() == before
        assert shows_an_error(response)


def test_an_attendee_form_on_a_paid_session_changes_nothing(client, mine):
    session, _ = mine.pending["sandbox"]
    from checkout import services
    from checkout.models import Source

    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                      source=Source.PROVIDER_WEBHOOK)
    before = state_fingerprint()
    response = client.post(f"/c/{session.public_id}/", {"name": "Changed", "email": "changed@example.com"})
    assert response.status_code == 302 and response["Location"].endswith("/status/")
    assert state_fingerprint() == before


# --- Review / pay ------------------------------------------------------------------------------------
@pytest.fixture
def approved(mine):
    """Mine's open session with valid details, offered only the sandbox (no network)."""
    mine.event.payment_providers = ["sandbox"]
    mine.event.save(update_fields=["payment_providers"])
    session = mine.open_session
    from checkout import services

    size_q = mine.event.questions.get(kind="choice")
    services.save_attendee_details(session, name="Ana", email="ana@example.com", answers={size_q.pk: "M"})
    return session


@FUZZ
@given(provider=st.one_of(hostile_text, st.sampled_from(["sandbox", "stripe", "easypay", "ifthenpay", "SANDBOX"])),
       phone=hostile_text)
def test_review_starts_a_payment_only_with_an_offered_provider(client, mine, approved, provider, phone):
    before = state_fingerprint()
    payments_before = Payment.objects.filter(session=approved).count()
    response = client.post(f"/c/{approved.public_id}/review/", {"provider": provider, "phone": phone})
    assert response.status_code in (200, 302)
    phone_ok = "\x00" not in phone and len(phone.strip()) <= 20
    if provider != "sandbox" or not phone_ok:
        assert response.status_code == 200 and shows_an_error(response)
        assert state_fingerprint() == before
    else:
        assert response.status_code == 302
        assert Payment.objects.filter(session=approved).count() in (payments_before, payments_before + 1)
        assert CheckoutSession.objects.get(pk=approved.pk).status == Status.PAYMENT_PENDING


def test_review_without_details_sends_the_attendee_back_and_changes_nothing(client, mine):
    from checkout import services

    session = services.create_session(mine.event, [services.Item(mine.ticket_type, 1)])  # no email: no approval
    before = state_fingerprint()
    response = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    assert response.status_code == 302 and response["Location"] == f"/c/{session.public_id}/"
    assert state_fingerprint() == before


# --- Sandbox page, return, status, cancel ------------------------------------------------------------
@FUZZ
@given(outcome=st.one_of(hostile_text, st.sampled_from(["success", "failure", "Success", "success\x00"])),
       extra=st.dictionaries(st.text(max_size=20), hostile_text, max_size=3))
def test_the_sandbox_page_records_only_a_known_outcome_and_only_once(client, mine, outcome, extra):
    _, payment = mine.pending["sandbox"]
    payment.refresh_from_db()
    had = payment.instructions.get(OUTCOME_KEY)
    response = client.post(f"/sandbox/pay/{payment.public_id}/", {**extra, "outcome": outcome})
    assert response.status_code == 302
    payment.refresh_from_db()
    expected = had or (outcome if outcome in ("success", "failure") else None)
    assert payment.instructions.get(OUTCOME_KEY) == expected


@FUZZ
@given(payment_id=hostile_text, extra=st.dictionaries(st.text(max_size=20), hostile_text, max_size=3))
def test_the_return_page_with_any_payment_parameter_changes_nothing_it_should_not(client, mine, payment_id, extra):
    session, payment = mine.pending["sandbox"]  # no outcome chosen: confirming changes nothing
    before = state_fingerprint()
    response = client.get(f"/c/{session.public_id}/return/", {**extra, "payment": payment_id})
    assert response.status_code in (302, 400)
    assert state_fingerprint() == before


def test_a_payment_id_of_another_session_does_not_confirm_on_this_sessions_return_page(client, mine):
    session, _ = mine.pending["stripe"]
    sandbox_session, sandbox_payment = mine.pending["sandbox"]
    client.post(f"/sandbox/pay/{sandbox_payment.public_id}/", {"outcome": "success"})
    before = state_fingerprint()
    response = client.get(f"/c/{session.public_id}/return/", {"payment": sandbox_payment.public_id})
    assert response.status_code == 302
    assert state_fingerprint() == before
    # The control: on its own session's page the same payment is confirmed.
    client.get(f"/c/{sandbox_session.public_id}/return/", {"payment": sandbox_payment.public_id})
    sandbox_session.refresh_from_db()
    assert sandbox_session.status in (Status.PAID, Status.COMPLETED)


@FUZZ
@given(query=st.dictionaries(st.text(max_size=20), hostile_text, max_size=4))
def test_the_status_page_renders_whatever_the_query_string(client, mine, query):
    session, _ = mine.pending["stripe"]
    before = state_fingerprint()
    response = client.get(f"/c/{session.public_id}/status/", query)
    assert response.status_code in (200, 400)
    assert state_fingerprint() == before


def test_only_a_posted_cancel_cancels_and_a_second_cancel_changes_nothing(client, mine):
    session = mine.open_session
    before = state_fingerprint()
    assert client.get(f"/c/{session.public_id}/cancel/").status_code == 200  # the confirmation question
    assert state_fingerprint() == before
    assert client.post(f"/c/{session.public_id}/cancel/").status_code == 302
    after_first = state_fingerprint()
    assert client.post(f"/c/{session.public_id}/cancel/").status_code == 302
    assert state_fingerprint() == after_first


ROUTES = ["/e/{}/", "/c/{}/", "/c/{}/review/", "/c/{}/return/", "/c/{}/status/", "/sandbox/pay/{}/"]


@FUZZ
@given(raw=ids, route=st.sampled_from(ROUTES + ["/c/{}/cancel/"]), method=st.sampled_from(["GET", "POST"]))
def test_an_id_that_does_not_exist_is_a_404_on_every_page(client, mine, raw, route, method):
    before = state_fingerprint()
    path = route.format(quote(raw, safe=""))
    response = client.get(path) if method == "GET" else client.post(path, {"name": "x"})
    if route.endswith("cancel/") and method == "GET":
        assert response.status_code in (404, 405)
    else:
        assert response.status_code == 404, (path, response.status_code)
    assert state_fingerprint() == before


def test_an_unpublished_event_is_a_404_and_cannot_be_bought(client, mine):
    mine.event.published = False
    mine.event.save(update_fields=["published"])
    before = state_fingerprint()
    assert client.get(mine.event.get_absolute_url()).status_code == 404
    assert client.post(mine.event.get_absolute_url(), {f"qty_{mine.ticket_type.public_id}": "1"}).status_code == 404
    assert state_fingerprint() == before
