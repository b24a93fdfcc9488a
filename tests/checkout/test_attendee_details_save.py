"""Saving the attendee's details: the answers become exactly the ones given, and the session
comes back as saved; the rows the gate judges are built from what the caller holds, as saved
(``services.rows_as_saved``).

Those rows must be the rows in the database, and nothing but the answers given may be left.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkout import services
from checkout.models import Answer, CheckoutSession
from checkout.representation import session_as_api
from ievents.models import Question
from webhooks.models import GateSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def questions(event):
    return {q.text: q for q in Question.objects.filter(event=event)}


def stored_answers(session) -> dict:
    return dict(Answer.objects.filter(session=session).values_list("question__text", "value"))


def test_answers_become_exactly_the_ones_given_added_changed_and_removed(open_session, questions):
    size, company = questions["T-shirt size"], questions["Company"]
    first = services.save_attendee_details(open_session, name=" Ana Silva ", email=" ana@example.com ",
                                           answers={size.pk: "M", company.pk: "Acme"})
    assert stored_answers(open_session) == {"T-shirt size": "M", "Company": "Acme"}
    ids = dict(Answer.objects.filter(session=open_session).values_list("question_id", "id"))

    second = services.save_attendee_details(first, name="Ana", email="ana@example.com", answers={size.pk: "L"})
    assert stored_answers(open_session) == {"T-shirt size": "L"}  # changed in place, the other removed
    assert Answer.objects.get(session=open_session).pk == ids[size.pk]

    services.save_attendee_details(second, name="Ana", email="ana@example.com", answers={})
    assert stored_answers(open_session) == {}
    row = CheckoutSession.objects.get(pk=open_session.pk)
    assert (row.customer_name, row.customer_email, row.details_version) == ("Ana", "ana@example.com", 3)
    assert row.updated_at >= row.created_at


def test_the_rows_as_saved_are_the_rows_in_the_database_and_need_no_read(open_session, questions):
    """The gate judges the rows as the save wrote them, built from what the caller holds
    (``checkout.views.attendee_form``: the line items and questions read for the form, the
    answers given), so nothing is read back; reading them back gives the same payload and
    fingerprint."""
    GateSettings.objects.create(event=open_session.event, enabled=True, url="http://127.0.0.1:9/unused")
    open_session = CheckoutSession.objects.select_related("event__gate").get(pk=open_session.pk)
    line_items = list(open_session.line_items.select_related("ticket_type"))
    size, company = questions["T-shirt size"], questions["Company"]
    services.save_attendee_details(open_session, name="Ana", email="ana@example.com",
                                   answers={size.pk: "S", company.pk: "Old"})
    answers = {size.pk: "M", company.pk: "<b>New</b>"}
    saved = services.save_attendee_details(open_session, name="Ana Silva", email="ana@example.com", answers=answers)
    with CaptureQueriesContext(connection) as queries:
        items, answered = services.rows_as_saved(line_items, questions.values(), answers)
        kept = session_as_api(saved, line_items=items, answers=answered)
        kept_fingerprint = services.details_fingerprint(saved, line_items=items, answers=answered)
    assert len(queries) == 0  # built from what the caller holds

    fresh = CheckoutSession.objects.select_related("event").get(pk=open_session.pk)
    assert kept == session_as_api(fresh) and kept_fingerprint == services.details_fingerprint(fresh)
    assert kept["answers"] == {"T-shirt size": "M", "Company": "<b>New</b>"}
    assert kept["customer"] == {"name": "Ana Silva", "email": "ana@example.com"}


@pytest.mark.parametrize("gate", [False, True])
def test_the_save_reads_nothing_back_and_a_first_save_reads_no_answers(open_session, questions, gate):
    """With a gate or without (issue 26): the lock, the session's update and the answers
    written, and nothing read to find answers a first save cannot have."""
    if gate:
        GateSettings.objects.create(event=open_session.event, enabled=True, url="http://127.0.0.1:9/unused")
        open_session = CheckoutSession.objects.select_related("event__gate").get(pk=open_session.pk)
    size = questions["T-shirt size"]
    with CaptureQueriesContext(connection) as queries:
        saved = services.save_attendee_details(open_session, name="Ana", email="ana@example.com",
                                               answers={size.pk: "S"})
    statements = [q["sql"] for q in queries.captured_queries]
    assert [sql.split()[0] for sql in statements if "checkout_answer" in sql] == ["INSERT"], statements
    assert not any("checkout_lineitem" in sql for sql in statements), statements
    assert session_as_api(saved)["answers"] == {"T-shirt size": "S"}  # read when wanted


def test_a_refused_save_changes_nothing(open_session, questions):
    services.save_attendee_details(open_session, name="Ana", email="ana@example.com",
                                   answers={questions["Company"].pk: "Acme"})
    CheckoutSession.objects.filter(pk=open_session.pk).update(status="completed")
    with pytest.raises(services.SessionNotOpen):
        services.save_attendee_details(open_session, name="Eve", email="eve@example.com", answers={})
    row = CheckoutSession.objects.get(pk=open_session.pk)
    assert (row.customer_name, row.details_version) == ("Ana", 1)
    assert stored_answers(open_session) == {"Company": "Acme"}
