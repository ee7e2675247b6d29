"""Reports: PDF progress report, aligned time-lapse, metric export (issue 11).

One SQLite store per module, seeded with ``sample_images/demo_patient_a``:
every photo stored and analysed, and only the latest follow-up compared with
the baseline, so the report uses a stored comparison (latest visit) and
aligns the others itself.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "sample_images" / "demo_patient_a"
CODE = "RPT-A"
NAME = "Jane Reportname"
ACTOR = "test:report"
SESSION_DAYS = (0, 42, 84)
TREATMENT = dict(procedure="micro-needling", device="test pen", needle_depth_mm=1.5, passes=4,
                 serum="PRP")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A store with one analysed course (clinic A) and two small patients."""
    from analyzer.compare import compare_analysed
    from analyzer.config import Settings
    from analyzer.errors import AnalyzerError
    from analyzer.pipeline import analyze
    from analyzer.store import Store

    data = tmp_path_factory.mktemp("report-data")
    settings = Settings(data_dir=data)
    store = Store.open(settings)
    clinic_a = store.create_clinic("Report clinic A", actor=ACTOR)
    clinic_b = store.create_clinic("Report clinic B", actor=ACTOR)
    patient = store.create_patient(CODE, actor=ACTOR, name=NAME, skin_type="II", consent=True,
                                   clinic_id=clinic_a)
    analysed, skipped = {}, []
    first = None
    for jpg in sorted(COURSE.glob("*.jpg")):
        meta = json.loads(jpg.with_suffix(".json").read_text())
        day = date.fromisoformat(meta["date"])
        first = first or day
        treatment = TREATMENT if (day - first).days in SESSION_DAYS else {}
        visit = store.add_visit(patient.id, day, actor=ACTOR, **treatment)
        try:
            photo = store.add_photo(visit.id, jpg.read_bytes(), actor=ACTOR, view="frontal")
            done = analyze(store.photo_bytes(photo.id), settings)
        except AnalyzerError as exc:  # a photo intake refuses stays a visit without photos
            skipped.append(f"{jpg.name}: {exc}")
            continue
        store.save_analysis(photo.id, done.result.to_dict(), actor=ACTOR)
        analysed[photo.id] = done
    ids = sorted(analysed)
    assert len(ids) >= 3, f"too few demo photos could be analysed: {skipped}"
    comparison, _ = compare_analysed(analysed[ids[0]], analysed[ids[-1]])
    store.save_comparison(ids[0], ids[-1], comparison.to_dict(), actor=ACTOR)
    # A patient of clinic B with a visit but no photos, and one without visits.
    other = store.create_patient("RPT-B", actor=ACTOR, clinic_id=clinic_b)
    store.add_visit(other.id, "2026-01-05", actor=ACTOR, procedure="peel")
    empty = store.create_patient("RPT-EMPTY", actor=ACTOR, clinic_id=clinic_b)
    yield {"store": store, "settings": settings, "data": data, "patient": patient,
           "other": other, "empty": empty, "clinic_a": clinic_a, "clinic_b": clinic_b,
           "photo_ids": ids, "skipped": skipped}
    store.close()


@pytest.fixture(scope="module")
def pdf_bytes(seeded):
    from analyzer.report import build_report

    return build_report(seeded["store"], seeded["patient"].id, actor=ACTOR)


@pytest.fixture(scope="module")
def pdf_text(pdf_bytes):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf_bytes))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _squash(text: str) -> str:
    """Without whitespace: table cells may wrap anywhere."""
    return re.sub(r"\s+", "", text)


# ----------------------------------------------------------------- PDF


def test_pdf_text_holds_the_stored_metrics(seeded, pdf_bytes, pdf_text):
    from analyzer.metrics import REGISTRY
    from analyzer.report import format_number
    from analyzer.version import ALGORITHM_VERSION

    store = seeded["store"]
    assert pdf_bytes.startswith(b"%PDF")
    text = _squash(pdf_text)
    assert CODE in text
    assert _squash(NAME) not in text and "Reportname" not in pdf_text  # code only, by default
    assert "notadiagnosis" in text.lower()
    # Timeline: every analysed visit's stored summary indices.
    for visit in store.patient_timeline(seeded["patient"].id):
        assert visit.visit_date.isoformat() in text
        for photo in visit.photos:
            a = photo.latest_analysis
            for value in (a.texture, a.redness, a.pigmentation):
                assert format_number(value) in text, (visit.visit_date, value)
    # The stored comparison: every whole-face metric with its value, change and status.
    comp = store.comparisons(seeded["patient"].id)[-1]["result"]
    whole = comp["regions"]["whole_face"]
    assert len(whole) >= 10
    for name, m in whole.items():
        assert name in text
        assert format_number(m["followup"]) in text, name
        assert format_number(m["delta"], signed=True) in text, name
        assert _squash(m["status"]) in text
    for key, d in comp["delta"].items():
        assert format_number(d["value"], signed=True) in text, key
    # Per-region appendix and methods: registry names and units, algorithm version.
    for region, metrics in comp["regions"].items():
        for name, m in list(metrics.items())[:3]:
            assert format_number(m["baseline"]) in text, (region, name)
    for metric in REGISTRY.values():
        assert metric.name in text
    assert ALGORITHM_VERSION in text


def test_pdf_shows_where_the_latest_visit_changed(seeded, pdf_bytes):
    from pypdf import PdfReader

    comp = seeded["store"].comparisons(seeded["patient"].id)[-1]
    latest = next(v for v in seeded["store"].patient_timeline(seeded["patient"].id)
                  if any(p.id == comp["followup_photo_id"] for p in v.photos))
    pages = PdfReader(io.BytesIO(pdf_bytes)).pages
    heading = _squash(f"Where it changed: baseline to {latest.visit_date.isoformat()}")
    hit = [p for p in pages if heading in _squash(p.extract_text() or "")]
    assert hit, "no change-map section"
    assert len(hit[0].images) >= 3                 # redness, pigmentation and texture maps
    assert "Redness change" in hit[0].extract_text()


def test_report_charts_the_compared_change(seeded):
    """The PDF's progress chart draws a compared visit as baseline + the stored delta
    (not its own whole-photo value), and a visit without a comparison as its own value."""
    from analyzer.report.charts import summary_series
    from analyzer.report.course import load_course

    course = load_course(seeded["store"], seeded["patient"].id, actor=ACTOR)
    comp = course.comparisons[-1]["result"]
    series = course.series()
    own = {p.id: p.latest_analysis for _, p in series}
    charted = summary_series(course)
    ids = seeded["photo_ids"]
    for key in ("texture", "redness", "pigmentation"):
        points = {d: v for d, v, _ in charted[key]}
        dates = {p.id: v.visit_date for v, p in series}
        expected = getattr(own[ids[0]], key) + comp["delta"][key]["value"]
        assert points[dates[ids[-1]]] == pytest.approx(expected, rel=1e-9)
        assert charted[key][-1][2] == comp["delta"][key]["mdc"]      # its band: the MDC compare applied
        assert points[dates[ids[-1]]] != pytest.approx(getattr(own[ids[-1]], key), rel=1e-6)
        middle = [i for i in ids[1:-1]]                 # no stored comparison: own values
        for i in middle:
            assert points[dates[i]] == pytest.approx(getattr(own[i], key), rel=1e-9)


def test_pdf_pages_render_and_are_not_blank(pdf_bytes, tmp_path):
    from PIL import Image
    from pypdf import PdfReader

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed (Debian package poppler-utils; "
                    "scripts/pdf_tools.sh installs it)")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(pdf_bytes)
    pages = len(PdfReader(io.BytesIO(pdf_bytes)).pages)
    assert pages >= 5
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)
    images = sorted(tmp_path.glob("page*.png"))
    assert len(images) == pages
    inked = []
    for path in images:
        grey = np.asarray(Image.open(path).convert("L"))
        inked.append(float((grey < 200).mean()))
    assert min(inked) > 0.01, inked  # more than the running header and footer
    assert max(inked) > 0.2, inked   # the photo page


def test_report_of_a_patient_without_photos_and_without_visits(seeded):
    from pypdf import PdfReader

    from analyzer.errors import ReportError
    from analyzer.report import build_report, build_timelapse

    data = build_report(seeded["store"], "RPT-B", actor=ACTOR)
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "RPT-B" in text and "peel" in text
    with pytest.raises(ReportError, match="no visits"):
        build_report(seeded["store"], "RPT-EMPTY", actor=ACTOR)
    with pytest.raises(ReportError, match="no analysed frontal photo"):
        build_timelapse(seeded["store"], "RPT-B", actor=ACTOR)


# ----------------------------------------------------------------- time-lapse


def _central_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |difference| of standardised luminance in the middle of the face."""
    h, w = a.shape[:2]
    out = []
    for img in (a, b):
        g = img[int(0.25 * h):int(0.75 * h), int(0.25 * w):int(0.75 * w)].astype(float).mean(2)
        out.append((g - g.mean()) / (g.std() + 1e-6))
    return float(np.abs(out[0] - out[1]).mean())


def test_timelapse_gif_one_aligned_frame_per_visit(seeded):
    from PIL import Image, ImageSequence

    from analyzer.report import build_timelapse, timelapse_frames

    store, pid = seeded["store"], seeded["patient"].id
    gif = build_timelapse(store, pid, actor=ACTOR)
    im = Image.open(io.BytesIO(gif))
    assert im.format == "GIF"
    visits_with_photo = [v for v in store.patient_timeline(pid)
                         if any(p.latest_analysis and p.latest_analysis.status == "ok"
                                for p in v.photos)]
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) == len(visits_with_photo) == len(seeded["photo_ids"])
    raw = timelapse_frames(store, pid, actor=ACTOR, aligned=False)
    assert len(raw) == len(frames) and raw[0].shape == frames[0].shape
    for i in range(1, len(frames)):
        aligned = _central_diff(frames[i - 1], frames[i])
        unaligned = _central_diff(raw[i - 1], raw[i])
        assert aligned < 0.3, (i, aligned)
        assert aligned < 0.5 * unaligned, (i, aligned, unaligned)
    # The visit dates are burnt in: the bottom band differs from frame to frame.
    assert not np.array_equal(frames[0][-10:], frames[1][-10:])


# ----------------------------------------------------------------- export


def test_csv_export_round_trips_into_pandas(seeded):
    import pandas as pd

    from analyzer.report import COLUMNS, export_metrics

    store, pid = seeded["store"], seeded["patient"].id
    data = export_metrics(store, actor=ACTOR, patient_id=pid, fmt="csv")
    assert NAME.encode() not in data
    df = pd.read_csv(io.BytesIO(data))
    assert tuple(df.columns) == COLUMNS
    expected = {}
    for visit in store.patient_timeline(pid):
        for photo in visit.photos:
            a = photo.latest_analysis
            for m in a.result["metrics"]:
                expected[(photo.id, m["region"], m["name"])] = (m["value"], m["unit"],
                                                               a.algorithm_version, visit)
    assert len(df) == len(expected)
    assert set(df["patient_code"]) == {CODE}
    assert set(df["view"]) == {"frontal"}
    for row in df.itertuples():
        value, unit, version, visit = expected[(row.photo_id, row.region, row.metric)]
        assert row.unit == unit and row.algorithm_version == version
        assert row.visit_date == visit.visit_date.isoformat()
        if value is None:
            assert pd.isna(row.value)
        else:
            assert row.value == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_json_export_and_clinic_scope(seeded):
    from analyzer.errors import ReportError
    from analyzer.report import COLUMNS, export_metrics

    store = seeded["store"]
    doc = json.loads(export_metrics(store, actor=ACTOR, clinic_id=seeded["clinic_a"],
                                    fmt="json"))
    assert doc["columns"] == list(COLUMNS)
    assert {r["patient_code"] for r in doc["rows"]} == {CODE}
    csv_rows = export_metrics(store, actor=ACTOR, patient_id=CODE).decode().count("\n") - 1
    assert len(doc["rows"]) == csv_rows > 0
    assert doc["algorithm_versions"]
    b = json.loads(export_metrics(store, actor=ACTOR, clinic_id=seeded["clinic_b"], fmt="json"))
    assert b["rows"] == []  # patients without analysed photos have no metric rows
    with pytest.raises(ReportError, match="csv or json"):
        export_metrics(store, actor=ACTOR, fmt="xlsx")
    with pytest.raises(ReportError, match="not a patient of clinic"):
        export_metrics(store, actor=ACTOR, patient_id=CODE, clinic_id=seeded["clinic_b"])


def test_access_is_scoped_to_the_principal(seeded):
    from analyzer.errors import PermissionDenied
    from analyzer.report import build_report, export_metrics

    store = seeded["store"]
    password = "report-test-password-1"
    store.create_user("rpt.doc.b", password, role="practitioner", clinic_id=seeded["clinic_b"],
                      actor=ACTOR)
    doc_b = store.authenticate("rpt.doc.b", password)
    with pytest.raises(PermissionDenied):
        build_report(store, seeded["patient"].id, actor=doc_b)
    with pytest.raises(PermissionDenied):
        export_metrics(store, actor=doc_b, patient_id=seeded["patient"].id)
    with pytest.raises(PermissionDenied):
        export_metrics(store, actor=doc_b, clinic_id=seeded["clinic_a"])
    # Everything doc B sees is clinic B's, which holds no analysed photos.
    assert export_metrics(store, actor=doc_b).decode().count("\n") == 1
    # A patient's share link: their own time-lapse, nobody else's data.
    from analyzer.report import timelapse_frames

    link = store.open_share_link(store.create_share_link(seeded["patient"].id, actor=ACTOR))
    frames = timelapse_frames(store, seeded["patient"].id, actor=link, side=96)
    assert len(frames) == len(seeded["photo_ids"]) and max(frames[0].shape[:2]) == 96
    with pytest.raises(PermissionDenied):
        build_report(store, seeded["other"].id, actor=link)


# ----------------------------------------------------------------- CLI


def test_cli_timelapse_export_and_errors(seeded, tmp_path, monkeypatch, capsys):
    from analyzer.cli import main

    monkeypatch.setenv("ANALYZER_DATA_DIR", str(seeded["data"]))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ANALYZER_DATABASE_URL", raising=False)
    out = tmp_path / "course.gif"
    assert main(["timelapse", "--patient", CODE, "--out", str(out), "--size", "200"]) == 0
    assert out.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    csv_path = tmp_path / "metrics.csv"
    assert main(["export-metrics", "--clinic", "Report clinic A", "--out", str(csv_path)]) == 0
    assert csv_path.read_text().startswith("clinic_id,patient_code,")
    json_path = tmp_path / "m.json"
    assert main(["export-metrics", "--patient", str(seeded["patient"].id),
                 "--out", str(json_path)]) == 0
    assert json.loads(json_path.read_text())["rows"]
    capsys.readouterr()
    assert main(["report", "--patient", "NO-SUCH", "--out", str(tmp_path / "x.pdf")]) == 2
    assert "no patient with code" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()
    assert main(["export-metrics", "--out", str(tmp_path / "m.xlsx")]) == 2


def test_format_number_and_face_box():
    from analyzer.report import format_number
    from analyzer.report.frames import face_box

    assert format_number(None) == "n/a" and format_number(float("nan")) == "n/a"
    assert format_number(22.403887) == "22.4"
    assert format_number(-0.0353, signed=True) == "-0.0353"
    assert format_number(0.25, signed=True) == "+0.25"
    result = {"face": {"box": {"x": 100, "y": 50, "width": 200, "height": 300}}}
    x0, y0, x1, y1 = face_box(result, (400, 500))
    assert (x0, y0) == (64, 0) and x1 == 336 and y1 == 400
    assert face_box({}, (40, 60)) == (0, 0, 60, 40)


def test_pdf_summary_sentence_carries_the_caution():
    from analyzer.report.pdf import _summary_sentence

    change = {"value": -1.2, "relative": -0.05, "mdc": 0.5, "status": "improved", "significant": True}
    assert "improved: changed by" in _summary_sentence("texture", change)
    cautioned = _summary_sentence("texture", {**change, "caution": "pigment"})
    assert "improved (part may be pigment): changed by" in cautioned
    within = _summary_sentence("texture", {**change, "caution": "pigment", "significant": False,
                                           "status": "no detectable change beyond the pigment change"})
    assert within.startswith("Texture: no detectable change beyond the pigment change (changed by -1.2")
