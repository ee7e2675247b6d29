"""Account commands and revision 0003 (accounts, audit clinic backfill, triggers)."""
from __future__ import annotations

import io
import os
import stat
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from analyzer.cli import main
from analyzer.store import Store, db
from test_store_support import settings, store_url  # noqa: F401

PASSWORD = "first admin passphrase"


def test_users_cli_first_admin_from_stdin_and_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANALYZER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ANALYZER_DATABASE_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "Boss", "--role", "admin", "--clinic", "Main clinic",
                 "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert main(["users", "add", "other", "--clinic", "1", "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, no --password-stdin
    assert main(["users", "add", "other", "--clinic", "1"]) == 2
    assert main(["users", "demo", "--clinic", "Main clinic"]) == 0
    creds = tmp_path / "data" / "DEMO_CREDENTIALS.txt"
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    demo_password = creds.read_text().split("password: ", 1)[1].split()[0]
    assert main(["users", "list"]) == 0
    assert main(["users", "disable", "demo"]) == 0
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err and demo_password not in out.out + out.err
    assert "boss\tadmin" in out.out and "demo\tpractitioner\tclinic 1\tactive" in out.out
    assert "account 2 disabled" in out.out
    from analyzer.config import Settings

    with Store.open(Settings(data_dir=tmp_path / "data")) as store:
        boss = store.authenticate("boss", PASSWORD)
        assert (boss.role, boss.clinic_id) == ("admin", 1)
        with pytest.raises(Exception, match="disabled"):
            store.authenticate("demo", demo_password)


def test_upgrade_0002_to_0003_backfills_audit_clinic_and_adds_triggers(settings, store_url):
    engine = db.make_engine(store_url)
    db.upgrade(engine, "0002")
    now = datetime(2026, 3, 14, tzinfo=timezone.utc)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as c:
        cid = c.execute(t["clinic"].insert().values(name="Old", created_at=now)
                        ).inserted_primary_key[0]
        pid = c.execute(t["patient"].insert().values(code="OLD", consent=False, clinic_id=cid,
                                                     created_at=now)).inserted_primary_key[0]
        for patient in (pid, None):
            c.execute(t["audit_log"].insert().values(at=now, actor="old", action="x",
                                                     entity="patient", entity_id=patient,
                                                     patient_id=patient))
    engine.dispose()
    with Store.open(settings) as store:
        assert db.current_revision(store.engine) == "0003"
        assert sorted((e.patient_id or 0, e.clinic_id) for e in store.audit_log()) == [
            (0, None), (pid, cid)]
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with store.engine.begin() as c:
                c.execute(sa.text("DELETE FROM audit_log"))
