"""Data access the dashboard pages share (no Streamlit, no SQL, no image maths).

Pages call these functions with a :class:`Gateway`: the store plus the signed-in
principal, passed as ``actor=`` to every store call.  Analyses and comparisons
are read from the store; a comparison is computed (and saved) only the first
time two photos are compared, so a record with many visits renders without
re-analysing anything.
"""
from __future__ import annotations

import hmac
import inspect
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable

from .config import Settings
from .errors import AnalyzerError, StoreError

SUMMARY_KEYS = ("texture", "redness", "pigmentation")
METRIC_LABELS = {"texture": "Texture", "redness": "Redness", "pigmentation": "Pigmentation"}
# Per-region series behind each summary: the regional indices whose single-region
# changes the phantom harness validates (redness_index is whole-face only; its
# regional stand-in is the mean hemoglobin density, as in benchmarks/accuracy.py).
REGION_METRICS = {"texture": "texture_index", "redness": "hemoglobin_density",
                  "pigmentation": "pigmentation_index"}
SUMMARY_METRICS = {"texture": "texture_index", "redness": "redness_index",
                   "pigmentation": "pigmentation_index"}
REGION_NAMES = ("whole_face", "forehead", "glabella", "right_cheek", "left_cheek", "nose",
                "right_under_eye", "left_under_eye", "perioral", "chin")
DEMO_CREDENTIALS = "DEMO_CREDENTIALS.txt"


# ------------------------------------------------------------------ principals


@dataclass(frozen=True)
class LocalPrincipal:
    """Stand-in with the shape of ``analyzer.auth.Principal``, used only while
    the store has no access control (see :func:`sign_in`)."""

    user_id: int | None
    username: str
    role: str
    clinic_id: int | None
    patient_id: int | None = None

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "practitioner")

    @property
    def is_patient(self) -> bool:
        return self.role == "patient"


def auth_available(store) -> bool:
    """True when the store enforces access control (``store.authenticate`` exists)."""
    return callable(getattr(store, "authenticate", None))


def _auth_error(message: str) -> Exception:
    try:
        from .errors import AuthError  # type: ignore[attr-defined]
    except ImportError:
        return StoreError(message)
    return AuthError(message)


def sign_in(store, username: str, password: str):
    """The principal for these credentials (raises AuthError / StoreError with a
    message to show).  Uses ``store.authenticate``; until the store has access
    control, only the demo user written by :mod:`analyzer.demo` to
    ``<data dir>/DEMO_CREDENTIALS.txt`` can sign in."""
    username = (username or "").strip()
    if auth_available(store):
        return store.authenticate(username, password)
    creds = read_demo_credentials(store.settings)
    if creds and username == creds[0] and hmac.compare_digest(
            (password or "").encode(), creds[1].encode()):
        return LocalPrincipal(None, username, "practitioner", demo_clinic_id(store))
    raise _auth_error("wrong user name or password")


def open_share(store, token: str):
    """The patient principal of a share link (raises with a message to show)."""
    if not callable(getattr(store, "open_share_link", None)):
        raise _auth_error("share links are not available on this installation")
    return store.open_share_link((token or "").strip())


def demo_clinic_id(store) -> int | None:
    patients = store.list_patients(search="DEMO-")
    return patients[0].clinic_id if patients else None


def demo_credentials_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / DEMO_CREDENTIALS


def read_demo_credentials(settings: Settings) -> tuple[str, str] | None:
    """``(username, password)`` from the demo credentials file, if there is one."""
    path = demo_credentials_path(settings)
    try:
        lines = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    except OSError:
        return None
    user, pw = lines.get("username", "").strip(), lines.get("password", "").strip()
    return (user, pw) if user and pw else None


def write_demo_credentials(settings: Settings, username: str, password: str) -> Path:
    """Write the demo credentials file, readable by its owner only (0600)."""
    path = demo_credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"username: {username}\npassword: {password}\n")
    os.chmod(path, 0o600)
    return path


# ------------------------------------------------------------------ gateway


class Gateway:
    """The store as one principal sees it: every call gets ``actor=``.

    With access control in the store the principal itself is the actor (the
    store checks permissions); without it the user name is recorded.
    """

    def __init__(self, store, principal, *, actor=None):
        self.store = store
        self.principal = principal
        self.settings: Settings = store.settings
        self._actor = actor

    @property
    def actor(self):
        if self._actor is not None:
            return self._actor
        return self.principal if auth_available(self.store) else self.principal.username

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self.store, name)
        if not callable(method):
            return method
        try:
            takes_actor = "actor" in inspect.signature(method).parameters
        except (TypeError, ValueError):
            takes_actor = False

        def call(*args, **kwargs):
            if takes_actor:
                kwargs.setdefault("actor", self.actor)
            return method(*args, **kwargs)
        return call


# ------------------------------------------------------------------ timeline


def frontal_photo(visit) -> Any | None:
    """The visit's frontal photo with a successful analysis (else any analysed photo)."""
    ok = [p for p in visit.photos if p.latest_analysis is not None
          and p.latest_analysis.status == "ok"]
    front = [p for p in ok if p.view == "frontal"]
    return (front or ok or [None])[0]


def is_treatment(visit) -> bool:
    return bool(visit.procedure)


def treatment_text(visit) -> str:
    """One line: procedure, device, needle depth, passes, serum (the report's wording)."""
    from .report.course import treatment_text as settings_line

    return settings_line(visit) or "no treatment (photo visit)"


def days_since_treatment(timeline, day: date) -> int | None:
    """Days from the last treatment *before* ``day`` (photos on a session day
    are taken before the treatment) to ``day``; None without one."""
    before = [v.visit_date for v in timeline if is_treatment(v) and v.visit_date < day]
    return (day - max(before)).days if before else None


def timeline_rows(timeline) -> list[dict]:
    """One row per visit for a table."""
    rows = []
    first = timeline[0].visit_date if timeline else None
    for v in timeline:
        photo = frontal_photo(v)
        a = photo.latest_analysis if photo else None
        rows.append({
            "date": v.visit_date.isoformat(), "day": (v.visit_date - first).days,
            "treatment": treatment_text(v), "photos": len(v.photos),
            "quality": a.quality_overall if a else ("failed" if v.photos else "—"),
            "texture": a.texture if a else None, "redness": a.redness if a else None,
            "pigmentation": a.pigmentation if a else None,
            "capture": capture_text(a.result if a else None),
            "notes": v.notes or "", "post_care": v.post_care or "",
        })
    return rows


def capture_text(result: dict | None) -> str:
    """How a photo was taken and saved, in one line (camera, ISO, format, face scale), so
    that a visit photographed differently stands out in the timeline."""
    capture = (result or {}).get("capture") or {}
    px = ((result or {}).get("summary") or {}).get("px_per_mm")
    saved = capture.get("format") or ""
    if capture.get("jpeg_quality"):
        saved += f" {capture['jpeg_quality']}"
    if capture.get("chroma_subsampling"):
        saved += f" {capture['chroma_subsampling']}"
    parts = [capture.get("camera"), f"ISO {capture['iso']}" if capture.get("iso") else None,
             saved.strip() or None, f"{px:.1f} px/mm" if px else None]
    return " · ".join(p for p in parts if p)


def _metric_value(result: dict | None, name: str, region: str) -> float | None:
    for m in (result or {}).get("metrics") or []:
        if m.get("name") == name and m.get("region") == region:
            return m.get("value")
    return None


def progress_rows(timeline, region: str = "whole_face", comparisons=(), mdc: dict | None = None) -> list[dict]:
    """Long-form rows ``{date, visit_id, metric, key, value, unit, basis, px_per_mm, mdc}``
    for progress charts.

    Whole face: the summary indices.  Another region: the per-region metric
    behind each index (:data:`REGION_METRICS`).  The first visit's value is
    its own analysis; a later visit's is the first visit's plus the change its
    stored comparison with the first visit measured
    (:func:`analyzer.compare.charted_value`; ``basis`` says which), so a point
    leaves the noise band exactly when the comparison found a detectable change.
    ``mdc`` is the noise band's half-width at that visit: the MDC its
    comparison applied (:func:`analyzer.compare.charted_series`).

    Parameters
    ----------
    timeline : list of visits
    region : str
    comparisons : list of dict
        The patient's stored comparisons (``Gateway.comparisons``); without
        them every point is the photo's own value.
    mdc : dict, optional
        The calibration; by default the one for the photos' lowest resolution
        (:func:`analyzer.compare.course_mdc`), as ``compare`` would for the noisiest pair.
    """
    from .compare import charted_series, course_mdc
    from .metrics import REGISTRY

    def own_value(photo, key):
        a = photo.latest_analysis
        if region == "whole_face":
            return getattr(a, key)
        return _metric_value(a.result, REGION_METRICS[key], region)

    def unit(photo, key):
        if region != "whole_face":
            return REGISTRY[REGION_METRICS[key]].unit
        return (_summary(photo).get("units") or {}).get(key, "")

    series = [(v, p) for v in timeline if (p := frontal_photo(v)) is not None]
    if mdc is None:
        mdc = course_mdc(_summary(p).get("px_per_mm") for _, p in series)
    return [{"date": pt.visit.visit_date.isoformat(), "visit_id": pt.visit.id, "metric": METRIC_LABELS[pt.key],
             "key": pt.key, "value": pt.value, "unit": unit(pt.photo, pt.key), "basis": pt.basis,
             "px_per_mm": _summary(pt.photo).get("px_per_mm"), "mdc": pt.mdc,
             "capture": capture_text(_result(pt.photo))}
            for pt in charted_series(series, comparisons, own_value, region=region,
                                     metric_of=REGION_METRICS, mdc=mdc)]


def _result(photo) -> dict:
    """The photo's latest analysis result (``{}`` when it has none)."""
    return (photo.latest_analysis.result or {}) if photo.latest_analysis else {}


def _summary(photo) -> dict:
    return _result(photo).get("summary") or {}


def treatment_rows(timeline) -> list[dict]:
    """``{date, treatment}`` of every treatment session (chart rules)."""
    return [{"date": v.visit_date.isoformat(), "treatment": treatment_text(v)}
            for v in timeline if is_treatment(v)]


def noise_bands(rows: list[dict]) -> list[dict]:
    """Per metric: the first visit's value ± the MDC each visit is judged by (the rows'
    ``mdc``, :func:`progress_rows`), as ``{metric, key, low, high, mdc, steps}``:
    ``low`` / ``high`` / ``mdc`` for the widest, ``steps`` one ``{date, low, high,
    mdc}`` per visit (they differ where the course's photos were saved in more
    than one way).  Metrics without a calibrated MDC are left out."""
    out = []
    for key in SUMMARY_KEYS:
        series = [r for r in rows if r["key"] == key and r.get("mdc") is not None]
        if not series:
            continue
        base = next(r["value"] for r in rows if r["key"] == key)
        steps = [{"date": r["date"], "low": base - r["mdc"], "high": base + r["mdc"], "mdc": r["mdc"]}
                 for r in series]
        widest = max(steps, key=lambda s: s["mdc"])
        out.append({"metric": METRIC_LABELS[key], "key": key, "low": widest["low"],
                    "high": widest["high"], "mdc": widest["mdc"], "steps": steps})
    return out


# ------------------------------------------------------------------ photos


@dataclass
class UploadResult:
    """What happened to one uploaded photo."""

    name: str
    photo_id: int | None
    ok: bool
    message: str
    quality: str | None = None
    items: list | None = None
    summary: dict | None = None
    duplicate: bool = False
    retake: list | None = None   # why a retake now would compare better with the baseline

    @property
    def advice(self) -> list[str]:
        return [f"{i['name']}: {i['advice']}" for i in (self.items or [])
                if i.get("status") != "pass" and i.get("advice")]


def upload_photo(gw: Gateway, visit_id: int, name: str, data: bytes, *,
                 view: str = "frontal", skin_condition: str | None = None,
                 lighting: str | None = None) -> UploadResult:
    """Store an upload (sanitized), analyse the stored copy once and save the analysis.

    A photo already stored for this patient is not analysed again.  Errors
    (not a photo, no face) come back as ``ok=False`` with the message.
    """
    from .pipeline import analyze
    from .version import ALGORITHM_VERSION

    try:
        photo = gw.add_photo(visit_id, data, view=view, skin_condition=skin_condition,
                             lighting=lighting)
    except AnalyzerError as exc:
        return UploadResult(name, None, False, str(exc))
    existing = [a for a in gw.analyses(photo.id)
                if a.status == "ok" and a.algorithm_version == ALGORITHM_VERSION]
    if existing:
        result = existing[-1].result or {}
    else:
        try:
            result = analyze(gw.photo_bytes(photo.id), gw.settings).result.to_dict()
        except AnalyzerError as exc:
            gw.record_failed_analysis(photo.id, ALGORITHM_VERSION, str(exc))
            return UploadResult(name, photo.id, False, str(exc))
        gw.save_analysis(photo.id, result)
    quality = result.get("quality") or {}
    return UploadResult(name, photo.id, True, "already stored" if not photo.created else "analysed",
                        quality.get("overall"), quality.get("items"), result.get("summary"),
                        duplicate=not photo.created)


# ------------------------------------------------------------------ comparisons


def stored_comparison(gw: Gateway, patient_id: int, baseline_photo_id: int,
                      followup_photo_id: int) -> dict | None:
    """The newest stored comparison of these two photos at this algorithm version
    (:func:`analyzer.compare.pick_stored`, which falls back to older versions: not here)."""
    from .compare import pick_stored
    from .version import ALGORITHM_VERSION

    hit = pick_stored(gw.comparisons(patient_id), baseline_photo_id, followup_photo_id)
    return hit if hit is not None and hit["algorithm_version"] == ALGORITHM_VERSION else None


def analysed_from_store(gw: Gateway, photo_id: int):
    """An :class:`~analyzer.pipeline.AnalysedPhoto` from a stored photo and its
    stored analysis: landmarks and regions are found again (fast), the
    measurements are not repeated."""
    from .face import get_landmarker
    from .intake import load_photo
    from .pipeline import Analysis, AnalysedPhoto
    from .regions import build_regions

    photo = gw.get_photo(photo_id)
    a = photo.latest_analysis
    if a is None or a.status != "ok" or not a.result:
        raise StoreError(f"photo {photo_id} has no successful analysis")
    loaded = load_photo(gw.photo_bytes(photo_id), gw.settings)
    face = get_landmarker(gw.settings.model_path).detect(loaded.pixels)
    fields = {k: a.result[k] for k in Analysis.__dataclass_fields__ if k in a.result}
    return AnalysedPhoto(photo=loaded, face=face, regions=build_regions(loaded.pixels, face),
                         result=Analysis(**fields))


def ensure_comparison(gw: Gateway, patient_id: int, baseline_photo_id: int,
                      followup_photo_id: int, *, days_since: int | None = None,
                      cache: dict | None = None) -> dict:
    """The stored comparison of two photos; computed and saved the first time.

    ``cache`` (photo id → AnalysedPhoto) lets a caller comparing many photos
    against one baseline decode it once.
    """
    from .compare import compare_analysed

    hit = stored_comparison(gw, patient_id, baseline_photo_id, followup_photo_id)
    if hit is not None:
        return hit
    if not getattr(gw.principal, "can_write", False):
        raise StoreError("this comparison has not been computed yet")
    cache = {} if cache is None else cache
    for pid in (baseline_photo_id, followup_photo_id):
        if pid not in cache:
            cache[pid] = analysed_from_store(gw, pid)
    comparison, _ = compare_analysed(cache[baseline_photo_id], cache[followup_photo_id],
                                     days_since_treatment=days_since)
    result = comparison.to_dict()
    cid = gw.save_comparison(baseline_photo_id, followup_photo_id, result)
    return {"id": cid, "baseline_photo_id": baseline_photo_id,
            "followup_photo_id": followup_photo_id,
            "algorithm_version": result["algorithm_version"], "result": result}


def compare_with_baseline(gw: Gateway, patient_id: int, photo_id: int) -> tuple[dict | None, list[str]]:
    """Compare a newly analysed photo with the patient's baseline (first analysed
    frontal photo) and store it: the stored comparison (None for the baseline
    itself) and :func:`retake_advice` for the photo."""
    timeline = gw.patient_timeline(patient_id)
    visits = comparable_visits(timeline)
    if not visits:
        return None, []
    base = frontal_photo(visits[0])
    visit, photo = next(((v, p) for v in timeline for p in v.photos if p.id == photo_id), (None, None))
    if base is None or visit is None or base.id == photo_id or visit.visit_date <= visits[0].visit_date:
        return None, []
    comparison = ensure_comparison(gw, patient_id, base.id, photo_id,
                                   days_since=days_since_treatment(timeline, visit.visit_date))
    return comparison, retake_advice(_result(base), _result(photo), comparison["result"])


# A follow-up whose face is this much smaller (px/mm) than the baseline's gets retake advice:
# the comparison takes the lower resolution's noise (MDC), e.g. 4.1 instead of 8.2 px/mm.
FACE_SIZE_RATIO = 0.8


def retake_advice(baseline_result: dict, followup_result: dict, comparison_result: dict | None) -> list[str]:
    """What makes a new follow-up photo compare less well with the baseline and a retake
    (while the patient is still there) would fix: an alignment that is not trusted,
    a smaller face, another camera, ISO or way of saving (``compare.capture_differences``)."""
    from .compare import capture_differences

    advice = []
    alignment = (comparison_result or {}).get("alignment") or {}
    if alignment and not alignment.get("ok"):
        advice.append(f"it could not be lined up with the baseline ({alignment.get('reason')}): "
                      "retake it with the baseline's framing, pose and expression")
    bp = (baseline_result.get("summary") or {}).get("px_per_mm")
    fp = (followup_result.get("summary") or {}).get("px_per_mm")
    if bp and fp and fp < FACE_SIZE_RATIO * bp:
        advice.append(f"the face is smaller than in the baseline ({fp:.1f} vs {bp:.1f} px/mm): "
                      "changes must then be larger to be detected; retake from the baseline's distance")
    return advice + capture_differences(baseline_result.get("capture") or {},
                                        followup_result.get("capture") or {})


def baseline_comparisons(gw: Gateway, patient_id: int, timeline) -> list[tuple[Any, dict]]:
    """``(visit, stored comparison)`` of every later visit whose frontal photo
    has a stored comparison with the baseline, in date order (nothing computed)."""
    visits = comparable_visits(timeline)
    if len(visits) < 2:
        return []
    from .compare import pick_stored

    base = frontal_photo(visits[0]).id
    stored = gw.comparisons(patient_id)
    out = []
    for v in visits[1:]:
        c = pick_stored(stored, base, frontal_photo(v).id)
        if c is not None:
            out.append((v, c))
    return out


def comparable_visits(timeline) -> list:
    """Visits with an analysed photo, in date order."""
    return [v for v in timeline if frontal_photo(v) is not None]


# ------------------------------------------------------------------ plain language


# What a change may partly be (``compare``: the ``caution`` of a summary change), for a patient
CAUTION_WORDING = {"pigment": "part of this may be the change in pigmentation",
                   "redness": "this may come from redness, e.g. after a treatment"}


def plain_change(key: str, delta: dict | None, since: str = "your first visit") -> str:
    """A sentence for a patient about one summary change; never claims a change
    that is not significant.  ``since`` names the earlier visit."""
    from .compare import BEYOND_PIGMENT, BEYOND_TEXTURE

    label = METRIC_LABELS[key]
    d = delta or {}
    status = str(d.get("status") or "not measured")
    rel = d.get("relative")
    if d.get("significant") and status.startswith(("improved", "worse")) and rel is not None:
        pct = abs(100 * rel)
        direction = "lower" if rel < 0 else "higher"
        text = f"{label} {pct:.0f} % {direction} than at {since}"
        if "expected" in status:
            text += " (expected shortly after a treatment, not a trend)"
        elif d.get("caution") in CAUTION_WORDING:
            text += f" ({CAUTION_WORDING[d['caution']]})"
        return text
    if status == "no detectable change":
        return f"{label}: no detectable change since {since}"
    if status == BEYOND_PIGMENT and key == "redness":
        return (f"{label}: changed no more than the change in your pigmentation moves it in a "
                f"photo since {since}, so no change of its own can be confirmed")
    if status == BEYOND_PIGMENT:
        return (f"{label}: changed no more than your pigmentation did since {since}; in a photo "
                "a pigment change alone does that, so no change of its own can be confirmed")
    if status == BEYOND_TEXTURE:
        return (f"{label}: changed no more than the change in your skin's texture moves it in a "
                f"photo since {since}, so no change of its own can be confirmed")
    if status == "not calibrated":
        return (f"{label}: no detectable change can be confirmed yet "
                "(the measurement noise is not calibrated)")
    if status.startswith("not comparable"):
        return f"{label}: not compared: the photos could not be lined up reliably"
    return f"{label}: could not be measured on these photos"


def plain_summary(comparison_result: dict, since: str = "your first visit") -> list[str]:
    delta = comparison_result.get("delta") or {}
    return [plain_change(k, delta.get(k), since) for k in SUMMARY_KEYS]


def change_table(comparison_result: dict) -> list[dict]:
    """Rows ``{metric, baseline, follow-up, change, relative %, noise (MDC), noise measured on,
    status}`` of the summary; "noise measured on" says which calibration the MDC came from
    (skin tone, photos saved alike: ``compare.summary_mdc``)."""
    from .compare import mdc_source, with_caution

    rows = []
    for key in SUMMARY_KEYS:
        d = (comparison_result.get("delta") or {}).get(key) or {}
        b = ((comparison_result.get("baseline") or {}).get("summary") or {}).get(key)
        f = ((comparison_result.get("followup") or {}).get("summary") or {}).get(key)
        rel = d.get("relative")
        rows.append({"metric": METRIC_LABELS[key], "baseline": b, "follow-up": f,
                     "change": d.get("value"),
                     "relative %": None if rel is None else round(100 * rel, 1),
                     "noise (MDC)": d.get("mdc"),
                     "noise measured on": mdc_source(d["mdc_tone"]) if d.get("mdc_tone") else None,
                     "status": with_caution(str(d.get("status")), d) if d.get("status") else None})
    return rows


def region_table(comparison_result: dict, region: str) -> list[dict]:
    """Every metric's change in one region of a comparison."""
    rows = []
    for name, m in sorted(((comparison_result.get("regions") or {}).get(region) or {}).items()):
        rows.append({"metric": name, "unit": m.get("unit"), "baseline": m.get("baseline"),
                     "follow-up": m.get("followup"), "change": m.get("delta"),
                     "status": m.get("status")})
    return rows
