"""Accounts and access: clinic scoping of every Store method, roles, share links,
lock-out, append-only audit log, secrets never in clear; SQLite and PostgreSQL."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from analyzer import auth
from analyzer.auth import Principal
from analyzer.errors import AuthError, DuplicateError, NotFoundError, PermissionDenied
from analyzer.store import Store
from analyzer.store.models import AuditEntry, AuditLogIsAppendOnly
from test_store_support import fake_analyse, jpeg_bytes, settings, store, store_url  # noqa: F401

PASSWORD = "Plain-Text-Secret-4711"


@dataclass
class World:
    store: Store
    a: int  # clinic ids
    b: int
    pa: int  # patient ids
    pb: int
    photo_a: int
    photo_a2: int
    photo_b: int
    admin_a: Principal
    doc_a: Principal
    ro_a: Principal
    doc_b: Principal
    admin_b: Principal


def _patient_with_photos(store, code, clinic, seed):
    p = store.create_patient(code, actor="setup", clinic_id=clinic, name=f"Name {code}")
    v = store.add_visit(p.id, "2026-03-14", actor="setup")
    ph1 = store.add_photo(v.id, jpeg_bytes(seed), actor="setup")
    ph2 = store.add_photo(v.id, jpeg_bytes(seed + 1), actor="setup")
    store.save_analysis(ph1.id, fake_analyse()(b"x", None), actor="setup")
    store.save_comparison(ph1.id, ph2.id, {"algorithm_version": "t"}, actor="setup")
    return p.id, ph1.id, ph2.id


def fast_hashes(store):
    """Cheaper argon2id parameters for speed (test_account_input_checks keeps the real ones)."""
    from argon2 import PasswordHasher, Type

    store._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    return store


@pytest.fixture
def world(store):
    fast_hashes(store)
    a = store.create_clinic("Clinic A", actor="setup")
    b = store.create_clinic("Clinic B", actor="setup")
    pa, photo_a, photo_a2 = _patient_with_photos(store, "A-1", a, 10)
    pb, photo_b, _ = _patient_with_photos(store, "B-1", b, 20)
    users = {}
    for name, role, clinic in (("admin.a", "admin", a), ("doc.a", "practitioner", a),
                               ("ro.a", "read-only", a), ("doc.b", "practitioner", b),
                               ("admin.b", "admin", b)):
        store.create_user(name, PASSWORD, role=role, clinic_id=clinic, actor="setup")
        users[name] = store.authenticate(name, PASSWORD)
    return World(store, a, b, pa, pb, photo_a, photo_a2, photo_b, users["admin.a"],
                 users["doc.a"], users["ro.a"], users["doc.b"], users["admin.b"])


def _reads(w: World, patient: int, photo: int, tmp_path):
    """Every read method of the store on one patient, as (name, call(actor))."""
    return [
        ("get_patient", lambda who: w.store.get_patient(patient, actor=who)),
        ("patient_timeline", lambda who: w.store.patient_timeline(patient, actor=who)),
        ("get_photo", lambda who: w.store.get_photo(photo, actor=who)),
        ("photo_bytes", lambda who: w.store.photo_bytes(photo, actor=who)),
        ("analyses", lambda who: w.store.analyses(photo, actor=who)),
        ("comparisons", lambda who: w.store.comparisons(patient, actor=who)),
        ("audit_log", lambda who: w.store.audit_log(patient_id=patient, actor=who)),
        ("export_patient", lambda who: w.store.export_patient(patient, tmp_path / "x.zip",
                                                              actor=who)),
        ("list_share_links", lambda who: w.store.list_share_links(patient, actor=who)),
        ("find_photo_by_source", lambda who: w.store.find_photo_by_source(patient, "0" * 64,
                                                                          actor=who)),
    ]


def _writes(w: World, patient: int, photo: int, photo2: int):
    s = w.store
    visit = s.patient_timeline(patient)[0].id
    return [
        ("update_patient", lambda who: s.update_patient(patient, actor=who, skin_type="II")),
        ("add_visit", lambda who: s.add_visit(patient, "2026-04-01", actor=who)),
        ("update_visit", lambda who: s.update_visit(visit, actor=who, notes="x")),
        ("ensure_visit", lambda who: s.ensure_visit(patient, "2026-05-01", actor=who)),
        ("add_photo", lambda who: s.add_photo(visit, jpeg_bytes(99), actor=who)),
        ("save_analysis", lambda who: s.save_analysis(photo, fake_analyse("w")(b"", None),
                                                      actor=who)),
        ("record_failed_analysis", lambda who: s.record_failed_analysis(photo, "f", "e",
                                                                        actor=who)),
        ("save_comparison", lambda who: s.save_comparison(photo, photo2, {}, actor=who)),
        ("create_share_link", lambda who: s.create_share_link(patient, actor=who)),
        ("erase_patient", lambda who: s.erase_patient(patient, actor=who)),
    ]


def test_no_method_returns_or_changes_another_clinics_patient(world, tmp_path):
    w, s = world, world.store
    before = s.counts()
    blobs = sorted(s.blobs.keys())
    for who in (w.doc_b, w.admin_b):
        for name, call in _reads(w, w.pa, w.photo_a, tmp_path):
            with pytest.raises(PermissionDenied):
                call(who)
                pytest.fail(f"{name} returned clinic A's data to clinic B")
        for name, call in _writes(w, w.pa, w.photo_a, w.photo_a2):
            with pytest.raises(PermissionDenied):
                call(who)
                pytest.fail(f"{name} changed clinic A's data for clinic B")
        assert s.find_patient("A-1", actor=who) is None
        assert [p.code for p in s.list_patients(actor=who)] == ["B-1"]
        assert [p.code for p in s.list_patients(search="name", actor=who)] == ["B-1"]
        with pytest.raises(PermissionDenied):
            s.list_patients(clinic_id=w.a, actor=who)
        assert set(s.photos_needing_analysis("new", actor=who)) <= {w.photo_b, w.photo_b + 1}
        assert {e.clinic_id for e in s.audit_log(actor=w.admin_b, limit=1000)} == {w.b}
    after = s.counts()
    assert {k: v for k, v in after.items() if k != "audit_log"} == \
        {k: v for k, v in before.items() if k != "audit_log"}
    assert sorted(s.blobs.keys()) == blobs  # a refused upload writes no file
    assert not (tmp_path / "x.zip").exists()
    # The own clinic's practitioner reads and writes all of it.
    for name, call in _reads(w, w.pa, w.photo_a, tmp_path):
        call(w.doc_a)
    assert [p.code for p in s.list_patients(actor=w.doc_a)] == ["A-1"]
    assert s.find_patient("A-1", actor=w.doc_a).id == w.pa
    for name, call in _writes(w, w.pa, w.photo_a, w.photo_a2)[:-1]:
        call(w.doc_a)


def test_roles(world, tmp_path):
    w, s = world, world.store
    # read-only: reads everything of its clinic, changes nothing
    for name, call in _reads(w, w.pa, w.photo_a, tmp_path):
        call(w.ro_a)
    for name, call in _writes(w, w.pa, w.photo_a, w.photo_a2):
        with pytest.raises(PermissionDenied):
            call(w.ro_a)
            pytest.fail(f"read-only account could {name}")
    with pytest.raises(PermissionDenied):
        s.create_patient("RO-1", actor=w.ro_a)
    # practitioner: no erasure, no clinic-wide audit log, no accounts
    with pytest.raises(PermissionDenied):
        s.erase_patient(w.pa, actor=w.doc_a)
    with pytest.raises(PermissionDenied):
        s.audit_log(actor=w.doc_a)
    with pytest.raises(PermissionDenied):
        s.create_user("new.user", PASSWORD, role="practitioner", clinic_id=w.a, actor=w.doc_a)
    with pytest.raises(PermissionDenied):
        s.list_users(actor=w.doc_a)
    # a practitioner's new patient lands in its own clinic, never another
    assert s.create_patient("A-2", actor=w.doc_a).clinic_id == w.a
    with pytest.raises(PermissionDenied):
        s.create_patient("A-3", actor=w.doc_a, clinic_id=w.b)
    with pytest.raises(PermissionDenied):
        s.update_patient(w.pa, actor=w.admin_a, clinic_id=w.b)
    # admin: own clinic's accounts, audit log and erasure only
    assert {u.username for u in s.list_users(actor=w.admin_a)} == {"admin.a", "doc.a", "ro.a"}
    with pytest.raises(PermissionDenied):
        s.create_user("x.b", PASSWORD, role="admin", clinic_id=w.b, actor=w.admin_a)
    with pytest.raises(PermissionDenied):
        s.set_user_disabled("doc.b", True, actor=w.admin_a)
    s.create_user("new.a", PASSWORD, role="read-only", clinic_id=w.a, actor=w.admin_a)
    for who in (w.admin_a, w.doc_a):
        with pytest.raises(PermissionDenied):
            s.create_clinic("Clinic C", actor=who)
        with pytest.raises(PermissionDenied):
            s.counts(actor=who)
    assert s.erase_patient(w.pa, actor=w.admin_a)["patients"] == 1
    log = s.audit_log(actor=w.admin_a, limit=1000)
    assert log[0].action == "patient.erase" and log[0].actor == str(w.admin_a)
    assert {e.clinic_id for e in log} == {w.a}


def test_share_links(world):
    w, s = world, world.store
    token = s.create_share_link(w.pa, actor=w.doc_a, days=7)
    assert len(token) >= 43  # 32 random bytes
    patient = s.open_share_link(token)
    assert (patient.role, patient.patient_id, patient.is_patient, patient.can_write) == (
        "patient", w.pa, True, False)
    assert str(patient).startswith("share:") and "A-1" not in repr(patient)
    # read-only view of its own patient, nothing else
    assert [v.id for v in s.patient_timeline(w.pa, actor=patient)]
    assert s.photo_bytes(w.photo_a, actor=patient)[:2] == b"\xff\xd8"
    assert [p.id for p in s.list_patients(actor=patient)] == [w.pa]
    for call in (lambda: s.get_patient(w.pb, actor=patient),
                 lambda: s.photo_bytes(w.photo_b, actor=patient),
                 lambda: s.add_visit(w.pa, "2026-06-01", actor=patient),
                 lambda: s.create_share_link(w.pa, actor=patient),
                 lambda: s.list_share_links(w.pa, actor=patient),
                 lambda: s.audit_log(patient_id=w.pa, actor=patient),
                 lambda: s.export_patient(w.pa, "/tmp/never.zip", actor=patient)):
        with pytest.raises(PermissionDenied):
            call()
    actions = [e.action for e in s.audit_log(patient_id=w.pa, actor=w.admin_a)]
    assert {"share.create", "share.open", "share.view"} <= set(actions)
    # another clinic can neither list nor revoke it
    link_id = s.list_share_links(w.pa, actor=w.doc_a)[0].id
    with pytest.raises(PermissionDenied):
        s.revoke_share_link(link_id, actor=w.doc_b)
    # revoked: refused at once, also for the principal already handed out
    assert s.revoke_share_link(token, actor=w.doc_a).active is False
    with pytest.raises(AuthError, match="revoked"):
        s.patient_timeline(w.pa, actor=patient)
    with pytest.raises(AuthError, match="not valid"):
        s.open_share_link(token)
    # expired
    token2 = s.create_share_link(w.pa, actor=w.doc_a, days=1)
    s.open_share_link(token2)
    with s.engine.begin() as c:
        c.execute(sa.text("UPDATE share_link SET expires_at = :t WHERE revoked_at IS NULL"),
                  {"t": datetime.now(timezone.utc) - timedelta(seconds=1)})
    with pytest.raises(AuthError, match="not valid"):
        s.open_share_link(token2)
    for bad in ("", "x" * 43, auth.new_share_token(), "' OR 1=1 --", "é" * 50):
        with pytest.raises(AuthError, match="not valid"):
            s.open_share_link(bad)
    assert [link.active for link in s.list_share_links(w.pa, actor=w.doc_a)] == [False, False]
    refused = [e for e in s.audit_log(limit=1000) if e.action == "share.refused"]
    assert len(refused) == 7
    with pytest.raises(Exception):
        s.create_share_link(w.pa, actor=w.doc_a, days=0)


def test_lockout_after_five_failures(store):
    fast_hashes(store)
    clinic = store.create_clinic("C", actor="setup")
    store.create_user("dr.lock", PASSWORD, role="practitioner", clinic_id=clinic, actor="setup")
    messages = set()
    for _ in range(auth.LOCKOUT_ATTEMPTS):
        with pytest.raises(AuthError) as err:
            store.authenticate("dr.lock", "wrong password!")
        messages.add(str(err.value))
    with pytest.raises(AuthError) as err:
        store.authenticate("nobody.here", "wrong password!")
    messages.add(str(err.value))
    assert messages == {"wrong user name or password"}  # unknown user: same message
    with pytest.raises(AuthError, match="too many failed attempts: try again in 15 minutes"):
        store.authenticate("dr.lock", PASSWORD)  # even the right password
    # another process (another engine) sees the same lock
    with Store.open(store.settings) as other:
        with pytest.raises(AuthError, match="too many failed attempts"):
            other.authenticate("DR.LOCK", PASSWORD)
    # the lock ends when the failures are older than the window
    with store.engine.begin() as c:
        c.execute(sa.text("UPDATE login_attempt SET at = :t"),
                  {"t": datetime.now(timezone.utc) - timedelta(minutes=16)})
    assert store.authenticate("dr.lock", PASSWORD).username == "dr.lock"
    # unknown names lock out too (no way to tell which names exist)
    for _ in range(auth.LOCKOUT_ATTEMPTS):
        with pytest.raises(AuthError, match="wrong user name"):
            store.authenticate("nobody.here", "x")
    with pytest.raises(AuthError, match="too many failed attempts"):
        store.authenticate("nobody.here", "x")
    # an operator's password reset clears the failures
    for _ in range(auth.LOCKOUT_ATTEMPTS):
        with pytest.raises(AuthError):
            store.authenticate("dr.lock", "nope")
    store.reset_password("dr.lock", PASSWORD + "2", actor="operator")
    assert store.authenticate("dr.lock", PASSWORD + "2").role == "practitioner"


def test_disabled_and_changed_accounts_are_refused(world):
    w, s = world, world.store
    s.set_user_disabled("doc.a", True, actor=w.admin_a)
    with pytest.raises(AuthError, match="sign in again"):
        s.list_patients(actor=w.doc_a)  # an open session ends at its next request
    with pytest.raises(AuthError, match="disabled"):
        s.authenticate("doc.a", PASSWORD)
    with pytest.raises(AuthError, match="wrong user name"):
        s.authenticate("doc.a", "not the password")
    forged = Principal(w.doc_b.user_id, "doc.b", "admin", w.a)  # role and clinic made up
    with pytest.raises(AuthError):
        s.get_patient(w.pa, actor=forged)
    with pytest.raises(AuthError):
        s.get_patient(w.pa, actor=Principal(None, "p", "patient", w.a, patient_id=w.pa,
                                            link_id=12345))
    with pytest.raises(PermissionDenied):
        s.set_user_disabled("admin.a", True, actor=w.admin_a)


def test_passwords_and_tokens_never_stored_or_logged_in_clear(world, caplog, settings):
    w, s = world, world.store
    caplog.set_level(logging.DEBUG)  # includes SQLAlchemy's statement and parameter logs
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        token = s.create_share_link(w.pa, actor=w.doc_a)
        s.open_share_link(token)
        s.authenticate("doc.a", PASSWORD)
        with pytest.raises(AuthError):
            s.authenticate("doc.a", PASSWORD + "-wrong")
        s.reset_password("ro.a", PASSWORD + "-new", actor=w.admin_a)
        username, demo_password = s.ensure_demo_user(clinic_id=w.a)
        s.authenticate(username, demo_password)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert "app_user" in logged  # the statements were captured
    secrets_ = (PASSWORD, PASSWORD + "-wrong", PASSWORD + "-new", token, demo_password)
    for secret in secrets_:
        assert secret not in logged
    dump = []
    with s.engine.connect() as c:
        for table in sa.inspect(c).get_table_names():
            dump += [repr(tuple(r)) for r in c.execute(sa.text(f"SELECT * FROM {table}"))]
        hashes = list(c.execute(sa.text("SELECT password_hash FROM app_user")).scalars())
    text = "\n".join(dump)
    for secret in secrets_:
        assert secret not in text
    assert "Name A-1" in text  # the dump does see stored text
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert auth.hash_token(token) in text  # only the token's hash is kept
    if s.engine.dialect.name == "sqlite":
        db_dir = settings.database_url.split("///", 1)[1].rsplit("/", 1)[0]
        import pathlib

        raw = b"".join(p.read_bytes() for p in pathlib.Path(db_dir).iterdir() if p.is_file())
        for secret in secrets_:
            assert secret.encode() not in raw


def test_audit_log_is_append_only(world):
    w, s = world, world.store
    assert [m for m in dir(s) if "audit" in m.lower() and not m.startswith("_")] == [
        "audit_log"]
    n = len(s.audit_log(limit=10_000))
    with s._sessions() as session:
        entry = session.get(AuditEntry, 1)
        entry.action = "forged"
        with pytest.raises(AuditLogIsAppendOnly):
            session.commit()
    with s._sessions() as session:
        session.delete(session.get(AuditEntry, 1))
        with pytest.raises(AuditLogIsAppendOnly):
            session.commit()
    with s._sessions() as session:
        for stmt in (sa.update(AuditEntry).values(actor="x"), sa.delete(AuditEntry)):
            with pytest.raises(AuditLogIsAppendOnly):
                session.execute(stmt)
        session.rollback()
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with s.engine.begin() as c:
                c.execute(sa.text(sql))
    if s.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with s.engine.begin() as c:
                c.execute(sa.text("TRUNCATE audit_log"))
    # erasure keeps the patient's entries (and adds one)
    s.erase_patient(w.pa, actor="dpo")
    after = s.audit_log(limit=10_000)
    assert len(after) == n + 1 and after[0].action == "patient.erase"
    assert s.audit_log(patient_id=w.pa, actor=w.admin_a)[0].action == "patient.erase"


def test_strict_store_needs_a_principal(world, settings):
    with Store.open(settings, strict=True) as strict:
        for call in (lambda: strict.list_patients(), lambda: strict.get_patient(world.pa),
                     lambda: strict.create_patient("S-1", actor="cli:someone")):
            with pytest.raises(PermissionDenied):
                call()
        assert [p.code for p in strict.list_patients(actor=world.doc_a)] == ["A-1"]
        name, password = strict.ensure_demo_user(clinic_id=world.a)
        assert (name, strict.ensure_demo_user(clinic_id=world.a)) == ("demo", ("demo", None))
        assert strict.authenticate("demo", password).role == "practitioner"
        assert len(password) >= 16


def test_account_input_checks(store):
    clinic = store.create_clinic("C", actor="setup")
    for name, password in (("ab", PASSWORD), ("bad name", PASSWORD), ("x" * 65, PASSWORD),
                           ("short.pw", "short"), ("same.as.name", "same.as.name")):
        with pytest.raises(AuthError):
            store.create_user(name, password, role="practitioner", clinic_id=clinic,
                              actor="setup")
    with pytest.raises(Exception, match="role"):
        store.create_user("good.name", PASSWORD, role="root", clinic_id=clinic, actor="setup")
    uid = store.create_user("Good.Name", PASSWORD, role="read_only", clinic_id=clinic,
                            actor="setup")
    assert store.list_users()[0].username == "good.name" and store.list_users()[0].id == uid
    with pytest.raises(Exception, match="taken"):
        store.create_user("good.name", PASSWORD, role="admin", clinic_id=clinic, actor="x")
    with pytest.raises(NotFoundError):
        store.reset_password("nobody", PASSWORD, actor="x")
    with store.engine.connect() as c:  # the production parameters (RFC 9106 low-memory)
        stored = c.execute(sa.text("SELECT password_hash FROM app_user")).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    me = store.authenticate("good.name", PASSWORD)
    with pytest.raises(AuthError):
        store.change_password(me, "wrong", PASSWORD + "x")
    store.change_password(me, PASSWORD, PASSWORD + "x")
    assert store.authenticate("good.name", PASSWORD + "x").user_id == uid


def test_import_folder_as_a_principal_stays_in_its_clinic(world, tmp_path):
    from analyzer.store.importer import import_folder, reanalyze
    from test_store_support import make_folder

    w, s = world, world.store
    make_folder(tmp_path / "in", {"2026-03-14": 2}, start_seed=50)
    r = import_folder(s, tmp_path / "in", "A-NEW", actor=w.doc_a, analyse=fake_analyse(),
                      progress=False)
    assert (r.added, r.analysed) == (2, 2)
    assert s.find_patient("A-NEW", actor=w.doc_a).clinic_id == w.a
    before = s.counts()["photo"]
    with pytest.raises((PermissionDenied, DuplicateError)):  # codes are unique across clinics
        import_folder(s, tmp_path / "in", "A-1", actor=w.doc_b, analyse=None, progress=False)
    assert s.counts()["photo"] == before
    assert reanalyze(s, actor=w.doc_b, analyse=fake_analyse("v9"), progress=False).photos == 2
