"""The orders list and an order's page: found in a second, read like an order."""

import pytest

from checkout.models import Status
from payments.models import Payment
from tests.conftest import make_event

from .orders import make_order

pytestmark = pytest.mark.django_db
ORDERS = "/admin/checkout/checkoutsession/"


@pytest.fixture
def admin_client(client, organizer):
    client.force_login(organizer)
    return client


@pytest.fixture
def order(event):
    company, size = event.questions.all()
    return make_order(event, answers={company: "Acme", size: "M"}, codes=["ABCD-EFGH-JKLM", "NPQR-STUV-WXYZ"])


def found(client, query) -> list[str]:
    response = client.get(ORDERS, {"q": query})
    assert response.status_code == 200
    return [row.public_id for row in response.context["cl"].result_list]


def test_the_list_is_titled_orders_and_shows_money_as_people_write_it(admin_client, order, event):
    make_order(event, name="Inês Sá", email="ines@example.com", attention="paid after the hold ended: refund needed")
    html = admin_client.get(ORDERS).content.decode()
    assert "<h1>Orders</h1>" in html and "Export CSV" in html
    assert "€50.00" in html and "5000" not in html  # 2 × €25.00
    for text in ("Rui Costa", "rui@example.com", "Summit", "Completed", "Inês Sá", "Needs attention"):
        assert text in html


def test_orders_are_found_by_ticket_code_reference_email_and_name(admin_client, order, event):
    other = make_order(event, name="Inês Sá", email="ines@example.com")
    assert found(admin_client, "abcd-efgh-jklm") == [order.public_id]  # a ticket code, any case
    assert found(admin_client, "NPQR-STUV-WXYZ") == [order.public_id]  # the order's other ticket, once
    assert found(admin_client, order.public_id.lower()) == [order.public_id]
    assert found(admin_client, order.public_id.upper()) == [order.public_id]
    assert found(admin_client, "ines@") == [other.public_id]
    assert found(admin_client, "INES@Example.com") == [other.public_id]  # a whole email, any case, by its index
    assert found(admin_client, "costa") == [order.public_id]
    assert found(admin_client, "ABCD-EFGH") == []  # a code is matched whole, not guessed from a part


def test_search_finds_what_people_hold(admin_client, order, event):
    """The reference on the status page and in the email, a ticket code as it is read out, an
    email in any case, a name with or without its accents."""
    from checkout import services
    from checkout.formatting import order_reference

    reference = order_reference(order.public_id)  # "UGH-7V2"
    assert found(admin_client, reference) == [order.public_id]
    assert found(admin_client, reference.lower().replace("-", "")) == [order.public_id]
    assert found(admin_client, f" {reference.lower()} ") == [order.public_id]
    assert found(admin_client, "abcdefghjklm") == [order.public_id]  # lower case, no dashes
    assert found(admin_client, "npqr stuv wxyz") == [order.public_id]
    assert found(admin_client, "RUI@EXAMPLE.COM") == [order.public_id]

    # A name saved as the attendee types it (the service's save keeps the search key).
    other = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    services.save_attendee_details(other, name="José Ávila Conceição", email="jose@example.com", answers={})
    for typed in ("jose avila", "JOSÉ ÁVILA", "Conceicao", "ávila conceição", "avila"):
        assert found(admin_client, typed) == [other.public_id], typed
    inês = make_order(event, name="Inês Sá", email="ines@example.com")
    assert found(admin_client, "ines sa") == [inês.public_id]
    assert found(admin_client, "INÊS") == [inês.public_id]
    assert found(admin_client, "Marina") == []  # six letters, no such reference: searched as a name
    # Twelve letters a ticket code could be made of, and no such code: searched as a name.
    westerhagens = make_order(event, name="Westerhagens")
    assert found(admin_client, "westerhagens") == [westerhagens.public_id]
    assert found(admin_client, "ZZZ-999") == []


def test_another_organizations_reference_finds_nothing(admin_client, order, other_organization):
    from checkout.formatting import order_reference

    theirs = make_order(make_event(other_organization, name="Theirs"), codes=["ZZZZ-ZZZZ-ZZZZ", "YYYY-YYYY-YYYY"])
    assert found(admin_client, order_reference(theirs.public_id)) == []
    assert found(admin_client, "zzzzzzzzzzzz") == []


def test_another_organizations_ticket_code_finds_nothing(admin_client, order, other_organization):
    theirs = make_order(make_event(other_organization, name="Theirs"), codes=["ZZZZ-ZZZZ-ZZZZ", "YYYY-YYYY-YYYY"])
    assert found(admin_client, "ZZZZ-ZZZZ-ZZZZ") == []
    assert found(admin_client, theirs.public_id) == []


def test_filters_by_attention_sold_and_refunds(admin_client, order, event):
    flagged = make_order(event, attention="amount does not match")
    response = admin_client.get(ORDERS, {"attention": "yes"})
    assert [s.public_id for s in response.context["cl"].result_list] == [flagged.public_id]
    response = admin_client.get(ORDERS, {"sold": "yes", "event__id__exact": event.pk, "provider": "stripe"})
    assert {s.public_id for s in response.context["cl"].result_list} == {order.public_id, flagged.public_id}
    assert admin_client.get(ORDERS, {"refunded": "yes"}).context["cl"].result_count == 0
    assert admin_client.get(ORDERS, {"status__exact": Status.EXPIRED}).context["cl"].result_count == 0


def test_the_order_page_reads_like_an_order(admin_client, order):
    html = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    for text in ("Order " + order.public_id, "ABCD-EFGH-JKLM", "NPQR-STUV-WXYZ", "Company", "Acme", "T-shirt size",
                 "€50.00", "Payment started with Stripe", "Paid €50.00", "Completed: tickets issued",
                 "by the attendee", "by the provider&#x27;s notification",
                 'href="https://dashboard.stripe.com/payments/pi_3Abc"'):
        assert text in html, text
    # The technical fields are there, folded away; no code words, no nameless rows.
    assert "<details><summary>" in html and "Gate approved fingerprint" in html
    assert "start_payment" not in html and "object (" not in html
    assert 'name="_save"' not in html and "deletelink" not in html


def test_payment_instructions_are_shown_as_words_not_json(admin_client, event):
    order = make_order(event, provider="easypay", reference="ep-123",
                       instructions={"method": "mb", "entity": "21098", "reference": "123 456 789",
                                     "sandbox_outcome": "x"})
    html = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert "<dt>Entity</dt><dd>21098</dd>" in html and "<dt>Reference</dt><dd>123 456 789</dd>" in html
    assert "{&quot;method&quot;" not in html and "sandbox_outcome" not in html
    assert "dashboard.stripe.com" not in html  # no provider page to link to


def test_remote_text_on_the_order_page_is_escaped(admin_client, event):
    order = make_order(event, name="<script>alert(1)</script>", attention="<b>paid twice</b>")
    html = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html and "<b>paid twice" not in html


def test_payments_and_orders_cannot_be_deleted_or_edited(admin_client, order):
    payment = Payment.objects.get(session=order)
    listing = admin_client.get("/admin/payments/payment/").content.decode()
    assert "delete_selected" not in listing and "€50.00" in listing
    assert admin_client.post(f"/admin/payments/payment/{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"{ORDERS}{order.pk}/delete/", {"post": "yes"}).status_code == 403
    response = admin_client.post(ORDERS, {"action": "delete_selected", "_selected_action": [order.pk], "post": "yes"})
    assert response.status_code in (200, 302)
    assert Payment.objects.filter(pk=payment.pk).exists() and order.transitions.count() == 3
    page = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert "Payment object" not in page and "€50.00" in page


def test_every_record_page_has_a_human_title(admin_client, order, event):
    from webhooks.models import GateCall, InboundWebhook

    call = GateCall.objects.create(event=event, outcome="denied", decision="deny", status_code=403)
    inbound = InboundWebhook.objects.create(provider="stripe", organization=event.organization, event_id="evt_1",
                                            type="charge.refunded", outcome="processed", verified=True)
    payment = Payment.objects.get(session=order)
    for url in (f"/admin/webhooks/gatecall/{call.pk}/change/", f"/admin/webhooks/inboundwebhook/{inbound.pk}/change/",
                f"/admin/payments/payment/{payment.pk}/change/", f"{ORDERS}{order.pk}/change/"):
        html = admin_client.get(url).content.decode()
        assert "object (" not in html, url


def test_an_erased_attendee_is_not_found_by_name_any_more(admin_client, event, organization):
    from checkout.models import CheckoutSession
    from ievents.operations.erasure import erase_attendee

    inês = make_order(event, name="Inês Sá", email="ines@example.com")
    assert found(admin_client, "ines sa") == [inês.public_id]
    erase_attendee(organization, "ines@example.com", source="admin")
    assert found(admin_client, "ines sa") == []
    assert CheckoutSession.objects.get(pk=inês.pk).search_name == ""


# --- Issue 26: nothing on a page of the list is computed over every order of the year ------

def _list_sql(client, query=None) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(ORDERS, query or {})
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries if 'FROM "checkout_checkoutsession"' in q["sql"]]


def test_the_whole_list_counts_its_orders_once_and_adds_nothing_up(admin_client, order, event):
    sql = _list_sql(admin_client)
    # The page's count (an index-only scan) and the page's rows; no date hierarchy (its bounds
    # and distinct dates), no distinct events for the filter, no sums of the whole list.
    assert len([q for q in sql if "COUNT(" in q]) == 1, "\n".join(sql)
    assert not [q for q in sql if "DISTINCT" in q or "MIN(" in q or "SUM(" in q], "\n".join(sql)
    assert "order_totals" not in admin_client.get(ORDERS).context


def test_a_narrowed_list_shows_its_totals_counting_its_own_rows_only(admin_client, order, event):
    response = admin_client.get(ORDERS, {"event__id__exact": event.pk})
    (totals,) = response.context["order_totals"]
    assert totals.orders == response.context["cl"].result_count == 1
    sql = _list_sql(admin_client, {"event__id__exact": event.pk})
    assert len([q for q in sql if "COUNT(" in q and "GROUP BY" not in q]) == 1, "\n".join(sql)  # not the full count
    assert order.public_id in [row.public_id for row in response.context["cl"].result_list]


def test_the_event_filter_offers_the_organizations_events_only(admin_client, order, event, other_organization):
    make_event(other_organization, name="Rival Gala")
    quiet = make_event(event.organization, name="No Orders Yet")
    html = admin_client.get(ORDERS).content.decode()
    assert "Summit" in html and "No Orders Yet" in html and "Rival Gala" not in html
    assert f"?event__id__exact={quiet.pk}" in html


def test_orders_are_filtered_by_when_they_were_made(admin_client, order):
    html = admin_client.get(ORDERS).content.decode()
    assert "created_at__gte=" in html and "By Created" in html  # today, the past 7 days, this month, this year
    assert found_with(admin_client, {"created_at__gte": "2000-01-01 00:00:00+00:00"}) == [order.public_id]


def found_with(client, query) -> list[str]:
    response = client.get(ORDERS, query)
    assert response.status_code == 200
    return [row.public_id for row in response.context["cl"].result_list]
