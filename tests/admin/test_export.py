"""Export CSV: one row per ticket, what the list shows, streamed, safe in a spreadsheet."""

import csv
import io

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from checkout import admin_export
from tests.conftest import make_event

from .orders import make_order

pytestmark = pytest.mark.django_db
EXPORT = "/admin/checkout/checkoutsession/export/"


@pytest.fixture
def admin_client(client, organizer):
    client.force_login(organizer)
    return client


def read_csv(response, delimiter=",") -> list[dict]:
    """As a spreadsheet opens it: UTF-8 announced by its byte-order mark, split on ``delimiter``."""
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def test_one_row_per_ticket_with_a_column_per_question(admin_client, event):
    company, size = event.questions.all()
    order = make_order(event, answers={company: "Acme", size: "M"}, codes=["ABCD-EFGH-JKLM", "NPQR-STUV-WXYZ"])
    rows = read_csv(admin_client.get(EXPORT))
    assert [row["Ticket code"] for row in rows] == ["ABCD-EFGH-JKLM", "NPQR-STUV-WXYZ"]
    first, second = rows
    assert first["Order id"] == order.public_id and first["Status"] == "Completed"
    assert first["Order reference"] == order.public_id[-6:-3].upper() + "-" + order.public_id[-3:].upper()
    assert (first["Ticket holder"], first["Email"], first["Ticket type"]) == ("Rui Costa", "rui@example.com",
                                                                              "General")
    assert (first["Ticket price"], first["Ticket"], first["Currency"]) == ("25.00", "Valid", "EUR")
    # The order's money once, on its first row: the column sums to what the orders hold.
    assert (first["Order paid"], first["Order refunded"]) == ("50.00", "0.00")
    assert (second["Order paid"], second["Order refunded"], second["Ticket price"]) == ("", "", "25.00")
    assert (first["Company"], first["T-shirt size"]) == ("Acme", "M")
    assert first["Created"].startswith(str(order.created_at.year)) and first["Time zone"] == "Europe/Lisbon"


def test_the_export_follows_the_lists_search_and_filters(admin_client, event):
    wanted = make_order(event, email="wanted@example.com")
    make_order(event, email="other@example.com")
    flagged = make_order(event, email="flagged@example.com", attention="refund needed")
    assert {row["Order id"] for row in read_csv(admin_client.get(EXPORT, {"q": "wanted@"}))} == {wanted.public_id}
    assert {row["Order id"] for row in read_csv(admin_client.get(EXPORT, {"attention": "yes"}))} == {
        flagged.public_id}
    assert len(read_csv(admin_client.get(EXPORT))) == 6


def test_another_organizations_tickets_are_never_exported(admin_client, event, other_organization):
    theirs = make_event(other_organization, name="Theirs")
    make_order(theirs, email="theirs@example.com")
    mine = make_order(event)
    for query in ({}, {"event__id__exact": theirs.pk}, {"q": "theirs@example.com"}):
        response = admin_client.get(EXPORT, query, follow=True)
        refs = {row["Order id"] for row in read_csv(response)} if response.streaming else set()
        assert refs <= {mine.public_id}


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_cells_a_spreadsheet_would_run_are_written_as_text(admin_client, event, cell):
    company, _ = event.questions.all()
    make_order(event, name=cell, answers={company: cell})
    row = read_csv(admin_client.get(EXPORT))[0]
    for shown in (row["Ticket holder"], row["Company"]):
        assert shown.startswith("'") and shown.replace("'", "") == cell


def test_the_export_reads_orders_in_chunks_not_one_by_one(admin_client, event, monkeypatch):
    """Queries grow with the number of chunks, never with the number of orders or tickets."""
    monkeypatch.setattr(admin_export, "CHUNK_SIZE", 2)
    for _ in range(4):
        make_order(event, quantity=3)  # 4 orders, 12 tickets: 2 chunks

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            rows = read_csv(admin_client.get(EXPORT))
        return len(queries), len(rows)

    few, rows = count_queries()
    assert rows == 12
    for _ in range(4):
        make_order(event, quantity=3)
    many, rows = count_queries()
    assert rows == 24
    # The orders are one query read in chunks; each chunk reads its tickets, answers, prices and paid times.
    assert many - few == 2 * 4


def test_an_order_without_tickets_is_one_row_with_its_money(admin_client, event):
    from checkout.models import CheckoutSession

    flagged = make_order(event, quantity=1, attention="paid after cancel: refund needed")
    flagged.tickets.all().delete()
    CheckoutSession.objects.filter(pk=flagged.pk).update(status="canceled")
    (row,) = read_csv(admin_client.get(EXPORT))
    assert (row["Order id"], row["Status"], row["Ticket code"], row["Ticket"]) == (flagged.public_id, "Canceled", "",
                                                                                   "")
    assert row["Order paid"] == "25.00"


def test_a_viewer_may_export_but_not_a_stranger(client, event, organization):
    from ievents.models import Membership
    from tests.conftest import make_organizer

    make_order(event)
    viewer = make_organizer(organization, username="vera")
    Membership.objects.filter(user=viewer).update(role="viewer")
    client.force_login(viewer)
    assert len(read_csv(client.get(EXPORT))) == 2
    client.logout()
    assert client.get(EXPORT).status_code == 302  # to the login page


SEPARATORS = ",;\t|\n"


def fragments(cell: str) -> list[str]:
    """Every piece a spreadsheet could make of a cell, whichever separator it splits on."""
    pieces = [cell]
    for separator in SEPARATORS:
        pieces = [piece for whole in pieces for piece in whole.split(separator)]
    return pieces


@pytest.mark.parametrize("name", ["Ana;=2+5;x", "Ana,=2+5,x", "Ana\t+1", "Ana|@SUM(A1)", "Ana; -2+3", "Ana\n=1",
                                  "＝1+1", "Ana,\t=1", "Ana;\t\t@x", "\t=1"])
def test_a_formula_after_any_separator_is_text_too(admin_client, event, name):
    company, _ = event.questions.all()
    make_order(event, name=name, answers={company: name})
    for language, delimiter in (("en", ","), ("pt-PT", ";")):
        response = admin_client.get(EXPORT, HTTP_ACCEPT_LANGUAGE=language)
        row = read_csv(response, delimiter)[0]
        for cell in row.values():
            for piece in fragments(cell or ""):
                assert not piece.lstrip(" ").startswith(("=", "+", "-", "@", "＝")), (language, cell)
        assert row.get("Ticket holder", row.get("Titular do bilhete", "")).replace("'", "") == name


def test_portuguese_spreadsheets_get_semicolons_and_decimal_commas(admin_client, event):
    make_order(event, quantity=2)
    response = admin_client.get(EXPORT, HTTP_ACCEPT_LANGUAGE="pt-PT")
    data = b"".join(response.streaming_content)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    header, first, second = rows
    assert len(header) == len(first) == len(second) and len(header) > 10
    assert "25,00" in first and "50,00" in first  # the ticket's price, the order's paid amount
    assert "50,00" not in second  # not repeated per ticket


XLSX = "/admin/checkout/checkoutsession/export.xlsx"


def read_xlsx(response) -> list[dict]:
    """As Excel opens it (openpyxl reads the workbook back)."""
    from openpyxl import load_workbook

    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    header, *rows = list(workbook.active.iter_rows())
    return [{h.value: c for h, c in zip(header, row, strict=True)} for row in rows]


def test_the_xlsx_export_types_numbers_times_and_text(admin_client, event):
    from decimal import Decimal

    company, _ = event.questions.all()
    make_order(event, name="Ana;=2+5;x", answers={company: "=HYPERLINK(\"http://evil\")\x01"})
    first, second = read_xlsx(admin_client.get(XLSX))
    assert first["Ticket holder"].value == "Ana;=2+5;x" and first["Ticket holder"].data_type == "s"
    assert first["Company"].value == "=HYPERLINK(\"http://evil\")" and first["Company"].data_type == "s"
    assert Decimal(str(first["Ticket price"].value)) == Decimal("25") and first["Ticket price"].data_type == "n"
    assert (first["Order paid"].value, second["Order paid"].value) == (50, None)
    assert first["Created"].is_date and first["Time zone"].value == "Europe/Lisbon"


def test_the_xlsx_export_follows_the_list_and_the_tenant(admin_client, event, other_organization):
    wanted = make_order(event, email="wanted@example.com")
    make_order(event, email="other@example.com")
    make_order(make_event(other_organization, name="Theirs"), email="theirs@example.com")
    rows = read_xlsx(admin_client.get(XLSX, {"q": "wanted@example.com"}))
    assert {row["Order id"].value for row in rows} == {wanted.public_id}
    assert len(read_xlsx(admin_client.get(XLSX))) == 4
