"""Streamlit helpers the pages share: the cached store, session state, the
signed-in principal and cached pictures.  No SQL and no image maths here:
those live in ``analyzer.dashboard_data`` and ``analyzer.views``."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import streamlit as st

from analyzer import dashboard_data as dd
from analyzer import views
from analyzer.config import Settings
from analyzer.errors import AnalyzerError

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "ui" / "pages"
STATE_DEFAULTS = {
    "principal": None, "signed_in_at": None, "last_seen": None, "patient_id": None,
    "share_token": None, "share_principal": None, "new_share_link": None,
    "upload_results": None, "upload_round": 0,
}
REGION_LABELS = {r: r.replace("_", " ") for r in dd.REGION_NAMES}


def init_state() -> None:
    """Initialise every session key once."""
    for key, value in STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value


def settings() -> Settings:
    return Settings.from_env()


@st.cache_resource(show_spinner=False)
def _open_store(data_dir: str, database_url: str | None):
    from analyzer.store import Store

    return Store.open(replace(Settings.from_env(), data_dir=Path(data_dir),
                              database_url=database_url))


def store():
    """The store for the configured data directory / database (opened once)."""
    s = settings()
    return _open_store(str(s.data_dir), s.database_url)


@st.cache_resource(show_spinner=False)
def landmarker():
    """The face landmark model, loaded once per server."""
    from analyzer.face import get_landmarker

    return get_landmarker(settings().model_path)


def session_expired(principal_started: float | None, last_seen: float | None) -> bool:
    try:
        from analyzer.auth import session_expired as expired
    except ImportError:
        return principal_started is None or time.time() - (last_seen or 0) > 30 * 60
    return expired(principal_started, last_seen, time.time())


def current_principal():
    """The signed-in principal, or None (also when the session timed out)."""
    init_state()
    p = st.session_state.principal
    if p is None:
        return None
    if session_expired(st.session_state.signed_in_at, st.session_state.last_seen):
        sign_out("Your session timed out: please sign in again.")
        return None
    st.session_state.last_seen = time.time()
    return p


def sign_out(message: str | None = None) -> None:
    for key, value in STATE_DEFAULTS.items():
        st.session_state[key] = value
    if message:
        st.session_state["signout_message"] = message


def require_principal():
    """The principal, or stop the page with a sign-in hint."""
    p = current_principal()
    if p is None or getattr(p, "is_patient", False):
        st.warning("Please sign in.")
        st.stop()
    return p


def share_url(token: str) -> str:
    """The patient's link: this dashboard's address with ``?share=TOKEN``."""
    base = getattr(st.context, "url", None) or "http://localhost:8501/"
    base = base.split("?", 1)[0]
    for page in ("/patients", "/record", "/compare", "/progress"):
        if base.endswith(page):
            base = base[: -len(page)] + "/"
    return f"{base.rstrip('/')}/?share={token}"


def gateway(principal=None) -> dd.Gateway:
    return dd.Gateway(store(), principal or st.session_state.principal)


def who(principal) -> str:
    """Cache key part: pictures are cached per principal."""
    return f"{principal.role}:{principal.user_id}:{principal.patient_id}:{principal.username}"


def go(page: str) -> None:
    """Switch to ``ui/pages/<page>`` (a page run on its own, e.g. in a test,
    has no navigation: then it just says where to go)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.switch_page(str(PAGES / page))
    except StreamlitAPIException:
        st.info(f"Open the {page.removesuffix('.py')} page.")


def link(page: str, label: str, icon: str | None = None) -> None:
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(str(PAGES / page), label=label, icon=icon)
    except StreamlitAPIException:
        st.caption(f"→ {label}")


def require_patient(gw: dd.Gateway):
    """The selected patient record, or stop with a hint."""
    pid = st.session_state.patient_id
    if pid is None:
        st.info("Choose a patient on the **Patients** page first.")
        link("patients.py", "Patients", ":material/group:")
        st.stop()
    return gw.get_patient(pid)


# ------------------------------------------------------------- cached pictures


@st.cache_data(show_spinner=False, max_entries=64)
def face_view(_gw: dd.Gateway, key: str, photo_id: int) -> views.FaceView:
    landmarker()
    return views.face_view(_gw.photo_bytes(photo_id), _gw.settings)


@st.cache_data(show_spinner=False, max_entries=64)
def photo_thumb(_gw: dd.Gateway, key: str, photo_id: int, side: int = 360):
    return views.thumbnail(views.decode(_gw.photo_bytes(photo_id), _gw.settings), side)


@st.cache_data(show_spinner="Preparing the pictures…", max_entries=16)
def pair_pictures(_gw: dd.Gateway, key: str, comparison_id: int, baseline_id: int,
                  followup_id: int, _result: dict) -> dict:
    """Aligned crops, change maps and the alignment overlay of a stored comparison."""
    base = face_view(_gw, key, baseline_id)
    follow_rgb = views.decode(_gw.photo_bytes(followup_id), _gw.settings)
    before, after, skin = views.aligned_pair(base, follow_rgb, _result["alignment"]["matrix"])
    maps = views.change_maps(before, after, skin, _result)
    return {"before": views.thumbnail(before), "after": views.thumbnail(after),
            "maps": {k: views.thumbnail(v) for k, v in maps.items()},
            "overlay": views.thumbnail(views.alignment_overlay(base, follow_rgb, _result), 1400)}


@st.cache_data(show_spinner=False, max_entries=32)
def photo_maps(_gw: dd.Gateway, key: str, photo_id: int, analysis_id: int, _summary: dict) -> dict:
    """Redness, pigmentation and texture heatmaps of one stored photo, drawn with its own
    analysis ``_summary`` (colour correction, scale); cached per analysis."""
    return {k: views.thumbnail(v, 700)
            for k, v in views.stored_photo_maps(face_view(_gw, key, photo_id), _summary).items()}


@st.cache_data(show_spinner=False, max_entries=64)
def region_picture(_gw: dd.Gateway, key: str, photo_id: int, region: str):
    base = face_view(_gw, key, photo_id)
    box = views.face_crop_box(base.regions["whole_face"])
    return views.thumbnail(views.crop(views.region_tint(base.rgb, base.regions, region), box), 700)


def before_after(pics: dict, before_label: str, after_label: str, height: int = 560) -> None:
    """The before/after slider (self-contained HTML, no network)."""
    html = views.before_after_html(views.data_uri(pics["before"]), views.data_uri(pics["after"]),
                                   before_label=before_label, after_label=after_label,
                                   height=height)
    st.iframe(html, height=height + 10)


DOWNLOADS = (  # (label, kind, format, staff only)
    ("PDF progress report", "progress-report", "pdf", False),
    ("Aligned time-lapse (GIF)", "timelapse", "gif", False),
    ("All metrics (CSV)", "metrics", "csv", True),
)


def downloads(gw: dd.Gateway, patient_id: int, code: str, *, staff: bool) -> None:
    """Buttons that build a report, time-lapse or export once, then offer the file."""
    from analyzer import report

    builders = {
        "pdf": lambda: report.build_report(gw.store, patient_id, actor=gw.actor),
        "gif": lambda: report.build_timelapse(gw.store, patient_id, actor=gw.actor, fmt="gif"),
        "csv": lambda: report.export_metrics(gw.store, actor=gw.actor, patient_id=patient_id, fmt="csv"),
    }
    cols = st.columns(len(DOWNLOADS))
    for col, (label, kind, fmt, staff_only) in zip(cols, DOWNLOADS):
        if staff_only and not staff:
            continue
        cache = f"download_{kind}_{patient_id}"
        if cache not in st.session_state:
            if col.button(f"Prepare {label}", key=f"prepare_{kind}"):
                with st.spinner(f"Preparing the {label}…"):
                    try:
                        st.session_state[cache] = builders[fmt]()
                    except AnalyzerError as exc:
                        col.error(str(exc))
        if cache in st.session_state:
            col.download_button(f"Download {label}", st.session_state[cache],
                                file_name=report.file_name(kind, code, fmt),
                                mime=report.MEDIA_TYPES[fmt], key=f"download_{kind}")
