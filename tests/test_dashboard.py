"""Dashboard: every page with Streamlit's AppTest on a small seeded demo database,
plus the library functions the pages use (plain language, views, demo seeding)."""
from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analyzer import dashboard_data as dd
from analyzer.config import Settings

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
PAGES = ROOT / "ui" / "pages"
SAMPLES = ROOT / "sample_images"
TIMEOUT = 120


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo clinic with the first two photos (baseline, day02) of each course,
    analysed and compared; the environment points the app at it."""
    from analyzer.demo import seed_demo
    from analyzer.store import Store

    data = tmp_path_factory.mktemp("dashboard-data")
    old = os.environ.get("ANALYZER_DATA_DIR")
    os.environ["ANALYZER_DATA_DIR"] = str(data)
    settings = Settings.from_env()
    store = Store.open(settings)
    lines: list[str] = []
    report = seed_demo(store, limit=2, say=lines.append)
    principal = dd.sign_in(store, report.username, report.password)
    yield {"store": store, "report": report, "principal": principal, "lines": lines,
           "data": data, "settings": settings}
    store.close()
    if old is None:
        os.environ.pop("ANALYZER_DATA_DIR", None)
    else:
        os.environ["ANALYZER_DATA_DIR"] = old


def signed_in(demo, script: Path, patient_code: str | None = None) -> AppTest:
    at = AppTest.from_file(str(script), default_timeout=TIMEOUT)
    now = time.time()
    at.session_state["principal"] = demo["principal"]
    at.session_state["signed_in_at"] = now
    at.session_state["last_seen"] = now
    if patient_code:
        at.session_state["patient_id"] = demo["store"].find_patient(patient_code).id
    return at


def texts(at) -> str:
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error",
                 "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


# ------------------------------------------------------------------ seeding


def test_demo_seed_fills_once_and_writes_private_credentials(demo):
    report = demo["report"]
    assert report.seeded and report.patients == 2 and report.photos == 4
    assert report.comparisons == 2
    assert any("[1/4]" in line for line in demo["lines"])
    path = demo["data"] / "DEMO_CREDENTIALS.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert report.password and report.password in path.read_text()
    from analyzer.demo import seed_demo

    again = seed_demo(demo["store"], limit=2)
    assert not again.seeded
    timeline = demo["store"].patient_timeline(demo["store"].find_patient("DEMO-A").id,
                                              actor="test")
    assert timeline[0].procedure == "micro-needling" and timeline[0].needle_depth_mm == 1.5
    assert timeline[0].passes == 4 and timeline[0].serum == "PRP" and timeline[0].post_care
    assert timeline[1].procedure is None  # day02 is a photo visit


# ------------------------------------------------------------------ app + sign-in


def test_app_sign_in_flow(demo):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any(s.value == "Sign in" for s in at.subheader)
    at.text_input(key="signin_user").input("demo")
    at.text_input(key="signin_password").input("not the password")
    at.button[0].click().run()
    assert not at.exception
    assert any("wrong user name or password" in e.value for e in at.error)
    at.text_input(key="signin_user").input(demo["report"].username)
    at.text_input(key="signin_password").input(demo["report"].password)
    at.button[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Patients"]
    shown = texts(at)
    assert "DEMO-A" in shown and "DEMO-B" in shown
    # Open patient A: the record page follows.
    at.button(key=f"open_patient_{demo['store'].find_patient('DEMO-A').id}").click().run()
    assert not at.exception
    assert at.title[0].value.startswith("DEMO-A")
    at.button(key="sign_out").click().run()
    assert any(s.value == "Sign in" for s in at.subheader)


def test_session_timeout_asks_to_sign_in_again(demo):
    at = signed_in(demo, APP)
    at.session_state["last_seen"] = time.time() - 24 * 3600
    at.run()
    assert not at.exception
    assert any(s.value == "Sign in" for s in at.subheader)


# ------------------------------------------------------------------ pages


def test_patients_page_lists_and_searches(demo):
    at = signed_in(demo, PAGES / "patients.py").run()
    assert not at.exception
    assert "DEMO-A" in texts(at) and "DEMO-B" in texts(at)
    at.text_input(key="patient_search").input("DEMO-B").run()
    assert not at.exception
    shown = texts(at)
    assert "DEMO-B" in shown and "DEMO-A" not in shown


def test_patients_page_adds_patient(demo):
    at = signed_in(demo, PAGES / "patients.py").run()
    at.text_input(key="np_code").input("NEW-001")
    at.text_input(key="np_name").input("New Person")
    at.checkbox(key="np_consent").check()
    at.button(key="FormSubmitter:new_patient_form-Add patient").click().run()
    assert not at.exception
    rec = demo["store"].find_patient("NEW-001")
    assert rec is not None and rec.consent and rec.clinic_id == demo["principal"].clinic_id


def test_patient_page_needs_sign_in(demo):
    at = AppTest.from_file(str(PAGES / "patients.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("sign in" in w.value.lower() for w in at.warning)
    assert not at.title


def test_record_page_timeline_visit_and_upload(demo):
    at = signed_in(demo, PAGES / "record.py", "DEMO-A").run()
    assert not at.exception
    assert at.title[0].value.startswith("DEMO-A")
    table = at.dataframe[0].value
    assert list(table["date"]) == ["2026-03-02", "2026-03-04"]
    assert "micro-needling" in table["treatment"].iloc[0]
    # how each photo was taken and saved: the demo photos are JPEG 90 4:2:0, about 8 px/mm
    assert all(c.startswith("JPEG 90 4:2:0 · ") and c.endswith(" px/mm") for c in table["capture"])
    assert dd.capture_text({"capture": {"camera": "Google Pixel 7", "iso": 200, "format": "HEIF"},
                            "summary": {"px_per_mm": 6.04}}) == "Google Pixel 7 · ISO 200 · HEIF · 6.0 px/mm"
    assert dd.capture_text(None) == ""
    # New visit through the form.
    at.date_input(key="visit_date").set_value(date_(2026, 5, 25))
    at.text_area(key="visit_notes").input("12 weeks")
    at.button(key="FormSubmitter:visit_form-Add visit").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert "2026-05-25" in list(table["date"])
    assert any(e.label == "How to photograph for comparison" for e in at.expander)
    assert "same phone or camera" in texts(at)
    # Upload the week-12 photo to the new (latest) visit: progress, quality feedback.
    data = (SAMPLES / "demo_patient_a" / "2026-05-25_week12.jpg").read_bytes()
    uploader = at.file_uploader[0]
    uploader.set_value([("week12.jpg", data, "image/jpeg")])
    at.run()
    at.button(key="upload_go").click().run()
    assert not at.exception
    feedback = texts(at)
    assert "week12.jpg: capture quality" in feedback
    timeline = demo["store"].patient_timeline(demo["store"].find_patient("DEMO-A").id,
                                              actor="test")
    week12 = [v for v in timeline if v.visit_date.isoformat() == "2026-05-25"][0]
    assert week12.photos and week12.photos[0].latest_analysis.status == "ok"
    # saved like the baseline, the same size, lined up: nothing a retake would fix
    assert "a retake now would compare better" not in feedback


def test_record_page_advises_a_retake_of_a_follow_up_saved_differently(demo):
    """A follow-up from another camera, saved at another JPEG quality: the upload feedback
    says so while the patient is still there, as well as the comparison's flags."""
    import io

    from PIL import Image

    store, principal = demo["store"], demo["principal"]
    patient = store.create_patient("RETAKE-1", actor=principal, consent=True)
    for day in ("2026-03-02", "2026-03-04"):
        store.add_visit(patient.id, day, actor=principal)
    at = signed_in(demo, PAGES / "record.py", "RETAKE-1").run()

    def upload(day, name, data):
        at.selectbox(key="upload_visit").select(
            next(v.id for v in store.patient_timeline(patient.id, actor="test")
                 if v.visit_date.isoformat() == day))
        at.run()
        at.file_uploader[0].set_value([(name, data, "image/jpeg")])
        at.run()
        at.button(key="upload_go").click().run()
        assert not at.exception
        return texts(at)

    course = SAMPLES / "demo_patient_a"
    assert "a retake now" not in upload("2026-03-02", "base.jpg", (course / "2026-03-02_baseline.jpg").read_bytes())
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"
    buf = io.BytesIO()
    Image.open(course / "2026-03-04_day02.jpg").save(buf, "JPEG", quality=75, exif=exif.tobytes())
    feedback = upload("2026-03-04", "day02.jpg", buf.getvalue())
    assert "a retake now would compare better" in feedback
    assert "saved differently" in feedback and "JPEG quality" in feedback


def test_retake_advice_names_what_a_retake_would_fix():
    base = {"summary": {"px_per_mm": 8.2},
            "capture": {"format": "JPEG", "jpeg_quality": 90, "chroma_subsampling": "4:2:0",
                        "camera": "Apple iPhone 13", "iso": 100}}
    assert dd.retake_advice(base, base, {"alignment": {"ok": True}}) == []
    follow = {"summary": {"px_per_mm": 5.0}, "capture": {**base["capture"], "iso": 800}}
    advice = dd.retake_advice(base, follow, {"alignment": {"ok": False, "reason": "too few matches"}})
    assert len(advice) == 3
    assert "could not be lined up with the baseline (too few matches)" in advice[0]
    assert "smaller than in the baseline (5.0 vs 8.2 px/mm)" in advice[1]
    assert "different ISO (100 vs 800)" in advice[2]
    near = {"summary": {"px_per_mm": 7.0}, "capture": base["capture"]}    # within 20 %: fine
    assert dd.retake_advice(base, near, None) == []


def test_record_page_share_link_shown_once(demo):
    if not dd.auth_available(demo["store"]):
        pytest.skip("the store has no access control (share links) here")
    at = signed_in(demo, PAGES / "record.py", "DEMO-A").run()
    at.button(key="share_create").click().run()
    assert not at.exception
    link = at.code[0].value
    assert "?share=" in link
    at.button(key="share_done").click().run()
    assert not at.code
    assert any("active" in c.value for c in at.caption)


def test_compare_page_shows_day02_redness(demo):
    store = demo["store"]
    pid = store.find_patient("DEMO-A").id
    day02 = [v for v in store.patient_timeline(pid, actor="test")
             if v.visit_date.isoformat() == "2026-03-04"][0]
    at = signed_in(demo, PAGES / "compare.py", "DEMO-A")
    at.session_state["cmp_after"] = day02.id
    at.run()
    assert not at.exception
    assert at.title[0].value == "Compare · DEMO-A"
    table = at.dataframe[0].value.set_index("metric")
    # day02: procedure redness (phantom dose 0.3 OD diffuse + patches).
    assert table.loc["Redness", "relative %"] > 30
    assert table.loc["Redness", "change"] > 0.05
    # where the noise threshold came from: redness has one calibration whichever way the photos
    # were saved (its noise no longer follows the JPEG setting); the band test covers "saved alike"
    assert table.loc["Redness", "noise measured on"] == "all skin tones"
    assert table.loc["Redness", "noise (MDC)"] == pytest.approx(0.0015, abs=5e-4)
    shown = texts(at)
    assert "redness is expected after the procedure" in shown
    assert "Redness" in shown
    # under each visit: how its photo was taken and saved
    assert [c.value for c in at.caption][:2] == [dd.capture_text(p.latest_analysis.result) for p in (
        dd.frontal_photo(v) for v in demo["store"].patient_timeline(
            demo["store"].find_patient("DEMO-A").id, actor="test")[:2])]
    assert at.caption[0].value.startswith("JPEG 90 4:2:0 · ")
    assert len(at.get("iframe")) == 1  # the before/after slider
    assert len(at.get("image")) >= 7  # side by side, three change maps, overlay, region
    at.selectbox(key="cmp_region").set_value("left_cheek").run()
    assert not at.exception
    region = at.dataframe[-1].value
    assert "hemoglobin_density" in set(region["metric"])
    at.button(key="prepare_metrics").click().run()
    assert not at.exception
    csv = at.session_state[f"download_metrics_{pid}"].decode()
    assert csv.splitlines()[0].startswith("patient") or "metric" in csv.splitlines()[0]
    assert "hemoglobin_density" in csv
    # Stored, not recomputed: still one comparison per follow-up.
    pairs = [(c["baseline_photo_id"], c["followup_photo_id"])
             for c in store.comparisons(pid, actor="test")]
    assert len(pairs) == len(set(pairs))


def test_progress_page_charts(demo):
    at = signed_in(demo, PAGES / "progress.py", "DEMO-A").run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 3
    assert "treatment sessions" in texts(at)
    at.selectbox(key="progress_region").set_value("forehead").run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 3


def test_patient_share_view(demo):
    store = demo["store"]
    if not dd.auth_available(store):
        pytest.skip("the store has no access control (share links) here")
    pid = store.find_patient("DEMO-A").id
    token = store.create_share_link(pid, actor=demo["principal"])
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["share"] = token
    at.run()
    assert not at.exception
    assert at.title[0].value == "Your skin progress"
    shown = texts(at)
    assert "since your first visit" in shown.lower()
    assert "DEMO-B" not in shown and "Sign out" not in shown
    assert len(at.get("vega_lite_chart")) == 3
    assert len(at.get("iframe")) == 1
    # The patient downloads their own report (a real PDF); no staff-only export offered.
    assert not [b for b in at.button if b.key == "prepare_metrics"]
    at.button(key="prepare_progress-report").click().run()
    assert not at.exception
    assert at.session_state[f"download_progress-report_{pid}"][:5] == b"%PDF-"
    # The patient principal reaches only this patient.
    patient = dd.open_share(store, token)
    other = store.find_patient("DEMO-B").id
    with pytest.raises(Exception):
        store.patient_timeline(other, actor=patient)
    bad = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    bad.query_params["share"] = "x" * 43
    bad.run()
    assert not bad.exception
    assert any("cannot be opened" in e.value for e in bad.error)


# ------------------------------------------------------------------ library


def date_(y, m, d):
    import datetime

    return datetime.date(y, m, d)


def test_plain_language_never_claims_an_insignificant_change():
    lower = {"value": -0.03, "relative": -0.18, "significant": True, "status": "improved"}
    assert dd.plain_change("redness", lower) == "Redness 18 % lower than at your first visit"
    same = {"value": -0.03, "relative": -0.18, "significant": False,
            "status": "no detectable change"}
    assert dd.plain_change("redness", same) == "Redness: no detectable change since your first visit"
    assert dd.plain_change("redness", lower, "the visit of 2026-04-13") == \
        "Redness 18 % lower than at the visit of 2026-04-13"
    uncal = {"value": -0.03, "relative": -0.18, "significant": None, "status": "not calibrated"}
    assert "18" not in dd.plain_change("texture", uncal)
    post = {"value": 0.2, "relative": 1.2, "significant": True,
            "status": "worse (expected after procedure)"}
    assert "expected" in dd.plain_change("redness", post)
    mottled = {**lower, "caution": "pigment"}      # compare: texture moved with pigment
    assert dd.plain_change("texture", mottled) == \
        "Texture 18 % lower than at your first visit (part of this may be the change in pigmentation)"
    assert "may come from redness" in dd.plain_change("pigmentation", {**lower, "caution": "redness"})
    # the practitioner's change table says it in the status
    table = {r["metric"]: r["status"] for r in dd.change_table({"delta": {"texture": mottled, "redness": lower}})}
    assert table == {"Texture": "improved (part may be pigment)", "Redness": "improved", "Pigmentation": None}
    assert "could not be measured" in dd.plain_change("pigmentation", None)
    within = {**lower, "significant": False, "caution": "pigment",
              "status": "no detectable change beyond the pigment change"}
    said = dd.plain_change("texture", within)
    assert said.startswith("Texture: changed no more than your pigmentation did") and "18" not in said
    assert dd.change_table({"delta": {"texture": within}})[0]["status"] == \
        "no detectable change beyond the pigment change"
    said = dd.plain_change("redness", within)   # compare: redness within 0.13 x the pigment change
    assert said.startswith("Redness: changed no more than the change in your pigmentation moves it")
    with_texture = {**within, "caution": "texture", "status": "no detectable change beyond the texture change"}
    assert "no change of its own can be confirmed" in dd.plain_change("pigmentation", with_texture)


def test_days_since_treatment_counts_from_earlier_sessions():
    from types import SimpleNamespace as NS

    tl = [NS(visit_date=date_(2026, 3, 2), procedure="micro-needling"),
          NS(visit_date=date_(2026, 3, 4), procedure=None),
          NS(visit_date=date_(2026, 4, 13), procedure="micro-needling")]
    assert dd.days_since_treatment(tl, date_(2026, 3, 4)) == 2
    assert dd.days_since_treatment(tl, date_(2026, 4, 13)) == 42  # photo before the session
    assert dd.days_since_treatment(tl, date_(2026, 3, 2)) is None


def test_views_change_maps_and_slider_html():
    from analyzer import views

    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (80, 90, 3), dtype=np.uint8)
    redder = base.copy()
    redder[..., 1] = (redder[..., 1] * 0.8).astype(np.uint8)
    skin = np.zeros((80, 90), bool)
    skin[10:70, 10:80] = True
    maps = views.change_maps(base, redder, skin, {"baseline": {"summary": {"px_per_mm": 4}},
                                                   "followup": {"summary": {}}})
    assert set(maps) == {"redness", "pigmentation", "texture"}
    assert all(m.shape == base.shape and m.dtype == np.uint8 for m in maps.values())
    assert (maps["redness"][~skin] == base[~skin]).all()  # nothing drawn off skin
    html = views.before_after_html(views.data_uri(base), views.data_uri(redder),
                                   before_label="<b>", after_label="after")
    assert html.count("data:image/jpeg;base64,") == 2 and "&lt;b&gt;" in html
    assert "http" not in html.replace("http-equiv", "")


def test_progress_rows_chart_the_compared_change(demo):
    """A follow-up's chart point is the first visit's value plus the change its stored
    comparison measured; without the comparisons, the photo's own value."""
    from analyzer.compare import COMPARED

    store = demo["store"]
    pid = store.find_patient("DEMO-A").id
    timeline = store.patient_timeline(pid, actor="test")
    comparisons = store.comparisons(pid, actor="test")
    compared = dd.progress_rows(timeline, comparisons=comparisons)
    own = dd.progress_rows(timeline)
    assert len(compared) == len(own) >= 6
    # each point says how its photo was taken and saved, in the chart's tooltip too
    assert all(r["capture"].startswith("JPEG 90 4:2:0 · ") for r in compared)
    from ui.charts import progress_chart

    spec = progress_chart(compared, [], dd.noise_bands(compared), "Redness").to_dict()
    tooltips = [t for layer in spec["layer"] for t in layer["encoding"].get("tooltip", [])]
    assert {"field": "capture", "type": "nominal", "title": "photo"} in tooltips
    # the demo photos are all JPEG 90, 4:2:0: every visit's band is the MDC of photos saved alike
    from analyzer.compare import course_mdc, own_photo_mdc, summary_mdc
    calibration = course_mdc(r["px_per_mm"] for r in compared)
    tone = dd.frontal_photo(timeline[0]).latest_analysis.result["summary"]["ita_category"]
    general = {k: v for k, v in calibration.items() if k != "own_photo"}
    for row in dd.progress_rows(timeline, mdc=general):
        assert row["mdc"] == summary_mdc(calibration, row["key"], tone, same_settings=True)[0]
    # without comparisons every point is its photo's own value, judged by the MDC of own values
    for row in own:
        assert row["mdc"] == max(own_photo_mdc(calibration, row["key"], tone, same_settings=True),
                                 summary_mdc(calibration, row["key"], tone, same_settings=True)[0])
    assert all(own_photo_mdc(calibration, k, tone) for k in ("texture", "redness", "pigmentation"))
    first = compared[:3]
    assert [r["basis"] for r in first] == ["first visit"] * 3
    base = {r["key"]: r["value"] for r in first}
    photo_of = {v.id: dd.frontal_photo(v).id for v in timeline if dd.frontal_photo(v) is not None}
    by_photo = {c["followup_photo_id"]: c["result"] for c in comparisons}
    checked = 0
    for row, plain in zip(compared[3:], own[3:]):
        result = by_photo.get(photo_of[row["visit_id"]])
        if result is None:       # a visit not compared: its own value
            assert row["value"] == plain["value"] and row["basis"] != COMPARED
            continue
        assert row["basis"] == COMPARED
        assert row["mdc"] == result["delta"][row["key"]]["mdc"]      # the band compare applied
        assert row["value"] == pytest.approx(base[row["key"]] + result["delta"][row["key"]]["value"], rel=1e-9)
        assert plain["value"] != pytest.approx(row["value"], rel=1e-6)
        checked += 1
    assert checked >= 3
    forehead = dd.progress_rows(timeline, "forehead", comparisons)
    # one region: the regional indices the phantom harness validates for single-region changes
    first_metrics = {(m["name"], m["region"]): m for m in dd.frontal_photo(timeline[0]).latest_analysis.result["metrics"]}
    for row, name in zip(forehead[:3], ("texture_index", "hemoglobin_density", "pigmentation_index")):
        assert row["value"] == first_metrics[(name, "forehead")]["value"]
        assert row["unit"] == first_metrics[(name, "forehead")]["unit"]
    tex = [r for r in forehead if r["key"] == "texture"]
    result = by_photo[photo_of[tex[1]["visit_id"]]]
    stored_change = result["regions"]["forehead"][dd.REGION_METRICS["texture"]]
    assert tex[1]["value"] == pytest.approx(tex[0]["value"] + stored_change["delta"], rel=1e-9)
    assert tex[1]["mdc"] == stored_change["mdc"] > 0     # the band compare applied to the region


def _course(*photos):
    """A timeline of one analysed frontal photo per visit, 30 days apart: ``(px_per_mm,
    ita_category, capture)`` each; texture 20, redness 0.3 + 0.01 per visit."""
    from types import SimpleNamespace as NS

    visits = []
    for i, (px, tone, capture) in enumerate(photos):
        result = {"summary": {"px_per_mm": px, "ita_category": tone, "units": {}}, "capture": capture,
                  "metrics": [{"name": "hemoglobin_density", "region": "forehead", "value": 0.2 + 0.01 * i}]}
        analysis = NS(status="ok", result=result, texture=20.0, redness=0.3 + 0.01 * i, pigmentation=5.0)
        visits.append(NS(id=i + 1, visit_date=date_(2026, 1, 1) + timedelta(days=30 * i),
                         photos=[NS(id=i + 1, view="frontal", latest_analysis=analysis)]))
    return visits


JPEG = {"format": "JPEG", "jpeg_quality": 90, "chroma_subsampling": "4:2:0", "camera": "Pixel 7"}


def _band(rows, key):
    return next(b for b in dd.noise_bands(rows) if b["key"] == key)


def test_noise_band_follows_the_photos_resolution():
    """The progress chart's band is the calibration at the course's lowest resolution (here
    of own values: the courses have no comparisons)."""
    from analyzer.compare import load_mdc, own_photo_mdc

    def expected(px):
        mdc = load_mdc(px_per_mm=px)
        return max(own_photo_mdc(mdc, "texture", None) or 0.0, mdc["summary"]["texture"])

    sharp, small = expected(8.5), expected(4.1)
    assert sharp < small

    def band(*px):  # lossless photos from different cameras: never saved alike
        return _band(dd.progress_rows(_course(*[(p, None, {"format": "PNG", "camera": str(i)})
                                                for i, p in enumerate(px)])), "texture")

    b = band(8.5, 9.0)
    assert (b["mdc"], b["low"], b["high"]) == (sharp, 20.0 - sharp, 20.0 + sharp)
    assert band(8.5, 4.1)["mdc"] == small      # one small photo: its noise
    assert band(None, None)["mdc"] == small    # unknown: the conservative one


def test_noise_band_is_the_mdc_compare_applies_at_each_visit():
    """The band at each visit is the MDC compare judges that visit's pair by: the
    baseline's skin tone's where larger, and that of photos saved alike where that
    visit's photo was saved like the first; the first visit takes the next one's."""
    from analyzer.compare import load_mdc, summary_mdc

    # the points are own values (no comparisons): the calibration without own values' MDC
    mdc = {k: v for k, v in load_mdc(px_per_mm=8.5).items() if k != "own_photo"}
    dark = summary_mdc(mdc, "texture", "dark")[0]
    alike = summary_mdc(mdc, "texture", "dark", same_settings=True)[0]
    assert dark > 1.5 * mdc["summary"]["texture"] and alike < dark / 2

    def steps(*captures):
        band = _band(dd.progress_rows(_course(*[(8.5, "dark", c) for c in captures]), mdc=mdc), "texture")
        return [s["mdc"] for s in band["steps"]]

    assert steps(JPEG, JPEG, JPEG) == [alike] * 3
    assert steps(JPEG, {**JPEG, "jpeg_quality": 80}, JPEG) == [dark, dark, alike]   # saved in two ways
    assert steps(JPEG, JPEG, {**JPEG, "camera": "iPhone 13"}) == [alike, alike, dark]
    assert steps(JPEG) == [dark]                                                   # nothing compared yet
    mixed = _band(dd.progress_rows(_course(*[(8.5, "dark", c) for c in (JPEG, JPEG, {**JPEG, "camera": None})]),
                                   mdc=mdc), "texture")
    assert mixed["mdc"] == dark and mixed["low"] == pytest.approx(20.0 - dark)   # the widest, about the baseline


def test_noise_band_of_a_visit_without_a_trusted_comparison_is_that_of_own_values():
    """A visit drawn at its photo's own value (no comparison, or alignment not trusted)
    gets the wider MDC of own values; a compared visit the MDC its comparison applied."""
    from analyzer.compare import COMPARED, NOT_COMPARABLE, OWN_PHOTO
    from analyzer.version import ALGORITHM_VERSION

    calibration = {"summary": {"redness": 0.01}, "own_photo": {"summary": {"redness": 0.03}}}

    def stored(photo_id, status=None):
        delta = {"redness": {"value": 0.004, "mdc": 0.012, "status": status}}
        return {"id": photo_id, "baseline_photo_id": 1, "followup_photo_id": photo_id,
                "algorithm_version": ALGORITHM_VERSION,
                "result": {"delta": delta, "regions": {"forehead": {"hemoglobin_density": {"delta": 0.003}}}}}

    course = _course(*[(8.5, "light", JPEG)] * 4)
    rows = dd.progress_rows(course, comparisons=[stored(2), stored(4, NOT_COMPARABLE)], mdc=calibration)
    red = [r for r in rows if r["key"] == "redness"]
    assert [r["basis"] for r in red[1:]] == [COMPARED, OWN_PHOTO, OWN_PHOTO]
    assert [r["mdc"] for r in red] == [0.012, 0.012, 0.03, 0.03]
    assert red[1]["value"] == pytest.approx(0.3 + 0.004)
    without = dd.progress_rows(course, mdc={"summary": {"redness": 0.01}})   # calibrated before own values were
    assert [r["mdc"] for r in without if r["key"] == "redness"] == [0.01] * 4
    # own values of photos saved like the baseline: their own calibration, where smaller
    calibration["own_photo"]["same_settings"] = {"summary": {"redness": 0.02}}
    mixed = _course(*[(8.5, "light", c) for c in (JPEG, JPEG, {**JPEG, "jpeg_quality": 80}, JPEG)])
    rows = dd.progress_rows(mixed, comparisons=[stored(2)], mdc=calibration)
    assert [r["mdc"] for r in rows if r["key"] == "redness"] == [0.012, 0.012, 0.03, 0.02]
    calibration["own_photo"]["same_settings"] = {"summary": {"redness": 0.04}}   # larger: sampling error
    rows = dd.progress_rows(mixed, comparisons=[stored(2)], mdc=calibration)
    assert [r["mdc"] for r in rows if r["key"] == "redness"] == [0.012, 0.012, 0.03, 0.03]
    # one region: its metric's MDC, of own values where the point is one
    calibration = {"metrics": {"hemoglobin_density@forehead": 0.02},
                   "own_photo": {"metrics": {"hemoglobin_density@forehead": 0.05}}}
    forehead = dd.progress_rows(course, "forehead", [stored(2)], mdc=calibration)
    red = [r for r in forehead if r["key"] == "redness"]
    assert [r["basis"] for r in red[1:]] == [COMPARED, OWN_PHOTO, OWN_PHOTO]
    assert [r["mdc"] for r in red] == [0.02, 0.02, 0.05, 0.05]   # a result stored without a region's MDC
    assert red[1]["value"] == pytest.approx(0.2 + 0.003)
    with_mdc = stored(2)
    with_mdc["result"]["regions"]["forehead"]["hemoglobin_density"]["mdc"] = 0.015
    forehead = dd.progress_rows(course, "forehead", [with_mdc], mdc=calibration)
    assert [r["mdc"] for r in forehead if r["key"] == "redness"] == [0.015, 0.015, 0.05, 0.05]
