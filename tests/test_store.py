"""Store: repository API, import, reanalysis, export and erasure on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import os
import stat
import zipfile
from datetime import date

import pytest

from analyzer.errors import (DuplicateError, FaceNotFoundError, IntakeError,
                             NotFoundError, StoreError)
from analyzer.store import Store
from analyzer.store.importer import import_folder, reanalyze
from test_store_support import (exif_with, fake_analyse, jpeg_bytes, make_folder,  # noqa: F401
                                settings, store, store_url)


def test_patient_crud_and_audit(store):
    p = store.create_patient("P-001", actor="dr.a", name="Jane Example", skin_type="3",
                             consent=True, consent_date="2026-03-01")
    assert (p.code, p.skin_type, p.consent, p.consent_date) == ("P-001", "III", True,
                                                                date(2026, 3, 1))
    with pytest.raises(DuplicateError, match="P-001"):
        store.create_patient("P-001", actor="dr.a")
    with pytest.raises(StoreError, match="actor"):
        store.create_patient("P-002", actor="")
    with pytest.raises(StoreError, match="skin type"):
        store.create_patient("P-002", actor="x", skin_type="VII")
    p2 = store.update_patient(p.id, actor="dr.b", skin_type="IV")
    assert p2.skin_type == "IV"
    assert [x.code for x in store.list_patients(search="jane")] == ["P-001"]
    assert store.find_patient("nope") is None
    with pytest.raises(NotFoundError):
        store.get_patient(999)
    log = store.audit_log(patient_id=p.id)
    assert [(e.action, e.actor) for e in log] == [("patient.update", "dr.b"),
                                                  ("patient.create", "dr.a")]
    assert "Jane" not in json.dumps([e.details for e in store.audit_log()])


def test_visit_photo_analysis_timeline(store):
    clinic = store.create_clinic("Clinic A", actor="admin")
    doc = store.create_practitioner("Dr A", actor="admin", clinic_id=clinic, role="physician")
    p = store.create_patient("P1", actor="dr", clinic_id=clinic)
    v1 = store.add_visit(p.id, "2026-03-14", actor="dr", procedure="micro-needling",
                         device="Dermapen 4", needle_depth_mm=1.5, passes=3, serum="PRP",
                         notes="baseline", post_care="SPF 50", practitioner_id=doc)
    v0 = store.add_visit(p.id, date(2026, 2, 1), actor="dr")
    with pytest.raises(StoreError, match="needle depth"):
        store.add_visit(p.id, "2026-03-15", actor="dr", needle_depth_mm=9)
    data = jpeg_bytes(1)
    ph = store.add_photo(v1.id, data, actor="dr", view="left-45", skin_condition="clean",
                         lighting="ring light", camera_setup="tripod 1 m")
    assert ph.created and ph.view == "left_45" and ph.media_type == "image/jpeg"
    again = store.add_photo(v1.id, data, actor="dr")
    assert (again.id, again.created) == (ph.id, False)
    with pytest.raises(IntakeError):
        store.add_photo(v1.id, b"not a photo", actor="dr")
    with pytest.raises(StoreError, match="view"):
        store.add_photo(v1.id, jpeg_bytes(2), actor="dr", view="profile")

    a1 = store.save_analysis(ph.id, fake_analyse("v1")(data, None), actor="dr")
    assert a1.status == "ok" and a1.redness == 1.0 and a1.pigmentation is None  # NaN → NULL
    a2 = store.save_analysis(ph.id, fake_analyse("v2")(data, None), actor="dr")
    assert store.save_analysis(ph.id, fake_analyse("v2")(data, None), actor="dr").id == a2.id
    assert [a.algorithm_version for a in store.analyses(ph.id)] == ["v1", "v2"]

    timeline = store.patient_timeline(p.id)
    assert [v.visit_date for v in timeline] == [date(2026, 2, 1), date(2026, 3, 14)]
    assert timeline[0].id == v0.id and timeline[0].photos == []
    shown = timeline[1].photos[0]
    assert shown.latest_analysis.id == a2.id and shown.latest_analysis.result["summary"]
    assert timeline[1].needle_depth_mm == 1.5 and timeline[1].serum == "PRP"

    ph2 = store.add_photo(v0.id, jpeg_bytes(3), actor="dr")
    cid = store.save_comparison(ph2.id, ph.id, {"algorithm_version": "v2", "delta": 1},
                                actor="dr")
    assert store.comparisons(p.id)[0]["id"] == cid
    other = store.create_patient("P2", actor="dr")
    v_other = store.add_visit(other.id, "2026-01-01", actor="dr")
    ph3 = store.add_photo(v_other.id, jpeg_bytes(4), actor="dr")
    with pytest.raises(StoreError, match="same patient"):
        store.save_comparison(ph.id, ph3.id, {}, actor="dr")
    actions = {e.action for e in store.audit_log(patient_id=p.id)}
    assert {"visit.create", "photo.add", "analysis.ok", "comparison.create"} <= actions


def test_stored_original_is_sanitized_read_only_and_verified(store):
    p = store.create_patient("P1", actor="dr")
    v = store.add_visit(p.id, "2026-03-14", actor="dr")
    data = jpeg_bytes(5, exif=exif_with("2026:03:14 09:30:00", gps=True, orientation=6))
    ph = store.add_photo(v.id, data, actor="dr")
    stored = store.photo_bytes(ph.id)
    assert b"GPSSECRET" not in stored and stored != data
    assert ph.orientation == 6 and ph.captured_at.isoformat() == "2026-03-14T09:30:00"
    path = store.blobs.path(ph.blob_key)
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not [f for f in path.parent.iterdir() if f.name.startswith(".tmp")]
    os.chmod(path, 0o644)
    path.write_bytes(stored[:-10] + b"0123456789")  # damage it behind the store's back
    with pytest.raises(StoreError, match="damaged"):
        store.photo_bytes(ph.id)


def test_import_folder_dates_views_and_rerun(store, tmp_path):
    src = tmp_path / "in"
    make_folder(src, {"2026-03-14": 2, "2026-04-20 follow-up": 1})
    (src / "loose").mkdir()
    (src / "loose" / "exif_dated_left.jpg").write_bytes(
        jpeg_bytes(50, exif=exif_with("2026:05:01 10:00:00")))
    (src / "loose" / "undated.jpg").write_bytes(jpeg_bytes(51))
    (src / "notes.jpg").write_bytes(b"this is not a photo")
    (src / "readme.txt").write_text("ignored")
    r = import_folder(store, src, "P7", actor="importer", analyse=fake_analyse(),
                      algorithm_version="test-1", progress=False, skin_condition="clean")
    assert (r.files, r.added, r.analysed, r.skipped) == (6, 4, 4, 2)
    assert {name for name, _ in r.problems} == {"loose/undated.jpg", "notes.jpg"}
    p = store.find_patient("P7")
    tl = store.patient_timeline(p.id)
    assert [(v.visit_date.isoformat(), len(v.photos)) for v in tl] == [
        ("2026-03-14", 2), ("2026-04-20", 1), ("2026-05-01", 1)]
    assert tl[2].photos[0].view == "left_45" and tl[0].photos[0].skin_condition == "clean"
    before = store.counts()
    r2 = import_folder(store, src, "P7", actor="importer", analyse=fake_analyse(),
                       algorithm_version="test-1", progress=False)
    assert (r2.added, r2.already_stored, r2.analysed) == (0, 4, 0)
    after = store.counts()
    assert {k: after[k] for k in ("photo", "visit", "analysis", "patient")} == \
           {k: before[k] for k in ("photo", "visit", "analysis", "patient")}
    r3 = import_folder(store, src, "P7", actor="importer", visit_date="2026-06-01",
                       analyse=None, progress=False)
    assert r3.added == 1  # the undated photo, now with a date


def test_failed_analysis_keeps_photo_and_reanalyze_keeps_old(store, tmp_path):
    src = tmp_path / "in"
    make_folder(src, {"2026-03-14": 3})
    calls = {"n": 0}

    def flaky(data, settings):
        calls["n"] += 1
        if calls["n"] == 1:
            raise FaceNotFoundError("no face found in the photo")
        if calls["n"] == 2:
            raise RuntimeError("bug")
        return fake_analyse("v1")(data, settings)

    r = import_folder(store, src, "P1", actor="t", analyse=flaky, algorithm_version="v1",
                      progress=False)
    assert (r.added, r.analysed, r.analysis_failed) == (3, 1, 2)
    assert "no face" in r.problems[0][1] and "internal error" in r.problems[1][1]
    p = store.find_patient("P1")
    photos = [ph for v in store.patient_timeline(p.id) for ph in v.photos]
    assert len(photos) == 3
    for ph in photos:  # every photo still stored and readable
        assert store.blobs.exists(ph.blob_key) and store.photo_bytes(ph.id)
    assert sorted(ph.latest_analysis.status for ph in photos) == ["failed", "failed", "ok"]
    # same version: failures stay unless retried
    assert reanalyze(store, actor="t", analyse=fake_analyse("v1"), algorithm_version="v1",
                     progress=False).photos == 0
    rr = reanalyze(store, actor="t", analyse=fake_analyse("v1"), algorithm_version="v1",
                   retry_failed=True, progress=False)
    assert (rr.photos, rr.analysed) == (2, 2)
    # algorithm change: everything recomputed, old analyses kept
    rv = reanalyze(store, actor="t", analyse=fake_analyse("v2"), algorithm_version="v2",
                   progress=False)
    assert (rv.photos, rv.analysed, rv.failed) == (3, 3, 0)
    for ph in photos:
        assert [a.algorithm_version for a in store.analyses(ph.id)] == ["v1", "v2"]
        assert store.get_photo(ph.id).latest_analysis.algorithm_version == "v2"


def test_export_and_erase(store, tmp_path):
    src = tmp_path / "in"
    make_folder(src, {"2026-03-14": 2, "2026-04-01": 1})
    import_folder(store, src, "P1", actor="t", analyse=fake_analyse(), progress=False)
    import_folder(store, src, "P2", actor="t", analyse=fake_analyse(), progress=False)
    p1 = store.update_patient(store.find_patient("P1").id, actor="t", name="Secret Name")
    out = store.export_patient(p1.id, tmp_path / "exports", actor="auditor")
    with zipfile.ZipFile(out) as zf:
        record = json.loads(zf.read("record.json"))
        assert record["patient"]["code"] == "P1" and record["patient"]["name"] == "Secret Name"
        files = [ph["file"] for v in record["visits"] for ph in v["photos"]]
        assert len(files) == 3 and all(zf.read(f) for f in files)
        assert record["visits"][0]["photos"][0]["analyses"][0]["status"] == "ok"
    assert not [f for f in out.parent.iterdir() if f.name.startswith(".export-")]
    p1_keys = [ph.blob_key for v in store.patient_timeline(p1.id) for ph in v.photos]

    counts = store.erase_patient(p1.id, actor="dpo")
    assert counts["photos"] == 3 and counts["patients"] == 1
    assert counts["files"] == 0  # P2 holds identical photos: the shared files stay
    assert store.find_patient("P1") is None
    with pytest.raises(NotFoundError):
        store.patient_timeline(p1.id)
    p2 = store.find_patient("P2")
    assert all(store.blobs.exists(k) for k in p1_keys)
    assert store.erase_patient(p2.id, actor="dpo")["files"] == 3
    assert list(store.blobs.keys()) == [] and store.orphan_blobs() == []
    c = store.counts()
    assert (c["patient"], c["visit"], c["photo"], c["analysis"]) == (0, 0, 0, 0)
    actions = [(e.action, e.actor) for e in store.audit_log(patient_id=p1.id)][:2]
    assert actions == [("patient.erase", "dpo"), ("patient.export", "auditor")]
    assert "Secret" not in json.dumps([e.details for e in store.audit_log(limit=1000)])


def test_gps_never_reaches_disk(store, tmp_path):
    """Import a JPEG carrying GPS, XMP and a comment; no byte of them is in the data dir."""
    src = tmp_path / "in" / "2026-03-14"
    src.mkdir(parents=True)
    data = jpeg_bytes(9, exif=exif_with("2026:03:14 10:00:00", gps=True, secret="DESC-SECRET"),
                      comment=b"COMMENT-SECRET", xmp=b"<x:xmpmeta>XMP-SECRET</x:xmpmeta>")
    assert b"GPSSECRET" in data and b"XMP-SECRET" in data
    (src / "img.jpg").write_bytes(data)
    import_folder(store, tmp_path / "in", "P1", actor="t", analyse=fake_analyse(),
                  progress=False)
    store.close()
    blobs = [f for f in (tmp_path / "data").rglob("*") if f.is_file()]
    db_files = [f for f in (tmp_path / "db").rglob("*") if f.is_file()] \
        if (tmp_path / "db").exists() else []
    assert blobs
    for f in blobs + db_files:
        content = f.read_bytes()
        for secret in (b"GPSSECRET", b"XMP-SECRET", b"COMMENT-SECRET", b"DESC-SECRET"):
            assert secret not in content, (f, secret)


def test_fsspec_blob_store_roundtrip(settings, tmp_path):
    from analyzer.store import FsspecBlobStore, open_blob_store

    url = f"memory://analyzer-test-{os.getpid()}-{id(tmp_path)}"
    blobs = open_blob_store(url)
    assert isinstance(blobs, FsspecBlobStore)
    with Store.open(settings, blobs=blobs) as s:
        p = s.create_patient("P1", actor="t")
        v = s.add_visit(p.id, "2026-03-14", actor="t")
        ph = s.add_photo(v.id, jpeg_bytes(3), actor="t")
        assert s.photo_bytes(ph.id)[:2] == b"\xff\xd8"
        assert list(blobs.keys()) == [ph.blob_key]


def test_open_rejects_old_schema_without_migrate(settings, store_url):
    from analyzer.store import db

    engine = db.make_engine(store_url)
    db.upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(StoreError, match="revision 0001"):
        Store.open(settings, migrate=False)
    Store.open(settings).close()  # default: upgrades


def test_switching_to_wal_waits_out_a_locked_database():
    """SQLite can refuse the WAL switch at once while another process converts a new
    database; the switch is retried (and other errors, or a lock that stays, are not hidden)."""
    import sqlite3

    from analyzer.store.db import set_wal

    class Cursor:
        def __init__(self, failures, message="database is locked"):
            self.failures, self.message, self.calls = failures, message, 0

        def execute(self, sql):
            assert sql == "PRAGMA journal_mode=WAL"
            self.calls += 1
            if self.calls <= self.failures:
                raise sqlite3.OperationalError(self.message)

    cur = Cursor(failures=3)
    set_wal(cur)
    assert cur.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        set_wal(Cursor(failures=10 ** 6), timeout_s=0.2)
    other = Cursor(failures=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        set_wal(other)
    assert other.calls == 1


def test_sqlite_default_is_wal_in_data_dir(tmp_path):
    from sqlalchemy import text

    from analyzer.config import Settings

    s = Settings.from_env({"ANALYZER_DATA_DIR": str(tmp_path / "d")})
    assert s.database_url is None
    with Store.open(s) as store:
        assert (tmp_path / "d" / "analyzer.db").exists()
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    env = {"DATABASE_URL": "postgres://u@h/db"}
    from analyzer.store.db import database_url

    assert database_url(Settings.from_env(env)) == "postgresql+psycopg://u@h/db"
    with pytest.raises(StoreError, match="unsupported"):
        Store.open(Settings(database_url="mysql://x/y"))
