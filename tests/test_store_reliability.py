"""Reliability: SIGKILL mid-import, concurrent writers, the CLI end to end."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from analyzer.config import Settings
from analyzer.store import Store
from analyzer.store.importer import import_folder
from test_store_support import (FACE, ROOT, fake_analyse, make_folder, run_py,  # noqa: F401
                                settings, store_url)

TESTS = str(Path(__file__).resolve().parent)

IMPORT_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from analyzer.config import Settings
from analyzer.store import Store
from analyzer.store.importer import import_folder
from test_store_support import fake_analyse
fast = fake_analyse("test-1")
def slow(data, s):
    time.sleep({delay})
    return fast(data, s)
settings = Settings(data_dir={data!r}, database_url={url!r})
with Store.open(settings) as store:
    for folder, code in {jobs!r}:
        r = import_folder(store, folder, code, actor={actor!r}, analyse=slow,
                          algorithm_version="test-1", progress=False)
        print(code, r.added, r.already_stored, r.analysed, r.analysis_failed, flush=True)
"""


def _script(settings, jobs, actor="proc", delay=0.05) -> str:
    return IMPORT_SCRIPT.format(tests=TESTS, data=str(settings.data_dir),
                                url=settings.database_url, jobs=jobs, actor=actor, delay=delay)


def _assert_consistent(store: Store, expect_photos: int | None = None) -> None:
    """Every photo row has an intact stored file; nothing is duplicated."""
    with store.engine.connect() as c:
        if store.engine.dialect.name == "sqlite":
            assert c.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert c.execute(text("PRAGMA foreign_key_check")).all() == []
        dup = c.execute(text("SELECT patient_id, sha256, COUNT(*) FROM photo "
                             "GROUP BY patient_id, sha256 HAVING COUNT(*) > 1")).all()
        assert dup == []
        dup = c.execute(text("SELECT photo_id, algorithm_version, COUNT(*) FROM analysis "
                             "GROUP BY photo_id, algorithm_version HAVING COUNT(*) > 1")).all()
        assert dup == []
        visits = c.execute(text("SELECT patient_id, visit_date, COUNT(*) FROM visit "
                                "GROUP BY patient_id, visit_date HAVING COUNT(*) > 1")).all()
        assert visits == []
    for p in store.list_patients():
        for v in store.patient_timeline(p.id):
            for ph in v.photos:
                assert store.photo_bytes(ph.id)[:2] in (b"\xff\xd8", b"\x89P")
    if expect_photos is not None:
        assert store.counts()["photo"] == expect_photos


def _photo_count(settings) -> int:
    with Store.open(settings) as s:
        return s.counts()["photo"]


@pytest.mark.slow
def test_import_killed_midway_then_rerun_completes(settings, tmp_path):
    files = make_folder(tmp_path / "in", {"2026-03-14": 5, "2026-04-11": 5})
    Store.open(settings).close()  # schema exists before the race starts
    killed_at = []
    for threshold in (2, 6):  # two kills at different points of the import
        proc = run_py(_script(settings, [(str(tmp_path / "in"), "P1")], delay=0.08))
        deadline = time.monotonic() + 60
        while _photo_count(settings) < threshold and proc.poll() is None:
            assert time.monotonic() < deadline, "the import did not progress"
            time.sleep(0.02)
        time.sleep(0.03 * threshold)  # land somewhere inside the next photo
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        killed_at.append(_photo_count(settings))
        with Store.open(settings) as store:
            _assert_consistent(store)
    assert killed_at[0] < len(files), "killed too late to test anything"
    with Store.open(settings) as store:  # re-run to completion, in process
        r = import_folder(store, tmp_path / "in", "P1", actor="rerun",
                          analyse=fake_analyse("test-1"), algorithm_version="test-1",
                          progress=False)
        assert r.added + r.already_stored == len(files) and r.skipped == 0
        _assert_consistent(store, expect_photos=len(files))
        c = store.counts()
        assert (c["patient"], c["visit"], c["analysis"]) == (1, 2, len(files))
        # blobs written just before a kill are picked up by the re-run: no leftovers
        assert store.orphan_blobs() == []
        tmp = [f for f in (settings.data_dir / "photos").rglob(".tmp-*")]
        assert len(tmp) <= 2  # at most the file being written at each kill


@pytest.mark.slow
def test_two_processes_writing_at_once(settings, tmp_path):
    shared = tmp_path / "shared"
    make_folder(shared, {"2026-03-14": 4, "2026-04-11": 4})
    own = [tmp_path / "a", tmp_path / "b"]
    make_folder(own[0], {"2026-05-01": 3}, start_seed=100)
    make_folder(own[1], {"2026-05-01": 3}, start_seed=200)
    procs = [run_py(_script(settings, [(str(shared), "SHARED"), (str(own[i]), f"OWN{i}"),
                                       (str(own[1 - i]), "CROSS")],
                            actor=f"proc{i}", delay=0.01)) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    with Store.open(settings) as store:
        _assert_consistent(store, expect_photos=8 + 3 + 3 + 6)
        counts = {p.code: sum(len(v.photos) for v in store.patient_timeline(p.id))
                  for p in store.list_patients()}
        assert counts == {"SHARED": 8, "OWN0": 3, "OWN1": 3, "CROSS": 6}
        c = store.counts()
        assert c["analysis"] == 20 and c["patient"] == 4
        actors = {e.actor for e in store.audit_log(limit=1000)}
        assert actors == {"proc0", "proc1"}


@pytest.mark.slow
def test_cli_import_reanalyze_export_erase_with_real_pipeline(tmp_path, store_url):
    """`python -m analyzer import` on real photos, configured only by environment."""
    from PIL import Image

    src = Image.open(FACE)
    (tmp_path / "in" / "2026-03-14").mkdir(parents=True)
    (tmp_path / "in" / "2026-04-11").mkdir(parents=True)
    src.save(tmp_path / "in" / "2026-03-14" / "front.jpg", quality=90)
    src.save(tmp_path / "in" / "2026-04-11" / "front.jpg", quality=80)
    (tmp_path / "in" / "2026-04-11" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    env = dict(os.environ, ANALYZER_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=store_url,
               ANALYZER_ACTOR="cli-test", PYTHONPATH=str(ROOT))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "analyzer", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    r = cli("import", str(tmp_path / "in"), "--patient", "C1", "--skin", "clean")
    assert r.returncode == 1, r.stderr  # one file skipped: reported, exit 1
    assert "2 added" in r.stdout and "2 analysed" in r.stdout
    assert "broken.jpg" in r.stderr and "import" in r.stderr  # progress bar on stderr
    r = cli("reanalyze", "--no-progress")
    assert r.returncode == 0 and "0 photos to analyse" in r.stdout
    r = cli("patients")
    assert r.stdout.split() == ["C1", "2", "visits", "2", "photos"]
    r = cli("export", "--patient", "C1", str(tmp_path / "c1.zip"))
    assert r.returncode == 0, r.stderr
    import zipfile

    with zipfile.ZipFile(tmp_path / "c1.zip") as zf:
        record = json.loads(zf.read("record.json"))
    analyses = [a for v in record["visits"] for ph in v["photos"] for a in ph["analyses"]]
    assert [a["status"] for a in analyses] == ["ok", "ok"]
    assert analyses[0]["result"]["face"]["landmarks"] == 478
    assert analyses[0]["texture"] == analyses[0]["result"]["summary"]["texture"]
    r = cli("erase", "--patient", "C1")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "--yes" in r.stderr
    r = cli("erase", "--patient", "C1", "--yes")
    assert r.returncode == 0 and "2 photos" in r.stdout
    r = cli("export", "--patient", "C1", str(tmp_path / "again.zip"))
    assert r.returncode == 2 and "no patient with code C1" in r.stderr
    with Store.open(Settings(data_dir=tmp_path / "data", database_url=store_url)) as store:
        actions = [e.action for e in store.audit_log(limit=100)]
        assert actions[0] == "patient.erase" and "patient.export" in actions
        assert {e.actor for e in store.audit_log(limit=100)} == {"cli-test"}
