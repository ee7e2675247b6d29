"""One patient's course as stored: visits, analysed photos per view, comparisons.

Everything here is read from the store (as ``actor``, so its access rules
apply); nothing is measured again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from ..compare import pick_stored
from ..errors import NotFoundError, ReportError

VIEW_ORDER = ("frontal", "left_45", "right_45")
SUMMARY_KEYS = ("texture", "redness", "pigmentation")


@dataclass
class Course:
    """A patient's stored record, arranged for reports.

    Attributes
    ----------
    patient : PatientRecord
    clinic_name : str or None
    visits : list of VisitRecord
        By date.
    comparisons : list of dict
        As :meth:`Store.comparisons` returns them.
    """

    patient: object
    clinic_name: str | None
    visits: list
    comparisons: list = field(default_factory=list)

    @property
    def first_date(self) -> date | None:
        return self.visits[0].visit_date if self.visits else None

    def day(self, visit) -> int:
        """Days since the first visit."""
        return (visit.visit_date - self.first_date).days

    def photo(self, visit, view: str = "frontal"):
        """The visit's first photo of ``view`` with a successful analysis, or None."""
        ok = [p for p in visit.photos if p.view == view and p.latest_analysis is not None
              and p.latest_analysis.status == "ok" and p.latest_analysis.result]
        return min(ok, key=lambda p: p.id) if ok else None

    def views(self) -> list[str]:
        """Views with at least one analysed photo, frontal first."""
        out = []
        for view in VIEW_ORDER + tuple(sorted({p.view for v in self.visits for p in v.photos}
                                              - set(VIEW_ORDER))):
            if sum(self.photo(v, view) is not None for v in self.visits) >= 1:
                out.append(view)
        return out

    def series(self, view: str = "frontal") -> list[tuple]:
        """``(visit, photo)`` of every visit with an analysed photo of ``view``, by date;
        the first is the baseline."""
        return [(v, p) for v in self.visits if (p := self.photo(v, view)) is not None]

    def comparison(self, baseline_photo_id: int, followup_photo_id: int) -> dict | None:
        """The stored comparison of two photos: at the current algorithm version
        if there is one, else the newest."""
        return pick_stored(self.comparisons, baseline_photo_id, followup_photo_id)

    def latest_comparison(self, view: str = "frontal") -> tuple:
        """``(visit, comparison)`` of the latest visit of ``view`` with a stored
        comparison against the baseline, or ``(None, None)``."""
        series = self.series(view)
        if len(series) < 2:
            return None, None
        base = series[0][1]
        for visit, photo in reversed(series[1:]):
            c = self.comparison(base.id, photo.id)
            if c is not None:
                return visit, c
        return None, None

    def algorithm_versions(self) -> list[str]:
        """Algorithm versions of the analyses and comparisons the report uses."""
        seen = set()
        for v in self.visits:
            for p in v.photos:
                if p.latest_analysis is not None and p.latest_analysis.status == "ok":
                    seen.add(p.latest_analysis.algorithm_version)
        for c in self.comparisons:
            seen.add(c.get("algorithm_version") or "unknown")
        return sorted(seen)


def resolve_patient(store, patient: int | str, *, actor) -> object:
    """The patient record for an id or a code (codes win over ids).

    Raises
    ------
    NotFoundError
        No such patient (or not within the actor's reach).
    """
    if isinstance(patient, str):
        text = patient.strip()
        found = store.find_patient(text, actor=actor) if text else None
        if found is not None:
            return found
        if not text.isdigit():
            raise NotFoundError(f"there is no patient with code {text!r}")
        patient = int(text)
    return store.get_patient(int(patient), actor=actor)


def load_course(store, patient_id: int | str, *, actor) -> Course:
    """Read a patient's course (visits, photos with latest analyses, comparisons).

    Raises
    ------
    NotFoundError, PermissionDenied
        From the store.
    ReportError
        The patient has no visits yet.
    """
    patient = resolve_patient(store, patient_id, actor=actor)
    visits = store.patient_timeline(patient.id, actor=actor)
    if not visits:
        raise ReportError(f"patient {patient.code} has no visits yet: add a visit with photos "
                          "before making a report")
    comparisons = store.comparisons(patient.id, actor=actor)
    return Course(patient, clinic_name(store, patient.clinic_id), visits, comparisons)


def clinic_name(store, clinic_id: int | None) -> str | None:
    """The clinic's name (read after the patient's access check; names of clinics
    are not personal data)."""
    if clinic_id is None:
        return None
    getter = getattr(store, "get_clinic", None)
    if callable(getter):  # a future store API
        try:
            clinic = getter(clinic_id)
            return getattr(clinic, "name", clinic)
        except Exception:  # noqa: BLE001 - fall back to a direct read
            pass
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ..store.models import Clinic

    with Session(store.engine) as s:
        return s.execute(select(Clinic.name).where(Clinic.id == clinic_id)).scalar_one_or_none()


def treatment_text(visit) -> str:
    """Procedure and settings of a visit in one line ("" for a photo-only visit)."""
    if not visit.procedure:
        return ""
    bits = [visit.procedure]
    if visit.device:
        bits.append(visit.device)
    if visit.needle_depth_mm is not None:
        bits.append(f"needle depth {visit.needle_depth_mm:g} mm")
    if visit.passes is not None:
        bits.append(f"{visit.passes} passes")
    if visit.serum:
        bits.append(visit.serum)
    return ", ".join(bits)
