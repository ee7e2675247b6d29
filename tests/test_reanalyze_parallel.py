"""Batch re-analysis on a local process pool and on a Dask cluster (issue 10)."""
import shutil
from pathlib import Path

import pytest

from analyzer.config import Settings
from analyzer.store import Store
from analyzer.store.importer import default_analyse, import_folder, reanalyze

COURSE = Path(__file__).resolve().parents[1] / "sample_images" / "demo_patient_a"


@pytest.fixture
def imported(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for src in sorted(COURSE.glob("*.jpg"))[:3]:
        shutil.copy(src, folder / src.name)
    settings = Settings(data_dir=tmp_path / "data")
    store = Store.open(settings)
    report = import_folder(store, folder, "P-1", actor="test", visit_date="2026-03-02",
                           analyse=None, progress=False)
    assert report.files == 3 and not report.problems
    yield store
    store.close()


def summaries(store) -> dict:
    out = {}
    for visit in store.patient_timeline(store.find_patient("P-1").id, actor="test"):
        for photo in visit.photos:
            a = photo.latest_analysis
            out[photo.id] = {"texture": a.texture, "redness": a.redness,
                             "pigmentation": a.pigmentation} if a and a.status == "ok" else None
    return out


@pytest.mark.slow
def test_process_pool_matches_in_process(imported):
    report = reanalyze(imported, actor="test", workers=2, progress=False)
    assert (report.photos, report.analysed, report.failed) == (3, 3, 0)
    assert report.photos_per_second_per_core > 0
    parallel = summaries(imported)
    assert all(parallel.values())
    again = reanalyze(imported, actor="test", workers=2, progress=False)
    assert again.photos == 0  # nothing left: resumable, no duplicates
    pid = sorted(parallel)[0]
    direct = default_analyse(imported.photo_bytes(pid, actor="test"), imported.settings)["summary"]
    for key in ("texture", "redness", "pigmentation"):
        assert parallel[pid][key] == pytest.approx(direct[key], rel=1e-6)


@pytest.mark.slow
def test_dask_local_cluster(imported):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        report = reanalyze(imported, actor="test", executor=client.get_executor(), workers=2,
                           progress=False)
    assert (report.analysed, report.failed) == (3, 0)
    assert all(summaries(imported).values())
