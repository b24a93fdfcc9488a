"""`make run` on a machine without GNU gettext: `make messages` (which `make run` and
`make test` run first) compiles the catalogs with Babel, so no `msgfmt` is needed."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_messages_compiles_the_catalog_with_msgfmt_hidden(tmp_path):
    assert shutil.which("make"), "make is not installed"
    bin_dir = tmp_path / "bin"  # PATH holds make and nothing else: no msgfmt, no xgettext
    bin_dir.mkdir()
    (bin_dir / "make").symlink_to(shutil.which("make"))
    assert shutil.which("msgfmt", path=str(bin_dir)) is None
    locale = tmp_path / "locale"
    shutil.copytree(ROOT / "locale", locale, ignore=shutil.ignore_patterns("*.mo"))
    env = {**os.environ, "PATH": str(bin_dir)}
    # -o: the virtualenv is set up already (a fresh clone's `make run` builds it first).
    done = subprocess.run(["make", "-o", ".venv/.deps", "messages", f"LOCALE_DIR={locale}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    with (locale / "pt_PT" / "LC_MESSAGES" / "django.mo").open("rb") as fp:
        catalog = gettext.GNUTranslations(fp)
    assert catalog.gettext("Continue") == "Continuar"
    assert catalog.ngettext("%(count)d minute", "%(count)d minutes", 2) == "%(count)d minutos"


def test_a_fuzzy_entry_is_left_out_as_msgfmt_leaves_it_out(tmp_path):
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = (ROOT / "locale" / "pt_PT" / "LC_MESSAGES" / "django.po").read_text()
    po = po.replace('msgid "Continue"\nmsgstr "Continuar"', '#, fuzzy\nmsgid "Continue"\nmsgstr "Continuar"')
    (tmp_path / "django.po").write_text(po)
    with (tmp_path / "django.po").open("rb") as source, (tmp_path / "django.mo").open("wb") as target:
        write_mo(target, read_po(source))
    with (tmp_path / "django.mo").open("rb") as fp:
        catalog = gettext.GNUTranslations(fp)
    assert catalog.gettext("Continue") == "Continue" and catalog.gettext("Get tickets") == "Obter bilhetes"
