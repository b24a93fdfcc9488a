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


def read_csv(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_one_row_per_ticket_with_a_column_per_question(admin_client, event):
    company, size = event.questions.all()
    order = make_order(event, answers={company: "Acme", size: "M"}, codes=["ABCD-EFGH-JKLM", "NPQR-STUV-WXYZ"])
    rows = read_csv(admin_client.get(EXPORT))
    assert [row["Ticket code"] for row in rows] == ["ABCD-EFGH-JKLM", "NPQR-STUV-WXYZ"]
    first = rows[0]
    assert first["Order reference"] == order.public_id and first["Status"] == "Completed"
    assert (first["Name"], first["Email"], first["Ticket type"]) == ("Rui Costa", "rui@example.com", "General")
    assert (first["Price"], first["Paid"], first["Currency"]) == ("25.00", "50.00", "EUR")
    assert (first["Company"], first["T-shirt size"]) == ("Acme", "M")
    assert first["Created"].startswith(str(order.created_at.year))


def test_the_export_follows_the_lists_search_and_filters(admin_client, event):
    wanted = make_order(event, email="wanted@example.com")
    make_order(event, email="other@example.com")
    flagged = make_order(event, email="flagged@example.com", attention="refund needed")
    assert {row["Order reference"] for row in read_csv(admin_client.get(EXPORT, {"q": "wanted@"}))} == {wanted.public_id}
    assert {row["Order reference"] for row in read_csv(admin_client.get(EXPORT, {"attention": "yes"}))} == {
        flagged.public_id}
    assert len(read_csv(admin_client.get(EXPORT))) == 6


def test_another_organizations_tickets_are_never_exported(admin_client, event, other_organization):
    theirs = make_event(other_organization, name="Theirs")
    make_order(theirs, email="theirs@example.com")
    mine = make_order(event)
    for query in ({}, {"event__id__exact": theirs.pk}, {"q": "theirs@example.com"}):
        response = admin_client.get(EXPORT, query, follow=True)
        refs = {row["Order reference"] for row in read_csv(response)} if response.streaming else set()
        assert refs <= {mine.public_id}


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_cells_a_spreadsheet_would_run_are_written_as_text(admin_client, event, cell):
    company, _ = event.questions.all()
    make_order(event, name=cell, answers={company: cell})
    row = read_csv(admin_client.get(EXPORT))[0]
    assert row["Name"] == "'" + cell and row["Company"] == "'" + cell


def test_the_export_reads_tickets_in_chunks_not_one_by_one(admin_client, event, monkeypatch):
    """Queries grow with the number of chunks, never with the number of tickets."""
    monkeypatch.setattr(admin_export, "CHUNK_SIZE", 4)
    for _ in range(3):
        make_order(event, quantity=4)  # 12 tickets: 3 chunks

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            rows = read_csv(admin_client.get(EXPORT))
        return len(queries), len(rows)

    few, rows = count_queries()
    assert rows == 12
    for _ in range(3):
        make_order(event, quantity=4)
    many, rows = count_queries()
    assert rows == 24
    # The tickets are one query read in chunks; each chunk reads its answers and prices.
    assert many - few == 3 * 2


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
