"""Dashboard render time: a patient with 20 visits against a patient with none.

Both are rendered with ``streamlit.testing.v1.AppTest`` on the patient-record
and progress pages, signed in as a clinic user, in the same run.  Analyses are
stored (the 20 visits reuse real analyses of the demo photos, re-encoded so
each photo is distinct), so rendering must never re-analyse.  Target: ratio
(20 visits ÷ empty) ≤ 3.

Run: ``.venv/bin/python benchmarks/dashboard.py [--visits 20] [--repeat 3]``
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GLOG_minloglevel", "2")
PAGES = ("record.py", "progress.py")


def build(store, principal, visits: int) -> tuple[int, int]:
    """A patient with ``visits`` visits (one analysed photo each) and an empty one."""
    from analyzer.pipeline import analyze

    photos = sorted((ROOT / "sample_images" / "demo_patient_a").glob("*.jpg"))
    results = {p: analyze(p).result.to_dict() for p in photos}
    full = store.create_patient("BENCH-20", actor=principal)
    empty = store.create_patient("BENCH-0", actor=principal)
    start = date(2025, 1, 6)
    for i in range(visits):
        src = photos[i % len(photos)]
        buf = io.BytesIO()
        Image.open(src).save(buf, "JPEG", quality=80 + i % 15, comment=f"visit {i}".encode())
        visit = store.add_visit(full.id, start + timedelta(weeks=3 * i), actor=principal,
                                procedure="micro-needling" if i % 2 == 0 else None)
        photo = store.add_photo(visit.id, buf.getvalue(), actor=principal)
        store.save_analysis(photo.id, results[src], actor=principal)
    return full.id, empty.id


def render_seconds(principal, patient_id: int, page: str, repeat: int) -> float:
    from streamlit.testing.v1 import AppTest

    best = float("inf")
    for _ in range(repeat):
        at = AppTest.from_file(str(ROOT / "ui" / "pages" / page), default_timeout=300)
        now = time.time()
        at.session_state["principal"] = principal
        at.session_state["signed_in_at"] = now
        at.session_state["last_seen"] = now
        at.session_state["patient_id"] = patient_id
        t0 = time.perf_counter()
        at.run()
        best = min(best, time.perf_counter() - t0)
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception}")
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="dashboard render benchmark")
    parser.add_argument("--visits", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from streamlit import logger as st_logger

    st_logger.set_log_level("error")  # AppTest outside a server warns on every st.cache call
    data = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    os.environ["ANALYZER_DATA_DIR"] = str(data)
    from analyzer import dashboard_data as dd
    from analyzer.config import Settings
    from analyzer.store import Store

    store = Store.open(Settings.from_env())
    clinic = store.create_clinic("Bench clinic", actor="benchmark")
    user, password = store.ensure_demo_user(clinic_id=clinic)
    principal = dd.sign_in(store, user, password)
    full, empty = build(store, principal, args.visits)
    print(f"patient with {args.visits} visits vs an empty patient; best of {args.repeat} AppTest runs")
    for page in PAGES:
        render_seconds(principal, empty, page, 1)  # warm-up: imports, caches
        t_empty = render_seconds(principal, empty, page, args.repeat)
        t_full = render_seconds(principal, full, page, args.repeat)
        print(f"{page:12s} empty {t_empty * 1000:7.0f} ms   {args.visits} visits {t_full * 1000:7.0f} ms"
              f"   ratio {t_full / t_empty:5.2f}  (target ≤ 3)")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
