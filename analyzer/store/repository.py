"""The store's API: every read and write of patients, visits, photos and results.

Each write takes ``actor`` (who does it) and records it in the audit log in
the same transaction, so authorization can later be enforced here.  Results
are plain dataclasses, detached from the database session.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ..config import Settings
from ..errors import DuplicateError, NotFoundError, StoreError
from . import db
from .blobs import BlobStore, LocalBlobStore, open_blob_store
from .models import Analysis, AuditEntry, Clinic, Comparison, Patient, Photo, Practitioner, Visit

VIEWS = ("frontal", "left_45", "right_45")
SKIN_CONDITIONS = ("clean", "fresh_makeup", "other")
SKIN_TYPES = ("I", "II", "III", "IV", "V", "VI")
EXPORT_FORMAT = 1
_PG_MIGRATION_LOCK = 7_421_001


# ----------------------------------------------------------------- records


@dataclass(frozen=True)
class PatientRecord:
    id: int
    code: str
    name: str | None
    skin_type: str | None
    consent: bool
    consent_date: date | None
    clinic_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class AnalysisRecord:
    id: int
    photo_id: int
    algorithm_version: str
    status: str
    error: str | None
    quality_overall: str | None
    texture: float | None
    redness: float | None
    pigmentation: float | None
    created_at: datetime
    result: dict | None = None


@dataclass(frozen=True)
class PhotoRecord:
    id: int
    visit_id: int
    patient_id: int
    sha256: str
    blob_key: str
    media_type: str
    size_bytes: int
    view: str
    captured_at: datetime | None
    camera: str | None
    width: int
    height: int
    orientation: int
    skin_condition: str | None
    lighting: str | None
    camera_setup: str | None
    created_at: datetime
    created: bool = False
    latest_analysis: AnalysisRecord | None = None


@dataclass(frozen=True)
class VisitRecord:
    id: int
    patient_id: int
    visit_date: date
    procedure: str | None
    device: str | None
    needle_depth_mm: float | None
    passes: int | None
    serum: str | None
    notes: str | None
    post_care: str | None
    practitioner_id: int | None
    created_at: datetime
    photos: list[PhotoRecord] = field(default_factory=list)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    patient_id: int | None
    details: dict | None


@dataclass(frozen=True)
class PreparedPhoto:
    """An upload decoded, checked and sanitized, ready for :meth:`Store.add_photo`."""

    source_sha256: str
    info: Any  # intake.CaptureInfo of the upload
    sanitized: Any  # sanitize.SanitizedPhoto


def prepare_photo(data: bytes, settings: Settings) -> PreparedPhoto:
    """Decode ``data`` with intake (raises IntakeError) and make its sanitized copy."""
    from ..intake import load_photo
    from ..sanitize import sanitize_photo

    photo = load_photo(data, settings)
    return PreparedPhoto(hashlib.sha256(data).hexdigest(), photo.info,
                         sanitize_photo(data, photo.info, photo.pixels))


def settings_key(settings: Settings) -> str:
    """Short hash of the settings that can change a result (the model)."""
    relevant = {"model": str(settings.model_path or "bundled")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------- store


class Store:
    """Database plus photo blobs.  Open with :meth:`Store.open`; close when done.

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
        Connected to a migrated database.
    blobs : BlobStore
        Where the sanitized photos are kept.
    settings : Settings
        Limits used when decoding uploads.
    """

    def __init__(self, engine, blobs: BlobStore, settings: Settings):
        self.engine = engine
        self.blobs = blobs
        self.settings = settings
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings | None = None, *, url: str | None = None,
             blobs: BlobStore | str | Path | None = None, migrate: bool = True) -> "Store":
        """Open (and by default create or upgrade) the store.

        Parameters
        ----------
        settings : Settings, optional
            ``database_url`` and ``data_dir``; defaults to ``Settings.from_env()``.
        url : str, optional
            Database URL overriding the settings.
        blobs : BlobStore or path or URL, optional
            Photo store; default ``<data_dir>/photos``.
        migrate : bool
            Upgrade the schema to the newest revision; if False, a database at
            another revision raises StoreError.
        """
        settings = settings or Settings.from_env()
        engine = db.make_engine(url or db.database_url(settings))
        try:
            if migrate:
                _migrate(engine)
            else:
                have, want = db.current_revision(engine), db.head_revision()
                if have != want:
                    raise StoreError(f"the database schema is at revision {have}, this version "
                                     f"needs {want}; run `python -m analyzer db upgrade`")
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the database: {_first_line(exc)}") from None
        except BaseException:
            engine.dispose()
            raise
        if blobs is None:
            blobs = LocalBlobStore(Path(settings.data_dir) / "photos")
        elif isinstance(blobs, (str, Path)):
            blobs = open_blob_store(blobs)
        return cls(engine, blobs, settings)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                with session.begin():
                    yield session
            except OperationalError as exc:
                raise StoreError(f"database error: {_first_line(exc)}") from None

    def _audit(self, s: Session, actor: str, action: str, entity: str, entity_id: int | None,
               patient_id: int | None, details: dict | None = None) -> None:
        s.add(AuditEntry(at=_now(), actor=actor, action=action, entity=entity,
                         entity_id=entity_id, patient_id=patient_id, details=details))

    def _lock_patient(self, s: Session, patient_id: int) -> Patient:
        """Serialize writers of one patient's record (row lock on PostgreSQL;
        SQLite transactions are already exclusive)."""
        patient = s.execute(select(Patient).where(Patient.id == patient_id)
                            .with_for_update()).scalar_one_or_none()
        if patient is None:
            raise NotFoundError(f"patient {patient_id} does not exist")
        return patient

    # -- clinics and practitioners

    def create_clinic(self, name: str, *, actor: str) -> int:
        """Add a clinic; returns its id."""
        actor = _actor(actor)
        name = _text(name, "clinic name", required=True)
        try:
            with self._tx() as s:
                clinic = Clinic(name=name, created_at=_now())
                s.add(clinic)
                s.flush()
                self._audit(s, actor, "clinic.create", "clinic", clinic.id, None)
                return clinic.id
        except IntegrityError:
            raise DuplicateError("a clinic with that name already exists") from None

    def create_practitioner(self, name: str, *, actor: str, clinic_id: int | None = None,
                            role: str | None = None) -> int:
        """Add a practitioner; returns its id."""
        actor = _actor(actor)
        with self._tx() as s:
            if clinic_id is not None and s.get(Clinic, clinic_id) is None:
                raise NotFoundError(f"clinic {clinic_id} does not exist")
            p = Practitioner(name=_text(name, "practitioner name", required=True),
                             clinic_id=clinic_id, role=_text(role, "role"), created_at=_now())
            s.add(p)
            s.flush()
            self._audit(s, actor, "practitioner.create", "practitioner", p.id, None)
            return p.id

    # -- patients

    def create_patient(self, code: str, *, actor: str, name: str | None = None,
                       skin_type: str | None = None, consent: bool = False,
                       consent_date: date | str | None = None,
                       clinic_id: int | None = None) -> PatientRecord:
        """Add a patient identified by a pseudonymous ``code``.

        Raises
        ------
        DuplicateError
            The code is taken.
        """
        actor = _actor(actor)
        code = _code(code)
        values = dict(name=_text(name, "name"), skin_type=_skin_type(skin_type),
                      consent=bool(consent), consent_date=_date(consent_date, "consent date"),
                      clinic_id=clinic_id)
        try:
            with self._tx() as s:
                if clinic_id is not None and s.get(Clinic, clinic_id) is None:
                    raise NotFoundError(f"clinic {clinic_id} does not exist")
                p = Patient(code=code, created_at=_now(), **values)
                s.add(p)
                s.flush()
                self._audit(s, actor, "patient.create", "patient", p.id, p.id)
                return _patient_rec(p)
        except IntegrityError:
            raise DuplicateError(f"patient code {code} is already used") from None

    def update_patient(self, patient_id: int, *, actor: str, **changes) -> PatientRecord:
        """Change ``name``, ``skin_type``, ``consent``, ``consent_date`` or ``clinic_id``."""
        actor = _actor(actor)
        allowed = {"name", "skin_type", "consent", "consent_date", "clinic_id"}
        unknown = set(changes) - allowed
        if unknown:
            raise StoreError(f"cannot change {', '.join(sorted(unknown))} of a patient")
        if "name" in changes:
            changes["name"] = _text(changes["name"], "name")
        if "skin_type" in changes:
            changes["skin_type"] = _skin_type(changes["skin_type"])
        if "consent_date" in changes:
            changes["consent_date"] = _date(changes["consent_date"], "consent date")
        if "consent" in changes:
            changes["consent"] = bool(changes["consent"])
        with self._tx() as s:
            p = self._lock_patient(s, patient_id)
            for k, v in changes.items():
                setattr(p, k, v)
            self._audit(s, actor, "patient.update", "patient", p.id, p.id,
                        {"fields": sorted(changes)})
            return _patient_rec(p)

    def get_patient(self, patient_id: int) -> PatientRecord:
        """The patient with this id (NotFoundError if absent)."""
        with self._tx() as s:
            p = s.get(Patient, patient_id)
            if p is None:
                raise NotFoundError(f"patient {patient_id} does not exist")
            return _patient_rec(p)

    def find_patient(self, code: str) -> PatientRecord | None:
        """The patient with this code, or ``None``."""
        with self._tx() as s:
            p = s.execute(select(Patient).where(Patient.code == _code(code))).scalar_one_or_none()
            return _patient_rec(p) if p else None

    def list_patients(self, *, search: str | None = None,
                      clinic_id: int | None = None) -> list[PatientRecord]:
        """Patients ordered by code; ``search`` matches part of the code or name."""
        q = select(Patient).order_by(Patient.code)
        if clinic_id is not None:
            q = q.where(Patient.clinic_id == clinic_id)
        if search:
            like = f"%{search.lower()}%"
            q = q.where(or_(func.lower(Patient.code).like(like),
                            func.lower(Patient.name).like(like)))
        with self._tx() as s:
            return [_patient_rec(p) for p in s.execute(q).scalars()]

    # -- visits

    def add_visit(self, patient_id: int, visit_date: date | str, *, actor: str,
                  procedure: str | None = None, device: str | None = None,
                  needle_depth_mm: float | None = None, passes: int | None = None,
                  serum: str | None = None, notes: str | None = None,
                  post_care: str | None = None,
                  practitioner_id: int | None = None) -> VisitRecord:
        """Add a visit (treatment session) to a patient.

        ``serum`` is the product applied, e.g. ``"PRP"`` or a serum's name.
        """
        actor = _actor(actor)
        values = _visit_values(procedure=procedure, device=device,
                               needle_depth_mm=needle_depth_mm, passes=passes, serum=serum,
                               notes=notes, post_care=post_care)
        day = _date(visit_date, "visit date", required=True)
        with self._tx() as s:
            self._lock_patient(s, patient_id)
            if practitioner_id is not None and s.get(Practitioner, practitioner_id) is None:
                raise NotFoundError(f"practitioner {practitioner_id} does not exist")
            v = Visit(patient_id=patient_id, visit_date=day, practitioner_id=practitioner_id,
                      created_at=_now(), **values)
            s.add(v)
            s.flush()
            self._audit(s, actor, "visit.create", "visit", v.id, patient_id)
            return _visit_rec(v, [])

    def update_visit(self, visit_id: int, *, actor: str, **changes) -> VisitRecord:
        """Change treatment fields (procedure, device, needle_depth_mm, passes,
        serum, notes, post_care), ``visit_date`` or ``practitioner_id``."""
        actor = _actor(actor)
        day = changes.pop("visit_date", None)
        practitioner = changes.pop("practitioner_id", ...)
        values = _visit_values(**changes)
        with self._tx() as s:
            v = s.get(Visit, visit_id)
            if v is None:
                raise NotFoundError(f"visit {visit_id} does not exist")
            self._lock_patient(s, v.patient_id)
            for k, val in values.items():
                setattr(v, k, val)
            if day is not None:
                v.visit_date = _date(day, "visit date", required=True)
            if practitioner is not ...:
                v.practitioner_id = practitioner
            self._audit(s, actor, "visit.update", "visit", v.id, v.patient_id,
                        {"fields": sorted(values) + (["visit_date"] if day else [])})
            return _visit_rec(v, [])

    def ensure_visit(self, patient_id: int, visit_date: date | str, *, actor: str) -> VisitRecord:
        """The patient's first visit on ``visit_date``, created if there is none."""
        actor = _actor(actor)
        day = _date(visit_date, "visit date", required=True)
        with self._tx() as s:
            self._lock_patient(s, patient_id)
            v = s.execute(select(Visit).where(Visit.patient_id == patient_id,
                                              Visit.visit_date == day)
                          .order_by(Visit.id).limit(1)).scalar_one_or_none()
            if v is None:
                v = Visit(patient_id=patient_id, visit_date=day, created_at=_now())
                s.add(v)
                s.flush()
                self._audit(s, actor, "visit.create", "visit", v.id, patient_id)
            return _visit_rec(v, [])

    # -- photos

    def add_photo(self, visit_id: int, data: bytes | PreparedPhoto, *, actor: str,
                  view: str = "frontal", skin_condition: str | None = None,
                  lighting: str | None = None, camera_setup: str | None = None) -> PhotoRecord:
        """Store the sanitized copy of an upload and attach it to a visit.

        The copy is written to the blob store first (atomically), then the row
        is committed, so a crash leaves at most an unreferenced blob.  Adding
        the same photo to the same patient again returns the existing record
        (``created`` False).

        Parameters
        ----------
        data : bytes or PreparedPhoto
            The upload as received (or already prepared by :func:`prepare_photo`).
        view : {"frontal", "left_45", "right_45"}
        skin_condition : {"clean", "fresh_makeup", "other"}, optional
        lighting, camera_setup : str, optional
            Free text describing the capture set-up.

        Raises
        ------
        IntakeError
            The upload is not a usable photo.
        """
        actor = _actor(actor)
        view = _choice(view, VIEWS, "view")
        skin_condition = _choice(skin_condition, SKIN_CONDITIONS, "skin condition", optional=True)
        lighting, camera_setup = _text(lighting, "lighting"), _text(camera_setup, "camera set-up")
        prepared = data if isinstance(data, PreparedPhoto) else prepare_photo(data, self.settings)
        san, info = prepared.sanitized, prepared.info
        key = self.blobs.put(san.data, san.extension)
        sha = key.rsplit("/", 1)[1].split(".")[0]
        capture = {k: v for k, v in info.to_dict().items() if k != "sha256"}
        captured = datetime.fromisoformat(info.captured_at) if info.captured_at else None
        for attempt in range(2):
            try:
                with self._tx() as s:
                    v = s.get(Visit, visit_id)
                    if v is None:
                        raise NotFoundError(f"visit {visit_id} does not exist")
                    self._lock_patient(s, v.patient_id)
                    old = s.execute(select(Photo).where(Photo.patient_id == v.patient_id,
                                                        Photo.sha256 == sha)).scalar_one_or_none()
                    if old is not None:
                        return _photo_rec(old)
                    p = Photo(visit_id=v.id, patient_id=v.patient_id, sha256=sha,
                              source_sha256=prepared.source_sha256, blob_key=key,
                              media_type=san.media_type, size_bytes=len(san.data),
                              sanitize_method=san.method, view=view, captured_at=captured,
                              camera=info.camera, width=info.width, height=info.height,
                              orientation=info.orientation, source_format=info.format,
                              capture=capture, skin_condition=skin_condition, lighting=lighting,
                              camera_setup=camera_setup, created_at=_now())
                    s.add(p)
                    s.flush()
                    self._audit(s, actor, "photo.add", "photo", p.id, v.patient_id,
                                {"visit_id": v.id, "sha256": sha, "view": view,
                                 "dropped_metadata": san.dropped})
                    return _photo_rec(p, created=True)
            except IntegrityError:
                if attempt:  # pragma: no cover - a second race on the same photo
                    raise StoreError("the photo could not be stored (conflicting writes)") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def find_photo_by_source(self, patient_id: int, source_sha256: str) -> PhotoRecord | None:
        """The patient's photo made from an upload with this SHA-256, if any."""
        with self._tx() as s:
            p = s.execute(select(Photo).where(Photo.patient_id == patient_id,
                                              Photo.source_sha256 == source_sha256)
                          .order_by(Photo.id).limit(1)).scalar_one_or_none()
            return _photo_rec(p) if p else None

    def get_photo(self, photo_id: int) -> PhotoRecord:
        """Photo metadata with its latest analysis."""
        with self._tx() as s:
            p = s.get(Photo, photo_id, options=[selectinload(Photo.analyses)])
            if p is None:
                raise NotFoundError(f"photo {photo_id} does not exist")
            return _photo_rec(p, latest=_latest(p.analyses))

    def photo_bytes(self, photo_id: int) -> bytes:
        """The stored (sanitized) file of a photo, checked against its hash."""
        return self.blobs.get(self.get_photo(photo_id).blob_key)

    def photos_needing_analysis(self, algorithm_version: str, *, patient_id: int | None = None,
                                retry_failed: bool = False) -> list[int]:
        """Ids of photos without an analysis at ``algorithm_version`` and these settings
        (with ``retry_failed``, also those whose analysis there failed)."""
        key = settings_key(self.settings)
        done = select(Analysis.photo_id).where(Analysis.algorithm_version == algorithm_version,
                                               Analysis.settings_key == key)
        if retry_failed:
            done = done.where(Analysis.status == "ok")
        q = select(Photo.id).where(Photo.id.not_in(done)).order_by(Photo.id)
        if patient_id is not None:
            q = q.where(Photo.patient_id == patient_id)
        with self._tx() as s:
            return list(s.execute(q).scalars())

    # -- analyses and comparisons

    def save_analysis(self, photo_id: int, result: dict, *, actor: str) -> AnalysisRecord:
        """Store an analysis result (``Analysis.to_dict()``) of a photo.

        Older analyses are kept.  If this photo already has a successful
        analysis at the same algorithm version and settings, that one is
        returned; a failed one is replaced by the success.
        """
        actor = _actor(actor)
        result = _json_safe(result)
        version = str(result.get("algorithm_version") or "unknown")
        summary = result.get("summary") or {}
        quality = (result.get("quality") or {}).get("overall")
        values = dict(status="ok", error=None, result=result,
                      settings=result.get("settings") or {},
                      quality_overall=str(quality) if quality is not None else None,
                      texture=_number(summary.get("texture")),
                      redness=_number(summary.get("redness")),
                      pigmentation=_number(summary.get("pigmentation")))
        return self._put_analysis(photo_id, version, values, actor)

    def record_failed_analysis(self, photo_id: int, algorithm_version: str, error: str, *,
                               actor: str) -> AnalysisRecord:
        """Remember that analysing a photo failed (the photo itself is kept)."""
        actor = _actor(actor)
        values = dict(status="failed", error=str(error)[:2000], result=None, settings={},
                      quality_overall=None, texture=None, redness=None, pigmentation=None)
        return self._put_analysis(photo_id, algorithm_version, values, actor)

    def _put_analysis(self, photo_id: int, version: str, values: dict,
                      actor: str) -> AnalysisRecord:
        key = settings_key(self.settings)
        for attempt in range(2):
            try:
                with self._tx() as s:
                    photo = s.get(Photo, photo_id)
                    if photo is None:
                        raise NotFoundError(f"photo {photo_id} does not exist")
                    self._lock_patient(s, photo.patient_id)
                    a = s.execute(select(Analysis).where(
                        Analysis.photo_id == photo_id, Analysis.algorithm_version == version,
                        Analysis.settings_key == key)).scalar_one_or_none()
                    if a is not None and (a.status == "ok" or values["status"] == "failed"):
                        return _analysis_rec(a)
                    if a is None:
                        a = Analysis(photo_id=photo_id, algorithm_version=version,
                                     settings_key=key, created_at=_now(), **values)
                        s.add(a)
                    else:  # a failed attempt replaced by a success
                        for k, v in values.items():
                            setattr(a, k, v)
                        a.created_at = _now()
                    s.flush()
                    self._audit(s, actor, "analysis." + values["status"], "analysis", a.id,
                                photo.patient_id, {"photo_id": photo_id,
                                                   "algorithm_version": version})
                    return _analysis_rec(a)
            except IntegrityError:
                if attempt:  # pragma: no cover
                    raise StoreError("the analysis could not be saved (conflicting writes)") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def analyses(self, photo_id: int) -> list[AnalysisRecord]:
        """Every analysis of a photo, oldest first, with results."""
        with self._tx() as s:
            rows = s.execute(select(Analysis).where(Analysis.photo_id == photo_id)
                             .order_by(Analysis.id)).scalars()
            return [_analysis_rec(a) for a in rows]

    def save_comparison(self, baseline_photo_id: int, followup_photo_id: int, result: dict, *,
                        actor: str) -> int:
        """Store a before/after comparison of two photos of one patient; returns its id."""
        actor = _actor(actor)
        result = _json_safe(result)
        with self._tx() as s:
            a, b = s.get(Photo, baseline_photo_id), s.get(Photo, followup_photo_id)
            if a is None or b is None:
                missing = baseline_photo_id if a is None else followup_photo_id
                raise NotFoundError(f"photo {missing} does not exist")
            if a.patient_id != b.patient_id:
                raise StoreError("a comparison needs two photos of the same patient")
            self._lock_patient(s, a.patient_id)
            c = Comparison(patient_id=a.patient_id, baseline_photo_id=a.id,
                           followup_photo_id=b.id,
                           algorithm_version=str(result.get("algorithm_version") or "unknown"),
                           result=result, created_at=_now())
            s.add(c)
            s.flush()
            self._audit(s, actor, "comparison.create", "comparison", c.id, a.patient_id,
                        {"baseline_photo_id": a.id, "followup_photo_id": b.id})
            return c.id

    def comparisons(self, patient_id: int) -> list[dict]:
        """A patient's comparisons (id, photo ids, version, result, created_at)."""
        with self._tx() as s:
            rows = s.execute(select(Comparison).where(Comparison.patient_id == patient_id)
                             .order_by(Comparison.id)).scalars()
            return [_comparison_dict(c) for c in rows]

    # -- reading a record

    def patient_timeline(self, patient_id: int) -> list[VisitRecord]:
        """Visits by date, each with its photos and every photo's latest analysis."""
        with self._tx() as s:
            if s.get(Patient, patient_id) is None:
                raise NotFoundError(f"patient {patient_id} does not exist")
            visits = s.execute(
                select(Visit).where(Visit.patient_id == patient_id)
                .order_by(Visit.visit_date, Visit.id)
                .options(selectinload(Visit.photos).selectinload(Photo.analyses))).scalars()
            return [_visit_rec(v, [_photo_rec(p, latest=_latest(p.analyses)) for p in v.photos])
                    for v in visits]

    def audit_log(self, *, patient_id: int | None = None, limit: int = 200) -> list[AuditRecord]:
        """Newest audit entries first (all, or those about one patient)."""
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if patient_id is not None:
            q = q.where(AuditEntry.patient_id == patient_id)
        with self._tx() as s:
            return [AuditRecord(e.id, _utc(e.at), e.actor, e.action, e.entity, e.entity_id,
                                e.patient_id, e.details) for e in s.execute(q).scalars()]

    def counts(self) -> dict[str, int]:
        """Number of rows per table (for status displays and tests)."""
        with self._tx() as s:
            return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                    for m in (Clinic, Practitioner, Patient, Visit, Photo, Analysis, Comparison,
                              AuditEntry)}

    # -- export and erasure

    def export_patient(self, patient_id: int, dest: str | Path, *, actor: str) -> Path:
        """Write one patient's full record to a zip: ``record.json`` and ``photos/``.

        The zip is written to a temporary file and renamed into place; the
        export is audited.  Returns the path of the zip.
        """
        actor = _actor(actor)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"patient-{patient_id}.zip"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = None
        try:
            with self._tx() as s:
                record, files = _export_record(s, patient_id, actor)
                fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=dest.parent)
                with os.fdopen(fd, "wb") as fh:
                    with zipfile.ZipFile(fh, "w") as zf:
                        zf.writestr("record.json", json.dumps(record, indent=2,
                                                              ensure_ascii=False))
                        for name, key in files.items():
                            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)),
                                        self.blobs.get(key), compress_type=zipfile.ZIP_STORED)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._audit(s, actor, "patient.export", "patient", patient_id, patient_id,
                            {"photos": len(files), "visits": len(record["visits"])})
            # The audit entry is committed; only now does the file appear.
            os.replace(tmp, dest)
        except BaseException:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return dest

    def erase_patient(self, patient_id: int, *, actor: str) -> dict[str, int]:
        """Delete a patient with every visit, photo (rows and stored files),
        analysis and comparison.  The audit log keeps an ``patient.erase`` entry
        (ids and counts only).  Returns the counts removed."""
        actor = _actor(actor)
        with self._tx() as s:
            self._lock_patient(s, patient_id)
            photo_ids = select(Photo.id).where(Photo.patient_id == patient_id)
            keys = set(s.execute(select(Photo.blob_key)
                                 .where(Photo.patient_id == patient_id)).scalars())
            counts = {
                "comparisons": s.execute(delete(Comparison).where(
                    Comparison.patient_id == patient_id)).rowcount,
                "analyses": s.execute(delete(Analysis).where(
                    Analysis.photo_id.in_(photo_ids))).rowcount,
                "photos": s.execute(delete(Photo).where(Photo.patient_id == patient_id)).rowcount,
                "visits": s.execute(delete(Visit).where(Visit.patient_id == patient_id)).rowcount,
                "patients": s.execute(delete(Patient).where(Patient.id == patient_id)).rowcount,
            }
            self._audit(s, actor, "patient.erase", "patient", patient_id, patient_id, counts)
        files = 0
        with self._tx() as s:  # a blob may be shared with another patient's identical photo
            shared = set(s.execute(select(Photo.blob_key).where(Photo.blob_key.in_(keys)))
                         .scalars()) if keys else set()
        for key in sorted(keys - shared):
            self.blobs.delete(key)
            files += 1
        counts["files"] = files
        return counts

    def orphan_blobs(self) -> list[str]:
        """Stored files no photo refers to (left by an interrupted import or erasure)."""
        with self._tx() as s:
            used = set(s.execute(select(Photo.blob_key)).scalars())
        return [k for k in self.blobs.keys() if k not in used]


# ----------------------------------------------------------------- helpers


def _migrate(engine) -> None:
    """Upgrade to head; concurrent openers wait for each other."""
    if engine.dialect.name == "postgresql":
        from alembic import command

        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            command.upgrade(db.alembic_config(conn), "head")
    else:
        db.upgrade(engine)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(
        timezone.utc)


def _iso(value: datetime) -> str:
    return value.isoformat()


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:300]


def _actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise StoreError("say who is doing this: an actor (user name) is required for every change")
    if len(actor) > 200:
        raise StoreError("the actor name is too long (200 characters at most)")
    return actor.strip()


def _code(code: str) -> str:
    code = (code or "").strip() if isinstance(code, str) else ""
    if not code or len(code) > 64 or any(c in code for c in "/\\\n\r\t"):
        raise StoreError("a patient code must be 1–64 characters without slashes or line breaks")
    return code


def _text(value, what: str, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise StoreError(f"the {what} is required")
        return None
    value = str(value).strip()
    if len(value) > 200:
        raise StoreError(f"the {what} is too long (200 characters at most)")
    return value


def _choice(value, allowed: tuple[str, ...], what: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    norm = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    if norm not in allowed:
        raise StoreError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")
    return norm


def _skin_type(value) -> str | None:
    if value is None or value == "":
        return None
    norm = str(value).strip().upper()
    roman = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}
    norm = roman.get(norm, norm)
    if norm not in SKIN_TYPES:
        raise StoreError(f"unknown skin type {value!r}; use a Fitzpatrick type I–VI")
    return norm


def _date(value, what: str, required: bool = False) -> date | None:
    if value is None or value == "":
        if required:
            raise StoreError(f"the {what} is required")
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise StoreError(f"the {what} {value!r} is not a date (use YYYY-MM-DD)") from None


def _visit_values(**values) -> dict:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if k in ("procedure", "device", "serum"):
            out[k] = _text(v, k)
        elif k in ("notes", "post_care"):
            out[k] = None if v is None or not str(v).strip() else str(v).strip()[:10000]
        elif k == "needle_depth_mm":
            if v is not None:
                v = float(v)
                if not 0 <= v <= 5:
                    raise StoreError(f"needle depth {v} mm is outside 0–5 mm")
            out[k] = v
        elif k == "passes":
            if v is not None:
                v = int(v)
                if not 0 <= v <= 50:
                    raise StoreError(f"{v} passes is outside 0–50")
            out[k] = v
        else:
            raise StoreError(f"a visit has no field {k!r}")
    return out


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_safe(value):
    """Plain JSON (no NaN/inf, no numpy scalars): PostgreSQL's JSONB refuses NaN."""
    def clean(v):
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if hasattr(v, "item"):  # numpy scalar
            return clean(v.item())
        if hasattr(v, "tolist"):
            return clean(v.tolist())
        if isinstance(v, (date, datetime)):
            return v.isoformat()
        return str(v)
    if not isinstance(value, dict):
        raise StoreError("an analysis result must be a dict (Analysis.to_dict())")
    return clean(value)


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda v: v.isoformat() if hasattr(v, "isoformat")
                                 else str(v)))


def _latest(analyses: list[Analysis]) -> AnalysisRecord | None:
    ok = [a for a in analyses if a.status == "ok"]
    pick = max(ok or analyses, key=lambda a: a.id, default=None)
    return _analysis_rec(pick) if pick else None


def _patient_rec(p: Patient) -> PatientRecord:
    return PatientRecord(p.id, p.code, p.name, p.skin_type, bool(p.consent), p.consent_date,
                         p.clinic_id, _utc(p.created_at))


def _visit_rec(v: Visit, photos: list[PhotoRecord]) -> VisitRecord:
    return VisitRecord(v.id, v.patient_id, v.visit_date, v.procedure, v.device,
                       v.needle_depth_mm, v.passes, v.serum, v.notes, v.post_care,
                       v.practitioner_id, _utc(v.created_at), photos)


def _photo_rec(p: Photo, created: bool = False,
               latest: AnalysisRecord | None = None) -> PhotoRecord:
    return PhotoRecord(p.id, p.visit_id, p.patient_id, p.sha256, p.blob_key, p.media_type,
                       p.size_bytes, p.view, p.captured_at, p.camera, p.width, p.height,
                       p.orientation, p.skin_condition, p.lighting, p.camera_setup,
                       _utc(p.created_at), created, latest)


def _analysis_rec(a: Analysis) -> AnalysisRecord:
    return AnalysisRecord(a.id, a.photo_id, a.algorithm_version, a.status, a.error,
                          a.quality_overall, a.texture, a.redness, a.pigmentation,
                          _utc(a.created_at), a.result)


def _comparison_dict(c: Comparison) -> dict:
    return {"id": c.id, "baseline_photo_id": c.baseline_photo_id,
            "followup_photo_id": c.followup_photo_id, "algorithm_version": c.algorithm_version,
            "result": c.result, "created_at": _utc(c.created_at)}


def _export_record(s: Session, patient_id: int, actor: str) -> tuple[dict, dict[str, str]]:
    """The JSON record of one patient and {zip name: blob key} of their photos."""
    p = s.get(Patient, patient_id)
    if p is None:
        raise NotFoundError(f"patient {patient_id} does not exist")
    visits = s.execute(
        select(Visit).where(Visit.patient_id == patient_id)
        .order_by(Visit.visit_date, Visit.id)
        .options(selectinload(Visit.photos).selectinload(Photo.analyses))).scalars().all()
    comparisons = s.execute(select(Comparison).where(Comparison.patient_id == patient_id)
                            .order_by(Comparison.id)).scalars().all()
    audit = s.execute(select(AuditEntry).where(AuditEntry.patient_id == patient_id)
                      .order_by(AuditEntry.id)).scalars().all()
    record = {
        "format": EXPORT_FORMAT, "exported_at": _iso(_now()), "exported_by": actor,
        "patient": _jsonable(asdict(_patient_rec(p))),
        "visits": [], "comparisons": [_jsonable(_comparison_dict(c)) for c in comparisons],
        "audit_log": [_jsonable({"at": _utc(e.at), "actor": e.actor, "action": e.action,
                                 "entity": e.entity, "entity_id": e.entity_id,
                                 "details": e.details}) for e in audit],
    }
    files: dict[str, str] = {}
    for v in visits:
        vd = _jsonable(asdict(_visit_rec(v, [])))
        vd["photos"] = []
        for ph in v.photos:
            pd = _jsonable(asdict(_photo_rec(ph)))
            pd.pop("created", None)
            pd.pop("latest_analysis", None)
            name = f"photos/{ph.sha256}{Path(ph.blob_key).suffix}"
            pd["file"] = name
            pd["capture"] = ph.capture
            pd["analyses"] = [_jsonable(asdict(_analysis_rec(a))) for a in ph.analyses]
            vd["photos"].append(pd)
            files[name] = ph.blob_key
        record["visits"].append(vd)
    return record, files
