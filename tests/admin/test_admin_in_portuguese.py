"""The back office (and the attendee's pages) in Portuguese say nothing of ours in English.

Each page is rendered with a pt-PT browser and its visible text (text nodes, and the
attributes people read: title, placeholder, aria-label, a button's value) is compared with
the catalog: a msgid of ours that appears there as written — a whole label, or a sentence
of three words or more inside a text — is an English sentence that escaped translation.
Entries whose translation is the same word (``Email``, ``API``, ``Stripe``) are left out.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.apps import apps
from django.utils import translation

from ievents.apps import OUR_APPS
from tests.admin.orders import make_order

pytestmark = pytest.mark.django_db
PO = Path(__file__).resolve().parents[2] / "locale" / "pt_PT" / "LC_MESSAGES" / "django.po"
PT = {"HTTP_ACCEPT_LANGUAGE": "pt-PT,pt;q=0.9"}


def catalog_sentences() -> list[str]:
    with PO.open("rb") as fp:
        catalog = read_po(fp)
    found = []
    for message in catalog:
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        string = message.string if isinstance(message.string, str) else message.string[0]
        if msgid and msgid != string and not re.search(r"%\(|%[sd]|<", msgid):
            found.append(msgid)
    return found


class VisibleText(HTMLParser):
    READ = ("title", "placeholder", "aria-label", "alt")

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template", "textarea"):
            self.hidden += 1  # a textarea holds what the organizer typed (or will), not a label
        attrs = dict(attrs)
        self.texts += [attrs[name] for name in self.READ if attrs.get(name)]
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template", "textarea"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.texts.append(" ".join(data.split()))


def english_of_ours(html: str, sentences: list[str]) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    leaks = set()
    for text in parser.texts:
        label = text.strip().rstrip(":").strip()
        for msgid in sentences:
            if label == msgid or (len(msgid.split()) >= 3 and msgid in text):
                leaks.add(msgid)
    return sorted(leaks)


@pytest.fixture
def pages(client, organizer, event):
    client.force_login(organizer)
    order = make_order(event)
    failed = order.payments.create(provider="stripe", status="failed", amount=order.amount_total,
                                   currency=order.currency, failure_reason="Your card was declined.")
    return client, event, order, failed


def admin_urls(event, order) -> list[str]:
    base = "/admin/"
    urls = [base, f"{base}checkout/checkoutsession/", f"{base}checkout/checkoutsession/{order.pk}/change/",
            f"{base}checkout/checkoutsession/{order.pk}/refund/", f"{base}checkout/checkoutsession/{order.pk}/cancel/",
            f"{base}checkout/checkoutsession/{order.pk}/resend/", f"{base}ievents/event/",
            f"{base}ievents/event/{event.pk}/change/", f"{base}ievents/event/add/",
            f"{base}ievents/organization/{event.organization_id}/change/"]
    for model in ("payments/integrationsettings", "payments/payment", "webhooks/gatecall", "webhooks/inboundwebhook",
                  "webhooks/webhookendpoint", "webhooks/delivery", "webhooks/outboxevent", "ievents/apikey"):
        urls.append(f"{base}{model}/")
    return urls


def test_every_admin_page_in_portuguese_has_no_english_sentence_of_ours(pages):
    client, event, order, _failed = pages
    sentences = catalog_sentences()
    leaks = {}
    for url in admin_urls(event, order):
        response = client.get(url, **PT)
        assert response.status_code == 200, url
        assert '<html lang="pt-pt"' in response.content.decode().lower()
        found = english_of_ours(response.content.decode(), sentences)
        if found:
            leaks[url] = found
    assert not leaks, leaks


def test_the_orders_list_is_encomendas_in_portuguese_and_orders_in_english(pages):
    client, _event, order, _failed = pages
    pt = client.get("/admin/checkout/checkoutsession/", **PT).content.decode()
    assert "<h1>Encomendas</h1>" in pt and "Exportar CSV" in pt
    en = client.get("/admin/checkout/checkoutsession/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>Orders</h1>" in en and "Export CSV" in en
    page = client.get(f"/admin/checkout/checkoutsession/{order.pk}/change/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for button in ("Refund", "Cancel order", "Resend tickets"):
        assert f">{button}</a>" in page


def test_money_and_dates_on_the_order_page_are_written_as_portuguese_writes_them(pages):
    client, _event, order, _failed = pages
    page = client.get(f"/admin/checkout/checkoutsession/{order.pk}/change/", **PT).content.decode()
    assert "50,00 €" in page and "€50.00" not in page
    assert re.search(r"\d{1,2} de [a-zç]+ de 20\d\d, \d\d:\d\d", page)


def test_a_language_switch_in_the_header_is_remembered(pages):
    client, *_ = pages
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="admin-language"' in page and 'value="pt-pt"' in page
    client.post("/i18n/setlang/", {"language": "pt-pt", "next": "/admin/"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "Encomendas" in client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_the_order_page_marks_void_tickets_and_says_why_a_payment_failed(pages):
    client, _event, order, _failed = pages
    from django.utils import timezone

    order.tickets.filter(pk=order.tickets.first().pk).update(voided_at=timezone.now())
    page = client.get(f"/admin/checkout/checkoutsession/{order.pk}/change/", **PT).content.decode()
    assert page.count(">Anulado</span>") == 1
    assert "Your card was declined." in page
    assert 'class="button order-action order-action-refund"' in page and "<li><a" not in page.split(
        'class="order-actions')[1][:300]


def test_the_front_page_groups_the_plumbing_under_for_developers(pages):
    client, *_ = pages
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    organizer_part, developers = page.split("For developers", 1)
    for screen in ("Orders", "Events", "Payments", "Settings"):
        assert f">{screen}</a>" in organizer_part
    for plumbing in ("Notifications sent to your systems", "Messages from payment providers", "Gate checks"):
        assert plumbing in developers
    for word in ("Outbox events", "Inbound webhooks", "Gate calls", "IANA", "ISO 4217"):
        assert word not in page


def test_every_name_of_our_models_and_fields_has_a_portuguese_translation():
    """Names derived from attributes ("customer email") are translated at start-up
    (``ievents.apps``); a new field without its translation fails here."""
    with PO.open("rb") as fp:
        translated = {m.id for m in read_po(fp) if m.id and m.string}
    missing = set()
    with translation.override("en"):
        for label in OUR_APPS:
            for model in apps.get_app_config(label).get_models():
                names = [model._meta.verbose_name, model._meta.verbose_name_plural]  # noqa: SLF001
                names += [f.verbose_name for f in model._meta.get_fields() if getattr(f, "verbose_name", None)]  # noqa: SLF001
                missing |= {str(name) for name in names} - translated
    assert not missing, sorted(missing)


def test_every_attendee_page_in_portuguese_has_no_english_sentence_of_ours(client, event, open_session):
    from payments.models import IntegrationSettings
    from tests.refunds.helpers import paid_order

    IntegrationSettings.objects.get_or_create(organization=event.organization, provider="sandbox",
                                              defaults={"enabled": True})
    completed, _ = paid_order(event, provider="sandbox", reference="pay_sbx_pages")
    sentences = catalog_sentences()
    pages = {
        "event": f"/e/{event.public_id}/", "details": f"/c/{open_session.public_id}/",
        "cancel": f"/c/{open_session.public_id}/cancel/", "tickets": f"/c/{completed.public_id}/status/",
        "not found": "/c/cs_nosuchorder/",
    }
    leaks = {}
    for name, url in pages.items():
        response = client.get(url, **PT)
        assert response.status_code in (200, 404), (name, response.status_code)
        found = english_of_ours(response.content.decode(), sentences)
        if found:
            leaks[name] = found
    assert not leaks, leaks
