"""Every text an attendee can meet is translated into Portuguese, where it is written.

The first test runs Django's ``makemessages`` over a copy of the project's sources (so the
project's own ``.po`` is never touched) and checks each string it finds against our
``.po``, compiled by ``msgfmt`` as ``compilemessages`` does: an untranslated or fuzzy entry
(msgfmt leaves fuzzy ones out) fails it, naming the strings. Needs GNU gettext (msgfmt,
xgettext): ``apt-get install gettext``, as ``.ci/run`` does.
"""

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "pt_PT" / "LC_MESSAGES" / "django.po"
# Where our strings live: the attendee's pages and the organizer's back office alike.
SOURCES = ["templates", "checkout", "payments", "ievents", "webhooks"]
NOT_ATTENDEE = ["*/migrations"]


def _compiled(po: Path, out: Path) -> dict:
    subprocess.run(["msgfmt", "--check-format", "-o", str(out), str(po)], check=True)
    with out.open("rb") as fp:
        catalog = gettext.GNUTranslations(fp)
    return catalog


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> list[tuple[str, str]]:
    """(msgid, msgid_plural) of every translatable string in the attendee's sources."""
    if not shutil.which("xgettext"):
        pytest.fail("GNU gettext is missing: apt-get install gettext")
    copy = tmp_path_factory.mktemp("sources")
    for name in SOURCES:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    (copy / "locale").mkdir()
    import os

    here = os.getcwd()
    os.chdir(copy)  # makemessages reads the current directory and writes ./locale
    try:
        with override_settings(LOCALE_PATHS=[copy / "locale"]):
            call_command("makemessages", locale=["pt_PT"], ignore_patterns=NOT_ATTENDEE, no_location=True,
                         verbosity=0)
    finally:
        os.chdir(here)
    generated = copy / "locale" / "pt_PT" / "LC_MESSAGES" / "django.po"
    entries, msgid, plural, key = [], None, None, None
    for line in [*generated.read_text().splitlines(), ""]:  # a tiny reader: msgid / msgid_plural only
        if line.startswith("msgid "):
            key, msgid, plural = "msgid", _unquote(line[6:]), None
        elif line.startswith("msgid_plural "):
            key, plural = "plural", _unquote(line[13:])
        elif line.startswith('"') and key == "msgid":
            msgid += _unquote(line)
        elif line.startswith('"') and key == "plural":
            plural += _unquote(line)
        elif line.startswith("msgstr") or not line:
            if key and msgid:
                entries.append((msgid, plural))
            key = None
    return entries


def _unquote(text: str) -> str:
    import ast

    return ast.literal_eval(text.strip())


def test_every_attendee_string_has_a_portuguese_translation(extracted, tmp_path):
    catalog = _compiled(PO, tmp_path / "django.mo")
    assert len(extracted) > 100  # the extraction found the pages' strings
    missing = []
    for msgid, plural in extracted:
        if plural:
            translated = catalog.ngettext(msgid, plural, 1) != msgid or catalog.ngettext(msgid, plural, 2) != plural
            present = translated or (msgid, 0) in catalog._catalog  # noqa: SLF001 - an identical translation
        else:
            present = msgid in catalog._catalog and catalog._catalog[msgid] != ""  # noqa: SLF001
        if not present:
            missing.append(msgid)
    assert not missing, f"untranslated in {PO.relative_to(ROOT)} (run makemessages -l pt_PT and translate):\n" + \
        "\n".join(missing)


def test_a_fuzzy_or_empty_entry_counts_as_untranslated(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(PO.read_text().replace('msgid "Continue"\nmsgstr "Continuar"',
                                         '#, fuzzy\nmsgid "Continue"\nmsgstr "Continuar"')
                  .replace('msgid "Get tickets"\nmsgstr "Obter bilhetes"', 'msgid "Get tickets"\nmsgstr ""'))
    catalog = _compiled(po, tmp_path / "django.mo")
    assert "Continue" not in catalog._catalog and "Get tickets" not in catalog._catalog  # noqa: SLF001
    assert "Your details" in catalog._catalog  # noqa: SLF001


def test_a_message_written_in_a_service_is_in_the_language_of_the_request():
    from checkout import services
    from webhooks import gate

    with translation.override("pt-pt"):
        with pytest.raises(services.InvalidOrder) as refused:
            services._wanted(type("E", (), {"published": False})(), [])  # noqa: SLF001 - the message's own words
        assert refused.value.message == "Este evento não está à venda."
        assert str(gate.RATE_LIMITED_MESSAGE).startswith("Demasiadas tentativas")


def test_the_gates_default_messages_are_ours_and_the_organizers_own_words_are_shown_as_written():
    from webhooks.models import GateSettings

    with translation.override("pt-pt"):
        assert GateSettings().shown("denial_message") == "Não foi possível aprovar esta compra. Contacte o organizador."
        assert GateSettings(denial_message="Só membros <b>Acme</b>.").shown("denial_message") == \
            "Só membros <b>Acme</b>."
