"""The ticket email is a receipt with one QR code per ticket, readable by a QR reader."""

import io
from email.mime.image import MIMEImage

import pytest
import zxingcpp
from django.core import mail
from PIL import Image

from checkout import tickets

from .conftest import english, portuguese

pytestmark = pytest.mark.django_db


def decoded(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_email_is_a_receipt_with_html_plain_text_and_a_qr_code_per_ticket(client, event, completed):
    english(client)
    session = completed(client)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    codes = [t.code for t in session.tickets.all()]
    reference = f"{session.public_id[-6:-3].upper()}-{session.public_id[-3:].upper()}"

    text = email.body
    for expected in ("Hello Ana Silva", "Summit", "3 January 2027, 20:00 WET", "Coliseu dos Recreios, Lisboa",
                     "€50.00 (Test payment, no money moved)", reference, "Organizer: Acme Events", *codes):
        assert expected in text, expected
    # A Sandbox payment is no card, and the attendee reads the reference, never the internal id.
    assert "(Card)" not in text and session.public_id not in text
    assert email.subject == "Your tickets for Summit"

    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html" and '<html lang="en">' in html
    images = [part for part in email.attachments if isinstance(part, MIMEImage)]
    assert len(images) == len(codes)
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        [code] = decoded(image.get_payload(decode=True))
        assert code in codes and cid == f"qr-{code}@ievents"
    assert sorted(decoded(image.get_payload(decode=True))[0] for image in images) == sorted(codes)
    calendars = [a for a in email.attachments if not isinstance(a, MIMEImage)]
    # A readable name; the end is the start plus the event's duration (two hours by default).
    assert calendars[0][0] == f"summit-{reference}.ics"
    assert "DTSTART:20270103T200000Z" in calendars[0][1] and "DTEND:20270103T220000Z" in calendars[0][1]
    assert session.public_id not in html


def test_the_email_is_written_in_the_attendees_language(client, event, completed):
    portuguese(client)
    completed(client)
    email = mail.outbox[0]
    assert email.subject == "Os seus bilhetes para Summit"
    for expected in ("Olá Ana Silva", "3 de janeiro de 2027, 20:00 WET",
                     "50,00 € (Pagamento de teste, sem movimento de dinheiro)", "Referência da encomenda"):
        assert expected in email.body, expected
    assert '<html lang="pt-PT">' in email.alternatives[0][0]


def test_the_qr_code_holds_the_ticket_code_as_a_full_qr_code():
    assert decoded(tickets.qr_png("ABCD-EFGH-JKLM")) == ["ABCD-EFGH-JKLM"]
    svg = tickets.qr_svg("ABCD-EFGH-JKLM", 'Ticket "A" <1>')
    assert svg.startswith('<svg role="img" aria-label="Ticket &quot;A&quot; &lt;1&gt;" ')
    assert "<script" not in svg


def test_calendar_text_is_escaped_and_long_lines_are_folded_without_splitting_characters():
    from datetime import UTC, datetime

    body = tickets.calendar_file(uid="u@x", starts_at=datetime(2027, 1, 3, 20, tzinfo=UTC), summary="a\\b;c,d\ne",
                                 location="", description="ã" * 100, url="https://x.test/c/1/",
                                 now=datetime(2026, 12, 1, tzinfo=UTC))
    assert "SUMMARY:a\\\\b\\;c\\,d\\ne\r\n" in body and "LOCATION" not in body
    assert "DTSTAMP:20261201T000000Z" in body
    lines = body.split("\r\n")
    assert all(len(line.encode()) <= 75 for line in lines)
    description = "".join(line[1:] if line.startswith(" ") else line for line in lines if "ã" in line)
    assert description == "DESCRIPTION:" + "ã" * 100


def test_a_free_orders_email_says_free_and_names_no_payment_method(client, organization,
                                                                  django_capture_on_commit_callbacks):
    from checkout.models import CheckoutSession

    from .conftest import details, make_attendee_event, pick

    english(client)
    event = make_attendee_event(organization, price=0, name="Open day")
    review_url = client.post(pick(client, event), details(event))["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(review_url)
    session = CheckoutSession.objects.get()
    assert session.status == "completed" and session.is_free
    [email] = mail.outbox
    assert "Paid: Free\n" in email.body and "Organizer: Acme Events" in email.body
    assert sorted(decoded(image.get_payload(decode=True))[0] for image in email.attachments
                  if isinstance(image, MIMEImage)) == sorted(t.code for t in session.tickets.all())
