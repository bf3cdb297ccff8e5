"""SQLite sources only under SOURCES_SQLITE_DIR; source credentials under keys of their own."""

from __future__ import annotations

import importlib
import os
import sqlite3

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from sources import crypto
from sources.dsn_guard import RefusedDSN, vet_dsn
from sources.models import Source, SourceKind, SyncStatus
from sources.services import source_create, source_sync


def make_db(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE faq (code TEXT, q TEXT, a TEXT)")
        db.execute("INSERT INTO faq VALUES ('A1', 'How?', 'Like this.')")


def test_sqlite_is_off_until_an_admin_names_a_directory(db, tmp_path, settings):
    make_db(tmp_path / "faq.db")
    settings.SOURCES_SQLITE_DIR = ""
    with pytest.raises(RefusedDSN, match="SQLite sources are turned off"):
        vet_dsn(f"sqlite:///{tmp_path}/faq.db")


@pytest.mark.parametrize("name", ["../outside.db", "link.db", "sub/../../outside.db"])
def test_a_sqlite_path_cannot_escape_the_directory(db, tmp_path, settings, name):
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    make_db(tmp_path / "outside.db")
    (allowed / "link.db").symlink_to(tmp_path / "outside.db")
    settings.SOURCES_SQLITE_DIR = str(allowed)
    with pytest.raises(RefusedDSN, match="SQLite files can only be read from under"):
        vet_dsn(f"sqlite:///{allowed}/{name}")


def test_a_sqlite_path_under_var_is_refused_even_inside_the_directory(db, settings):
    from config.env import VAR_DIR

    settings.SOURCES_SQLITE_DIR = str(VAR_DIR.parent)
    with pytest.raises(RefusedDSN, match="SQLite files can only be read from under"):
        vet_dsn(f"sqlite:///{VAR_DIR}/pgdata/global/pg_control")


def test_a_sqlite_file_name_cannot_add_uri_parameters(kb, manager, tmp_path, settings):
    settings.SOURCES_SQLITE_DIR = str(tmp_path)
    path = tmp_path / "faq.db?mode=rwc"
    make_db(path)
    source = source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="FAQ", dsn=f"sqlite:///{tmp_path}/faq.db%3Fmode=rwc",
        query="SELECT * FROM faq", key_field="code", title_template="{q}", body_template="{a}",
    )
    assert source_sync(source_id=source.pk).created == 1
    assert not (tmp_path / "faq.db").exists()


# --- credentials ----------------------------------------------------------------------------------


def stored(source_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT dsn_encrypted FROM sources_source WHERE id = %s", [source_id])
        return cursor.fetchone()[0]


def test_credentials_are_encrypted_with_the_configured_key_not_secret_key(kb, manager, rows, settings):
    source = source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="W", dsn=rows.source_dsn,
        query=f"SELECT * FROM {rows.table}", key_field="id", title_template="{title}", body_template="{body}",
    )
    token = stored(source.pk)
    assert Fernet(os.environ["SOURCE_CREDENTIALS_KEYS"].split(",")[0].encode()).decrypt(token.encode()).decode() == rows.source_dsn
    with pytest.raises(Exception):
        crypto.legacy_fernet(settings.SECRET_KEY).decrypt(token.encode())


def test_rotation_re_encrypts_with_the_new_first_key(kb, manager, rows, monkeypatch):
    old_key = os.environ["SOURCE_CREDENTIALS_KEYS"]
    source = source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="W", dsn=rows.source_dsn,
        query=f"SELECT id, title, body FROM {rows.table}", key_field="id", title_template="{title}", body_template="{body}",
    )
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("SOURCE_CREDENTIALS_KEYS", f"{new_key},{old_key}")
    assert Source.objects.get(pk=source.pk).dsn == rows.source_dsn  # the old key still decrypts
    call_command("rotate_source_credentials")
    assert Fernet(new_key.encode()).decrypt(stored(source.pk).encode()).decode() == rows.source_dsn
    monkeypatch.setenv("SOURCE_CREDENTIALS_KEYS", new_key)  # the old key is gone
    assert source_sync(source_id=source.pk).status == SyncStatus.SUCCEEDED
    monkeypatch.setenv("SOURCE_CREDENTIALS_KEYS", Fernet.generate_key().decode())  # a wrong key
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED and "cannot be decrypted" in sync.error


def test_without_a_key_credentials_are_refused_with_debug_off(kb, manager, monkeypatch, settings):
    monkeypatch.delenv("SOURCE_CREDENTIALS_KEYS")
    settings.SOURCE_CREDENTIALS_KEYS = []
    settings.DEBUG = False
    with pytest.raises(ValidationError) as refused:
        source_create(
            actor=manager, knowledge_base=kb, kind=SourceKind.HTTP, name="API", url="https://api.example.com/x",
            auth_header_value="Bearer secret", key_field="id", title_template="{id}", body_template="{id}",
        )
    assert "SOURCE_CREDENTIALS_KEYS" in refused.value.message_dict["auth_header_value"][0]
    assert not Source.objects.exists()


def test_with_debug_on_a_development_key_file_is_generated(db, monkeypatch, settings, tmp_path, caplog):
    monkeypatch.delenv("SOURCE_CREDENTIALS_KEYS")
    settings.SOURCE_CREDENTIALS_KEYS = []
    settings.DEBUG = True
    settings.SOURCE_CREDENTIALS_KEY_FILE = str(tmp_path / "source_credentials.key")
    token = crypto.encrypt("secret")
    assert crypto.decrypt(token) == "secret"
    assert (os.stat(tmp_path / "source_credentials.key").st_mode & 0o777) == 0o600
    assert "SOURCE_CREDENTIALS_KEYS is not set" in caplog.text


def test_the_migration_re_encrypts_values_of_the_secret_key_era(kb, manager, settings):
    legacy = crypto.legacy_fernet(settings.SECRET_KEY)
    source = Source.objects.create(
        knowledge_base=kb, kind=SourceKind.HTTP, name="Old", created_by=manager, url="https://api.example.com/",
        key_field="id", title_template="{id}", body_template="{id}",
        auth_header_encrypted=legacy.encrypt(b"Bearer old-era").decode(),
        dsn_encrypted="gAAAA-not-readable-by-any-key",
    )
    migration = importlib.import_module("sources.migrations.0003_credentials_own_keys")
    migration.reencrypt(apps, None)
    source.refresh_from_db()
    assert source.auth_header_value == "Bearer old-era"
    assert source.dsn_encrypted == "gAAAA-not-readable-by-any-key"  # unreadable before: left, nothing invented
