"""Progress reports: PDF report, aligned time-lapse and metric export.

Functions the dashboard calls for download buttons; each returns bytes and
reads the store as ``actor`` (a :class:`~analyzer.auth.Principal`, or a plain
string for trusted local use), so the store's access rules apply.  Stored
analyses and comparisons are used as they are; nothing is measured again
(a follow-up never compared with its baseline is aligned, ~1 s, for its crop).

>>> pdf = build_report(store, patient_id, actor=principal)          # doctest: +SKIP
>>> gif = build_timelapse(store, patient_id, actor=principal)       # doctest: +SKIP
>>> csv = export_metrics(store, actor=principal, clinic_id=1)       # doctest: +SKIP
"""
from __future__ import annotations

from ..errors import ReportError
from .course import Course, load_course, resolve_patient
from .export import COLUMNS, FORMATS
from .pdf import format_number

TIMELAPSE_FORMATS = ("gif", "mp4")
MEDIA_TYPES = {"pdf": "application/pdf", "gif": "image/gif", "mp4": "video/mp4",
               "csv": "text/csv", "json": "application/json"}

__all__ = ["build_report", "build_timelapse", "export_metrics", "timelapse_frames",
           "load_course", "Course", "COLUMNS", "FORMATS", "TIMELAPSE_FORMATS", "MEDIA_TYPES",
           "format_number", "file_name"]


def build_report(store, patient_id: int | str, *, actor, include_name: bool = False) -> bytes:
    """The PDF progress report of one patient.

    Parameters
    ----------
    store : Store
    patient_id : int or str
        Patient id, or patient code.
    actor : Principal or str
        Who asks (store reads are scoped to it).
    include_name : bool
        Print the patient's name (default: the pseudonymous code only).

    Returns
    -------
    bytes
        ``application/pdf``.

    Raises
    ------
    NotFoundError, PermissionDenied
        Unknown patient, or out of the actor's reach.
    ReportError
        The patient has no visits.
    """
    from .frames import course_frames, latest_change_maps
    from .pdf import render_report

    course = load_course(store, patient_id, actor=actor)
    frames = {view: course_frames(store, course, view, actor=actor) for view in course.views()}
    return render_report(course, frames, include_name=include_name,
                         change_maps=latest_change_maps(store, course, actor=actor))


def timelapse_frames(store, patient_id: int | str, *, actor, aligned: bool = True,
                     view: str = "frontal", side: int | None = None) -> list:
    """The time-lapse frames (RGB uint8 arrays, one per visit with an analysed
    photo of ``view``, date burnt in); ``aligned=False`` gives the same crops unaligned."""
    from .frames import TIMELAPSE_SIDE
    from .frames import timelapse_frames as frames

    course = load_course(store, patient_id, actor=actor)
    return frames(store, course, actor=actor, view=view, aligned=aligned,
                  side=side or TIMELAPSE_SIDE)


def build_timelapse(store, patient_id: int | str, *, actor, fmt: str = "gif",
                    view: str = "frontal", side: int | None = None,
                    seconds_per_visit: float | None = None) -> bytes:
    """An aligned time-lapse of the course: each visit's photo warped into the
    baseline frame, cropped to the face, visit date burnt in.

    Parameters
    ----------
    fmt : {"gif", "mp4"}
        Animated GIF (default), or MP4 where OpenCV can write it.
    view : str
        Which photos (default frontal).
    side : int, optional
        Longest side of a frame in px (default 512).
    seconds_per_visit : float, optional
        Display time of each visit (default 0.9 s; the last is held twice as long).

    Raises
    ------
    ReportError
        Unknown format, no analysed photo, or MP4 not available here.
    """
    from .frames import FRAME_SECONDS, encode_gif, encode_mp4

    fmt = str(fmt or "").strip().lower().lstrip(".")
    if fmt not in TIMELAPSE_FORMATS:
        raise ReportError(f"unknown time-lapse format {fmt!r}; use gif or mp4")
    frames = timelapse_frames(store, patient_id, actor=actor, view=view, side=side)
    seconds = seconds_per_visit or FRAME_SECONDS
    return encode_gif(frames, seconds) if fmt == "gif" else encode_mp4(frames, seconds)


def export_metrics(store, *, actor, patient_id: int | str | None = None,
                   clinic_id: int | None = None, fmt: str = "csv",
                   all_analyses: bool = False) -> bytes:
    """Every stored metric of a patient, a clinic, or every patient the actor sees.

    One row per photo × region × metric with :data:`COLUMNS`: clinic id,
    patient code (never the name), visit id, date and day, treatment, photo id,
    view, analysis id, algorithm version, analysis time, capture quality,
    region, metric, value, unit, direction.

    Parameters
    ----------
    patient_id : int or str, optional
        One patient (id or code).
    clinic_id : int, optional
        All patients of a clinic (a signed-in account: its own clinic only).
    fmt : {"csv", "json"}
    all_analyses : bool
        Every stored analysis of each photo, not only the latest.

    Raises
    ------
    ReportError
        Unknown format, or the patient is not in ``clinic_id``.
    """
    from .export import check_format, encode, metric_rows

    fmt = check_format(fmt)
    if patient_id is not None:
        patient = resolve_patient(store, patient_id, actor=actor)
        if clinic_id is not None and patient.clinic_id != clinic_id:
            raise ReportError(f"patient {patient.code} is not a patient of clinic {clinic_id}")
        patients = [patient]
        scope = {"patient_code": patient.code}
    else:
        patients = store.list_patients(clinic_id=clinic_id, actor=actor)
        scope = {"clinic_id": clinic_id} if clinic_id is not None else {"all_visible": True}
    rows = metric_rows(store, patients, actor=actor, all_analyses=all_analyses)
    return encode(rows, fmt, scope=scope)


def file_name(kind: str, code: str | None, fmt: str) -> str:
    """A download file name, e.g. ``progress-report-P-014.pdf`` (code only, no name)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in (code or "all"))[:64]
    return f"{kind}-{safe}.{fmt}"
