"""Migrations: models match the newest revision; revision 0001 with data upgrades."""
from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa

from analyzer.store import Store, db
from analyzer.store.models import Base
from test_store_support import settings, store_url  # noqa: F401


def test_models_match_newest_revision(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = db.make_engine(store_url)
    try:
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision() == "0003"
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_from_revision_0001_with_data(settings, store_url):
    engine = db.make_engine(store_url)
    db.upgrade(engine, "0001")
    now = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    assert "texture" not in t["analysis"].c
    result = {"algorithm_version": "old", "summary": {"texture": 2.5, "redness": 7,
                                                      "pigmentation": None},
              "quality": {"overall": "warn"}}
    with engine.begin() as c:  # ids from the database, as the old code would have made them
        def insert(table, **values):
            return c.execute(t[table].insert().values(**values)).inserted_primary_key[0]

        pid = insert("patient", code="OLD-1", name=None, consent=True,
                     consent_date=date(2026, 1, 5), created_at=now)
        vid = insert("visit", patient_id=pid, visit_date=date(2026, 3, 14),
                     procedure="micro-needling", needle_depth_mm=1.0, created_at=now)
        photo_id = insert("photo", visit_id=vid, patient_id=pid, sha256="a" * 64,
                          source_sha256="b" * 64, blob_key=f"aa/aa/{'a' * 64}.jpg",
                          media_type="image/jpeg", size_bytes=10,
                          sanitize_method="jpeg-segments", view="frontal", width=10, height=10,
                          orientation=1, source_format="JPEG", capture={}, created_at=now)
        for i, res in ((1, result), (2, None)):
            insert("analysis", photo_id=photo_id, algorithm_version=f"old{i}", settings_key="k",
                   settings={}, status="ok" if res else "failed",
                   error=None if res else "no face", result=res, quality_overall="warn",
                   created_at=now)
        insert("audit_log", at=now, actor="old", action="x", entity="patient", entity_id=pid,
               patient_id=pid)
    engine.dispose()

    with Store.open(settings) as store:  # upgrades to the newest revision
        assert db.current_revision(store.engine) == "0003"
        analyses = store.analyses(photo_id)
        assert [(a.texture, a.redness, a.pigmentation) for a in analyses] == [
            (2.5, 7.0, None), (None, None, None)]
        tl = store.patient_timeline(store.find_patient("OLD-1").id)
        assert tl[0].procedure == "micro-needling"
        assert tl[0].photos[0].latest_analysis.algorithm_version == "old1"
        # the upgraded database takes new writes; ids continue after the old rows
        v = store.add_visit(pid, "2026-04-01", actor="new")
        assert v.id > vid
        assert store.create_patient("NEW-1", actor="new").id > pid
        assert [e.action for e in store.audit_log(limit=10)][-1] == "x"


def test_downgrade_to_0001_and_back(store_url):
    from alembic import command

    engine = db.make_engine(store_url)
    try:
        db.upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(db.alembic_config(conn), "0001")
        assert db.current_revision(engine) == "0001"
        db.upgrade(engine)
        assert db.current_revision(engine) == "0003"
    finally:
        engine.dispose()
