"""Every UI string has a Simplified Chinese translation, and the compiled catalogue is current."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
from django.conf import settings

from config.env import BASE_DIR

PO = BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
SKIP = {".venv", "var", "tests", "bench", "staticfiles", ".git", ".pytest_cache", "node_modules", "media"}


def test_makemessages_finds_no_untranslated_string(tmp_path):
    # Extract the strings afresh from a copy of the source, merged into the committed catalogue.
    copy = tmp_path / "src"
    shutil.copytree(BASE_DIR, copy, ignore=lambda d, names: [n for n in names if Path(d) == BASE_DIR and n in SKIP])
    env = {**os.environ, "DATABASE_URL": settings.DATABASE_URL, "SECRET_KEY": "i18n-check", "VAR_DIR": str(tmp_path)}
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete", "-v", "0"],
        cwd=copy, env=env, check=True,
    )
    po = polib.pofile(str(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    missing = [e.msgid for e in po.untranslated_entries() + po.fuzzy_entries()]
    assert not missing, f"{len(missing)} strings lack a zh-hans translation (run `make messages`): {missing[:20]}"
    assert len(po) > 100


def test_compiled_catalogue_matches_the_po_file():
    po = polib.pofile(str(PO))
    mo = polib.mofile(str(PO.with_suffix(".mo")))
    compiled = {entry.msgid: entry.msgstr for entry in mo}
    stale = [e.msgid for e in po.translated_entries() if not e.msgid_plural and compiled.get(e.msgid) != e.msgstr]
    assert not stale, f"django.mo is out of date (run `make messages`): {stale[:10]}"
