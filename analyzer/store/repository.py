"""The store's API: every read and write of patients, visits, photos and results.

Each write takes ``actor`` (who does it) and records it in the audit log in
the same transaction.  Results are plain dataclasses, detached from the
database session.

Access control is enforced here, not in the UI.  ``actor`` is either an
:class:`analyzer.auth.Principal` (a signed-in account or a patient's share
link) or a plain string, which means a trusted local operator (the CLI, an
import job) and is recorded as given.  Reads take ``actor`` too; leaving it
out (``None``) is the trusted local operator as well, unless the store was
opened with ``strict=True`` (the dashboard), where every call needs a
Principal.  For a Principal:

* staff (admin, practitioner, read-only) see only their clinic's patients;
  read-only accounts change nothing; only admins erase patients, read the
  clinic's whole audit log and manage the clinic's accounts;
* a patient principal sees only its own patient, read-only, and every access
  is audited; it is re-checked against its link on every call, so revoking
  a link (or disabling an account) takes effect at once;
* anything else raises :class:`analyzer.errors.PermissionDenied`.
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
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import delete, event, func, or_, select, text, update
from sqlalchemy import false as sa_false
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from .. import auth
from ..auth import Principal
from ..config import Settings
from ..errors import AuthError, DuplicateError, NotFoundError, PermissionDenied, StoreError
from . import db
from .blobs import BlobStore, LocalBlobStore, open_blob_store
from .models import (Analysis, AuditEntry, Clinic, Comparison, LoginAttempt, Patient, Photo,
                     Practitioner, ShareLink, User, Visit)

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
    clinic_id: int | None = None


@dataclass(frozen=True)
class UserRecord:
    """An account, without its password hash."""

    id: int
    username: str
    role: str
    clinic_id: int | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class ShareLinkRecord:
    """A share link, without its token (which is never stored)."""

    id: int
    patient_id: int
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


@dataclass(frozen=True)
class _Who:
    """The acting party: ``principal`` None means a trusted local operator."""

    label: str
    principal: Principal | None


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
    strict : bool
        Every call needs a :class:`~analyzer.auth.Principal` as ``actor``
        (no trusted string or missing actor); for the dashboard.
    """

    def __init__(self, engine, blobs: BlobStore, settings: Settings, *, strict: bool = False):
        self.engine = engine
        self.blobs = blobs
        self.settings = settings
        self.strict = strict
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        event.listen(self._sessions, "do_orm_execute", _refuse_bulk_audit_change)
        self._hasher = auth.password_hasher()
        self._dummy_hash: str | None = None

    @classmethod
    def open(cls, settings: Settings | None = None, *, url: str | None = None,
             blobs: BlobStore | str | Path | None = None, migrate: bool = True,
             strict: bool = False) -> "Store":
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
        strict : bool
            Require a Principal as ``actor`` on every call (see the class).
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
        return cls(engine, blobs, settings, strict=strict)

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

    def _audit(self, s: Session, actor: "_Who | str", action: str, entity: str,
               entity_id: int | None, patient_id: int | None, details: dict | None = None,
               *, clinic_id: int | None | type(...) = ...) -> None:
        """Append an audit entry (ids and counts only, never names, tokens or images)."""
        who = actor if isinstance(actor, _Who) else _Who(str(actor), None)
        if clinic_id is ...:
            patient = s.get(Patient, patient_id) if patient_id is not None else None
            if patient is not None:
                clinic_id = patient.clinic_id
            else:
                clinic_id = who.principal.clinic_id if who.principal else None
        s.add(AuditEntry(at=_now(), actor=who.label, action=action, entity=entity,
                         entity_id=entity_id, patient_id=patient_id, details=details,
                         clinic_id=clinic_id))

    def _lock_patient(self, s: Session, patient_id: int) -> Patient:
        """Serialize writers of one patient's record (row lock on PostgreSQL;
        SQLite transactions are already exclusive)."""
        patient = s.execute(select(Patient).where(Patient.id == patient_id)
                            .with_for_update()).scalar_one_or_none()
        if patient is None:
            raise NotFoundError(f"patient {patient_id} does not exist")
        return patient

    # -- access control

    def _who(self, actor, *, write: bool) -> _Who:
        """Normalise ``actor``: a Principal, or a string (trusted local operator)."""
        if isinstance(actor, Principal):
            return _Who(str(actor), actor)
        if self.strict:
            raise PermissionDenied("sign in first: this store needs a signed-in account "
                                   "for every request")
        if actor is None and not write:
            return _Who("system", None)
        return _Who(_actor(actor), None)

    def _verify(self, s: Session, who: _Who) -> Principal | None:
        """Re-check a principal against the database (account disabled or
        changed, link revoked or expired); returns it (None when trusted)."""
        p = who.principal
        if p is None:
            return None
        if p.is_patient:
            link = s.get(ShareLink, p.link_id) if p.link_id is not None else None
            if link is None or link.patient_id != p.patient_id or not _link_active(link):
                raise AuthError("this share link has expired or was revoked; "
                                "ask the clinic for a new one")
            return p
        user = s.get(User, p.user_id) if p.user_id is not None else None
        if (user is None or user.disabled or user.role != p.role
                or user.clinic_id != p.clinic_id):
            raise AuthError("your account was changed or disabled; sign in again")
        return p

    def _scope(self, s: Session, who: _Who, patient: Patient, *, write: bool = False,
               staff_only: bool = False, admin: bool = False) -> None:
        """Refuse (PermissionDenied) unless ``who`` may read (or ``write``) this patient."""
        p = self._verify(s, who)
        if p is None:
            return
        if p.is_patient:
            if write or staff_only or admin or patient.id != p.patient_id:
                raise PermissionDenied("a share link shows one patient's record, read-only")
            return
        if p.clinic_id is None or patient.clinic_id != p.clinic_id:
            raise PermissionDenied("this patient belongs to another clinic (or to none)")
        if write and not p.can_write:
            raise PermissionDenied("this account is read-only")
        if admin and not p.is_admin:
            raise PermissionDenied("only an administrator can do this")

    def _patient(self, s: Session, who: _Who, patient_id: int, *, write: bool = False,
                 lock: bool = False, **need) -> Patient:
        """Load a patient (row-locked if ``lock``) and check access to it."""
        if lock:
            patient = self._lock_patient(s, patient_id)
        else:
            patient = s.get(Patient, patient_id)
            if patient is None:
                raise NotFoundError(f"patient {patient_id} does not exist")
        self._scope(s, who, patient, write=write, **need)
        return patient

    def _staff(self, s: Session, who: _Who, *, admin: bool = False,
               write: bool = False) -> Principal | None:
        """A verified staff principal (None when trusted); refuses share links."""
        p = self._verify(s, who)
        if p is None:
            return None
        if p.is_patient:
            raise PermissionDenied("a share link shows one patient's record, read-only")
        if admin and not p.is_admin:
            raise PermissionDenied("only an administrator can do this")
        if write and not p.can_write:
            raise PermissionDenied("this account is read-only")
        return p

    def _trusted_only(self, s: Session, who: _Who, what: str) -> None:
        if who.principal is not None:
            self._verify(s, who)
            raise PermissionDenied(f"{what} is done by the operator with the command line")

    def _scoped_patients(self, q, p: Principal | None):
        """Restrict a query on Patient to what ``p`` may see."""
        if p is None:
            return q
        if p.is_patient:
            return q.where(Patient.id == p.patient_id)
        if p.clinic_id is None:
            return q.where(sa_false())
        return q.where(Patient.clinic_id == p.clinic_id)

    # -- clinics and practitioners

    def create_clinic(self, name: str, *, actor: Principal | str) -> int:
        """Add a clinic (trusted operator only); returns its id."""
        actor = self._who(actor, write=True)
        name = _text(name, "clinic name", required=True)
        try:
            with self._tx() as s:
                self._trusted_only(s, actor, "adding a clinic")
                clinic = Clinic(name=name, created_at=_now())
                s.add(clinic)
                s.flush()
                self._audit(s, actor, "clinic.create", "clinic", clinic.id, None)
                return clinic.id
        except IntegrityError:
            raise DuplicateError("a clinic with that name already exists") from None

    def find_clinic(self, name: str) -> int | None:
        """Id of the clinic with this name, or ``None`` (trusted callers)."""
        with self._tx() as s:
            return s.execute(select(Clinic.id).where(Clinic.name == str(name).strip())
                             ).scalar_one_or_none()

    def create_practitioner(self, name: str, *, actor: Principal | str,
                            clinic_id: int | None = None, role: str | None = None) -> int:
        """Add a practitioner (an admin: to their own clinic); returns its id."""
        actor = self._who(actor, write=True)
        with self._tx() as s:
            p = self._staff(s, actor, admin=True)
            if p is not None:
                clinic_id = p.clinic_id if clinic_id is None else clinic_id
                if clinic_id != p.clinic_id:
                    raise PermissionDenied("an administrator adds practitioners to their "
                                           "own clinic only")
            if clinic_id is not None and s.get(Clinic, clinic_id) is None:
                raise NotFoundError(f"clinic {clinic_id} does not exist")
            p = Practitioner(name=_text(name, "practitioner name", required=True),
                             clinic_id=clinic_id, role=_text(role, "role"), created_at=_now())
            s.add(p)
            s.flush()
            self._audit(s, actor, "practitioner.create", "practitioner", p.id, None)
            return p.id

    # -- patients

    def create_patient(self, code: str, *, actor: Principal | str, name: str | None = None,
                       skin_type: str | None = None, consent: bool = False,
                       consent_date: date | str | None = None,
                       clinic_id: int | None = None) -> PatientRecord:
        """Add a patient identified by a pseudonymous ``code``.

        A signed-in account adds to its own clinic (``clinic_id`` defaults to it).

        Raises
        ------
        DuplicateError
            The code is taken.
        """
        actor = self._who(actor, write=True)
        p = actor.principal
        if p is not None and not p.is_patient:
            clinic_id = p.clinic_id if clinic_id is None else clinic_id
            if clinic_id != p.clinic_id:
                raise PermissionDenied("patients are added to your own clinic only")
        code = _code(code)
        values = dict(name=_text(name, "name"), skin_type=_skin_type(skin_type),
                      consent=bool(consent), consent_date=_date(consent_date, "consent date"),
                      clinic_id=clinic_id)
        try:
            with self._tx() as s:
                self._staff(s, actor, write=True)
                if clinic_id is not None and s.get(Clinic, clinic_id) is None:
                    raise NotFoundError(f"clinic {clinic_id} does not exist")
                p = Patient(code=code, created_at=_now(), **values)
                s.add(p)
                s.flush()
                self._audit(s, actor, "patient.create", "patient", p.id, p.id)
                return _patient_rec(p)
        except IntegrityError:
            raise DuplicateError(f"patient code {code} is already used") from None

    def update_patient(self, patient_id: int, *, actor: Principal | str,
                       **changes) -> PatientRecord:
        """Change ``name``, ``skin_type``, ``consent``, ``consent_date`` or
        ``clinic_id`` (the clinic only by the trusted operator)."""
        actor = self._who(actor, write=True)
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
            p = self._patient(s, actor, patient_id, write=True, lock=True)
            if "clinic_id" in changes:
                self._trusted_only(s, actor, "moving a patient to another clinic")
            for k, v in changes.items():
                setattr(p, k, v)
            self._audit(s, actor, "patient.update", "patient", p.id, p.id,
                        {"fields": sorted(changes)})
            return _patient_rec(p)

    def get_patient(self, patient_id: int, *, actor: Principal | str | None = None
                    ) -> PatientRecord:
        """The patient with this id (NotFoundError if absent, PermissionDenied
        if out of the actor's reach)."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            p = self._patient(s, who, patient_id)
            self._audit_patient_view(s, who, p.id, "patient")
            return _patient_rec(p)

    def find_patient(self, code: str, *, actor: Principal | str | None = None
                     ) -> PatientRecord | None:
        """The patient with this code, or ``None`` (also when out of the actor's reach)."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            p = self._verify(s, who)
            q = self._scoped_patients(select(Patient).where(Patient.code == _code(code)), p)
            patient = s.execute(q).scalar_one_or_none()
            return _patient_rec(patient) if patient else None

    def list_patients(self, *, search: str | None = None, clinic_id: int | None = None,
                      actor: Principal | str | None = None) -> list[PatientRecord]:
        """Patients ordered by code; ``search`` matches part of the code or name.

        A signed-in account sees its own clinic's patients only (asking for
        another ``clinic_id`` raises PermissionDenied); a share link its patient.
        """
        who = self._who(actor, write=False)
        q = select(Patient).order_by(Patient.code)
        if clinic_id is not None:
            q = q.where(Patient.clinic_id == clinic_id)
        if search:
            like = f"%{search.lower()}%"
            q = q.where(or_(func.lower(Patient.code).like(like),
                            func.lower(Patient.name).like(like)))
        with self._tx() as s:
            p = self._verify(s, who)
            if (p is not None and not p.is_patient and clinic_id is not None
                    and clinic_id != p.clinic_id):
                raise PermissionDenied("you can list your own clinic's patients only")
            return [_patient_rec(x) for x in s.execute(self._scoped_patients(q, p)).scalars()]

    def _audit_patient_view(self, s: Session, who: _Who, patient_id: int, what: str,
                            entity_id: int | None = None) -> None:
        """Share-link reads are audited (staff reads are not, to keep the log useful)."""
        if who.principal is not None and who.principal.is_patient:
            self._audit(s, who, "share.view", what, entity_id if entity_id is not None
                        else patient_id, patient_id)

    # -- visits

    def add_visit(self, patient_id: int, visit_date: date | str, *, actor: Principal | str,
                  procedure: str | None = None, device: str | None = None,
                  needle_depth_mm: float | None = None, passes: int | None = None,
                  serum: str | None = None, notes: str | None = None,
                  post_care: str | None = None,
                  practitioner_id: int | None = None) -> VisitRecord:
        """Add a visit (treatment session) to a patient.

        ``serum`` is the product applied, e.g. ``"PRP"`` or a serum's name.
        """
        actor = self._who(actor, write=True)
        values = _visit_values(procedure=procedure, device=device,
                               needle_depth_mm=needle_depth_mm, passes=passes, serum=serum,
                               notes=notes, post_care=post_care)
        day = _date(visit_date, "visit date", required=True)
        with self._tx() as s:
            patient = self._patient(s, actor, patient_id, write=True, lock=True)
            self._check_practitioner(s, actor, practitioner_id, patient)
            v = Visit(patient_id=patient_id, visit_date=day, practitioner_id=practitioner_id,
                      created_at=_now(), **values)
            s.add(v)
            s.flush()
            self._audit(s, actor, "visit.create", "visit", v.id, patient_id)
            return _visit_rec(v, [])

    def _check_practitioner(self, s: Session, who: _Who, practitioner_id: int | None,
                            patient: Patient) -> None:
        if practitioner_id is None:
            return
        doc = s.get(Practitioner, practitioner_id)
        if doc is None or (who.principal is not None and doc.clinic_id != patient.clinic_id):
            raise NotFoundError(f"practitioner {practitioner_id} does not exist "
                                "(in this patient's clinic)")

    def update_visit(self, visit_id: int, *, actor: Principal | str, **changes) -> VisitRecord:
        """Change treatment fields (procedure, device, needle_depth_mm, passes,
        serum, notes, post_care), ``visit_date`` or ``practitioner_id``."""
        actor = self._who(actor, write=True)
        day = changes.pop("visit_date", None)
        practitioner = changes.pop("practitioner_id", ...)
        values = _visit_values(**changes)
        with self._tx() as s:
            v = s.get(Visit, visit_id)
            if v is None:
                raise NotFoundError(f"visit {visit_id} does not exist")
            patient = self._patient(s, actor, v.patient_id, write=True, lock=True)
            if practitioner is not ...:
                self._check_practitioner(s, actor, practitioner, patient)
            for k, val in values.items():
                setattr(v, k, val)
            if day is not None:
                v.visit_date = _date(day, "visit date", required=True)
            if practitioner is not ...:
                v.practitioner_id = practitioner
            self._audit(s, actor, "visit.update", "visit", v.id, v.patient_id,
                        {"fields": sorted(values) + (["visit_date"] if day else [])})
            return _visit_rec(v, [])

    def ensure_visit(self, patient_id: int, visit_date: date | str, *,
                     actor: Principal | str) -> VisitRecord:
        """The patient's first visit on ``visit_date``, created if there is none."""
        actor = self._who(actor, write=True)
        day = _date(visit_date, "visit date", required=True)
        with self._tx() as s:
            self._patient(s, actor, patient_id, write=True, lock=True)
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

    def add_photo(self, visit_id: int, data: bytes | PreparedPhoto, *, actor: Principal | str,
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
        actor = self._who(actor, write=True)
        view = _choice(view, VIEWS, "view")
        skin_condition = _choice(skin_condition, SKIN_CONDITIONS, "skin condition", optional=True)
        lighting, camera_setup = _text(lighting, "lighting"), _text(camera_setup, "camera set-up")
        with self._tx() as s:  # refuse before decoding or writing anything
            v = s.get(Visit, visit_id)
            if v is None:
                raise NotFoundError(f"visit {visit_id} does not exist")
            self._patient(s, actor, v.patient_id, write=True)
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
                    self._patient(s, actor, v.patient_id, write=True, lock=True)
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

    def find_photo_by_source(self, patient_id: int, source_sha256: str, *,
                             actor: Principal | str | None = None) -> PhotoRecord | None:
        """The patient's photo made from an upload with this SHA-256, if any."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            if who.principal is not None:
                self._patient(s, who, patient_id, staff_only=True)
            p = s.execute(select(Photo).where(Photo.patient_id == patient_id,
                                              Photo.source_sha256 == source_sha256)
                          .order_by(Photo.id).limit(1)).scalar_one_or_none()
            return _photo_rec(p) if p else None

    def get_photo(self, photo_id: int, *, actor: Principal | str | None = None) -> PhotoRecord:
        """Photo metadata with its latest analysis."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            return self._get_photo(s, who, photo_id)

    def _get_photo(self, s: Session, who: _Who, photo_id: int, *,
                   audit: str | None = None) -> PhotoRecord:
        p = s.get(Photo, photo_id, options=[selectinload(Photo.analyses)])
        if p is None:
            raise NotFoundError(f"photo {photo_id} does not exist")
        self._patient(s, who, p.patient_id)
        self._audit_patient_view(s, who, p.patient_id, audit or "photo", p.id)
        return _photo_rec(p, latest=_latest(p.analyses))

    def photo_bytes(self, photo_id: int, *, actor: Principal | str | None = None) -> bytes:
        """The stored (sanitized) file of a photo, checked against its hash."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            key = self._get_photo(s, who, photo_id, audit="photo_file").blob_key
        return self.blobs.get(key)

    def photos_needing_analysis(self, algorithm_version: str, *, patient_id: int | None = None,
                                retry_failed: bool = False,
                                actor: Principal | str | None = None) -> list[int]:
        """Ids of photos without an analysis at ``algorithm_version`` and these settings
        (with ``retry_failed``, also those whose analysis there failed)."""
        who = self._who(actor, write=False)
        key = settings_key(self.settings)
        done = select(Analysis.photo_id).where(Analysis.algorithm_version == algorithm_version,
                                               Analysis.settings_key == key)
        if retry_failed:
            done = done.where(Analysis.status == "ok")
        q = select(Photo.id).where(Photo.id.not_in(done)).order_by(Photo.id)
        if patient_id is not None:
            q = q.where(Photo.patient_id == patient_id)
        with self._tx() as s:
            p = self._staff(s, who)
            if p is not None:
                q = q.where(Photo.patient_id.in_(
                    self._scoped_patients(select(Patient.id), p)))
            return list(s.execute(q).scalars())

    # -- analyses and comparisons

    def save_analysis(self, photo_id: int, result: dict, *,
                      actor: Principal | str) -> AnalysisRecord:
        """Store an analysis result (``Analysis.to_dict()``) of a photo.

        Older analyses are kept.  If this photo already has a successful
        analysis at the same algorithm version and settings, that one is
        returned; a failed one is replaced by the success.
        """
        actor = self._who(actor, write=True)
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
                               actor: Principal | str) -> AnalysisRecord:
        """Remember that analysing a photo failed (the photo itself is kept)."""
        actor = self._who(actor, write=True)
        values = dict(status="failed", error=str(error)[:2000], result=None, settings={},
                      quality_overall=None, texture=None, redness=None, pigmentation=None)
        return self._put_analysis(photo_id, algorithm_version, values, actor)

    def _put_analysis(self, photo_id: int, version: str, values: dict,
                      actor: _Who) -> AnalysisRecord:
        key = settings_key(self.settings)
        for attempt in range(2):
            try:
                with self._tx() as s:
                    photo = s.get(Photo, photo_id)
                    if photo is None:
                        raise NotFoundError(f"photo {photo_id} does not exist")
                    self._patient(s, actor, photo.patient_id, write=True, lock=True)
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

    def analyses(self, photo_id: int, *, actor: Principal | str | None = None
                 ) -> list[AnalysisRecord]:
        """Every analysis of a photo, oldest first, with results."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            photo = s.get(Photo, photo_id)
            if photo is not None:
                self._patient(s, who, photo.patient_id)
                self._audit_patient_view(s, who, photo.patient_id, "photo", photo.id)
            else:
                self._verify(s, who)
            rows = s.execute(select(Analysis).where(Analysis.photo_id == photo_id)
                             .order_by(Analysis.id)).scalars()
            return [_analysis_rec(a) for a in rows]

    def save_comparison(self, baseline_photo_id: int, followup_photo_id: int, result: dict, *,
                        actor: Principal | str) -> int:
        """Store a before/after comparison of two photos of one patient; returns its id."""
        actor = self._who(actor, write=True)
        result = _json_safe(result)
        with self._tx() as s:
            a, b = s.get(Photo, baseline_photo_id), s.get(Photo, followup_photo_id)
            if a is None or b is None:
                missing = baseline_photo_id if a is None else followup_photo_id
                raise NotFoundError(f"photo {missing} does not exist")
            if a.patient_id != b.patient_id:
                raise StoreError("a comparison needs two photos of the same patient")
            self._patient(s, actor, a.patient_id, write=True, lock=True)
            c = Comparison(patient_id=a.patient_id, baseline_photo_id=a.id,
                           followup_photo_id=b.id,
                           algorithm_version=str(result.get("algorithm_version") or "unknown"),
                           result=result, created_at=_now())
            s.add(c)
            s.flush()
            self._audit(s, actor, "comparison.create", "comparison", c.id, a.patient_id,
                        {"baseline_photo_id": a.id, "followup_photo_id": b.id})
            return c.id

    def comparisons(self, patient_id: int, *, actor: Principal | str | None = None
                    ) -> list[dict]:
        """A patient's comparisons (id, photo ids, version, result, created_at)."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            if s.get(Patient, patient_id) is not None:
                self._patient(s, who, patient_id)
                self._audit_patient_view(s, who, patient_id, "comparison")
            else:
                self._verify(s, who)
            rows = s.execute(select(Comparison).where(Comparison.patient_id == patient_id)
                             .order_by(Comparison.id)).scalars()
            return [_comparison_dict(c) for c in rows]

    # -- reading a record

    def patient_timeline(self, patient_id: int, *, actor: Principal | str | None = None
                         ) -> list[VisitRecord]:
        """Visits by date, each with its photos and every photo's latest analysis."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            self._patient(s, who, patient_id)
            self._audit_patient_view(s, who, patient_id, "timeline")
            visits = s.execute(
                select(Visit).where(Visit.patient_id == patient_id)
                .order_by(Visit.visit_date, Visit.id)
                .options(selectinload(Visit.photos).selectinload(Photo.analyses))).scalars()
            return [_visit_rec(v, [_photo_rec(p, latest=_latest(p.analyses)) for p in v.photos])
                    for v in visits]

    def audit_log(self, *, patient_id: int | None = None, limit: int = 200,
                  actor: Principal | str | None = None) -> list[AuditRecord]:
        """Newest audit entries first (all, or those about one patient).

        An admin reads their clinic's entries; practitioners and read-only
        accounts the entries of one of their clinic's patients (give
        ``patient_id``); share links none.  There is no way to change or
        delete an entry.
        """
        who = self._who(actor, write=False)
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if patient_id is not None:
            q = q.where(AuditEntry.patient_id == patient_id)
        with self._tx() as s:
            p = self._staff(s, who)
            if p is not None:
                if patient_id is None:
                    self._staff(s, who, admin=True)
                else:
                    patient = s.get(Patient, patient_id)
                    if patient is not None:
                        self._scope(s, who, patient)
                    elif not p.is_admin:
                        raise PermissionDenied("only an administrator reads the audit log "
                                               "of erased patients")
                q = q.where(AuditEntry.clinic_id == p.clinic_id)
            return [AuditRecord(e.id, _utc(e.at), e.actor, e.action, e.entity, e.entity_id,
                                e.patient_id, e.details, e.clinic_id)
                    for e in s.execute(q).scalars()]

    def counts(self, *, actor: Principal | str | None = None) -> dict[str, int]:
        """Number of rows per table (trusted operator: status displays and tests)."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            self._trusted_only(s, who, "counting every table")
            return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                    for m in (Clinic, Practitioner, Patient, Visit, Photo, Analysis, Comparison,
                              AuditEntry, User, ShareLink, LoginAttempt)}

    # -- export and erasure

    def export_patient(self, patient_id: int, dest: str | Path, *,
                       actor: Principal | str) -> Path:
        """Write one patient's full record to a zip: ``record.json`` and ``photos/``.

        The zip is written to a temporary file and renamed into place; the
        export is audited.  Staff of the patient's clinic may export (read-only
        accounts too); share links may not.  Returns the path of the zip.
        """
        actor = self._who(actor, write=True)
        with self._tx() as s:  # refuse before creating any file
            self._patient(s, actor, patient_id, staff_only=True)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"patient-{patient_id}.zip"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = None
        try:
            with self._tx() as s:
                self._patient(s, actor, patient_id, staff_only=True)
                record, files = _export_record(s, patient_id, actor.label)
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

    def erase_patient(self, patient_id: int, *, actor: Principal | str) -> dict[str, int]:
        """Delete a patient with every visit, photo (rows and stored files),
        analysis and comparison.  The audit log keeps an ``patient.erase`` entry
        (ids and counts only).  Only an admin of the patient's clinic (or the
        trusted operator) may erase.  Returns the counts removed."""
        actor = self._who(actor, write=True)
        with self._tx() as s:
            patient = self._patient(s, actor, patient_id, write=True, lock=True, admin=True)
            clinic_id = patient.clinic_id
            s.execute(delete(ShareLink).where(ShareLink.patient_id == patient_id))
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
            self._audit(s, actor, "patient.erase", "patient", patient_id, patient_id, counts,
                        clinic_id=clinic_id)
        files = 0
        with self._tx() as s:  # a blob may be shared with another patient's identical photo
            shared = set(s.execute(select(Photo.blob_key).where(Photo.blob_key.in_(keys)))
                         .scalars()) if keys else set()
        for key in sorted(keys - shared):
            self.blobs.delete(key)
            files += 1
        counts["files"] = files
        return counts

    def orphan_blobs(self, *, actor: Principal | str | None = None) -> list[str]:
        """Stored files no photo refers to (left by an interrupted import or erasure)."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            self._trusted_only(s, who, "listing stored files")
            used = set(s.execute(select(Photo.blob_key)).scalars())
        return [k for k in self.blobs.keys() if k not in used]

    # -- accounts

    def create_user(self, username: str, password: str, *, role: str, clinic_id: int | None,
                    actor: Principal | str) -> int:
        """Add an account; returns its id.

        Parameters
        ----------
        username : str
            3–64 letters, digits and ``. _ @ -`` (stored lower-case).
        password : str
            At least ``auth.MIN_PASSWORD_LENGTH`` characters; stored as an argon2id hash.
        role : {"admin", "practitioner", "read-only"}
        clinic_id : int
            The clinic whose patients the account sees.
        actor : Principal or str
            The trusted operator, or an admin (accounts of their own clinic only).

        Raises
        ------
        AuthError
            Bad user name or too weak a password.
        DuplicateError
            The user name is taken.
        """
        return self._create_user(self._who(actor, write=True), username, password, role=role,
                                 clinic_id=clinic_id)

    def _create_user(self, who: _Who, username: str, password: str, *, role: str,
                     clinic_id: int | None) -> int:
        name = auth.normalize_username(username)
        role = str(role or "").strip().lower().replace("_", "-").replace(" ", "-")
        if role not in auth.STAFF_ROLES:
            raise StoreError(f"unknown role {role!r}; use one of {', '.join(auth.STAFF_ROLES)}")
        auth.check_password(password, name)
        if clinic_id is None:
            raise StoreError("an account needs a clinic (its patients are the ones it sees)")
        with self._tx() as s:  # check rights before spending time on the hash
            self._check_user_admin(s, who, clinic_id)
        password_hash = auth.hash_password(password, self._hasher)
        try:
            with self._tx() as s:
                self._check_user_admin(s, who, clinic_id)
                if s.get(Clinic, clinic_id) is None:
                    raise NotFoundError(f"clinic {clinic_id} does not exist")
                now = _now()
                user = User(username=name, password_hash=password_hash, role=role,
                            clinic_id=clinic_id, disabled=False, created_at=now,
                            password_changed_at=now)
                s.add(user)
                s.flush()
                self._audit(s, who, "user.create", "user", user.id, None, {"role": role},
                            clinic_id=clinic_id)
                return user.id
        except IntegrityError:
            raise DuplicateError("that user name is already taken") from None

    def _check_user_admin(self, s: Session, who: _Who, clinic_id: int | None) -> None:
        p = self._staff(s, who, admin=True)
        if p is not None and clinic_id != p.clinic_id:
            raise PermissionDenied("an administrator manages their own clinic's accounts only")

    def _user(self, s: Session, username: str) -> User:
        try:
            name = auth.normalize_username(username)
        except AuthError:
            raise NotFoundError("there is no account with that user name") from None
        user = s.execute(select(User).where(User.username == name)).scalar_one_or_none()
        if user is None:
            raise NotFoundError("there is no account with that user name")
        return user

    def list_users(self, *, actor: Principal | str | None = None) -> list[UserRecord]:
        """Accounts by user name (an admin: their clinic's)."""
        who = self._who(actor, write=False)
        q = select(User).order_by(User.username)
        with self._tx() as s:
            p = self._staff(s, who, admin=True)
            if p is not None:
                q = q.where(User.clinic_id == p.clinic_id)
            return [_user_rec(u) for u in s.execute(q).scalars()]

    def set_user_disabled(self, username: str, disabled: bool, *,
                          actor: Principal | str) -> UserRecord:
        """Disable (or re-enable) an account; a disabled account cannot sign in and
        its open sessions are refused at their next request."""
        who = self._who(actor, write=True)
        with self._tx() as s:
            user = self._user(s, username)
            self._check_user_admin(s, who, user.clinic_id)
            if who.principal is not None and who.principal.user_id == user.id and disabled:
                raise PermissionDenied("you cannot disable your own account")
            user.disabled = bool(disabled)
            self._audit(s, who, "user.disable" if disabled else "user.enable", "user", user.id,
                        None, clinic_id=user.clinic_id)
            return _user_rec(user)

    def reset_password(self, username: str, new_password: str, *,
                       actor: Principal | str) -> None:
        """Set a new password (trusted operator or an admin of the account's
        clinic); clears the account's failed sign-ins."""
        who = self._who(actor, write=True)
        with self._tx() as s:
            user = self._user(s, username)
            self._check_user_admin(s, who, user.clinic_id)
            auth.check_password(new_password, user.username)
        password_hash = auth.hash_password(new_password, self._hasher)
        with self._tx() as s:
            user = self._user(s, username)
            self._check_user_admin(s, who, user.clinic_id)
            user.password_hash = password_hash
            user.password_changed_at = _now()
            s.execute(delete(LoginAttempt).where(
                LoginAttempt.name_key == auth.username_key(user.username)))
            self._audit(s, who, "user.password_reset", "user", user.id, None,
                        clinic_id=user.clinic_id)

    def change_password(self, principal: Principal, old_password: str,
                        new_password: str) -> None:
        """A signed-in account changes its own password (the old one is checked)."""
        if not isinstance(principal, Principal) or principal.user_id is None:
            raise PermissionDenied("sign in to change your password")
        who = _Who(str(principal), principal)
        with self._tx() as s:
            self._verify(s, who)
            user = s.get(User, principal.user_id)
            stored, name = user.password_hash, user.username
        if not auth.verify_password(stored, old_password, self._hasher):
            raise AuthError("the current password is wrong")
        auth.check_password(new_password, name)
        password_hash = auth.hash_password(new_password, self._hasher)
        with self._tx() as s:
            user = s.get(User, principal.user_id)
            user.password_hash = password_hash
            user.password_changed_at = _now()
            self._audit(s, who, "user.password_change", "user", user.id, None,
                        clinic_id=user.clinic_id)

    def authenticate(self, username: str, password: str) -> Principal:
        """Sign in; returns the account's Principal.

        Lock-out: after ``auth.LOCKOUT_ATTEMPTS`` failures within
        ``auth.LOCKOUT_WINDOW_MINUTES`` for one user name (known or not) every
        attempt is refused until the oldest of them is that old.  Failures are
        stored in the database (keyed by a hash of the name), so the count is
        shared by every process and survives restarts.

        Raises
        ------
        AuthError
            ``"wrong user name or password"`` (the same for an unknown name),
            ``"too many failed attempts: try again in N minutes"``, or a
            disabled account (said only after a correct password).
        """
        key = auth.username_key(username if isinstance(username, str) else "")
        with self._tx() as s:
            self._login_lock(s, key)
            self._refuse_if_locked(s, key)
            try:
                name = auth.normalize_username(username)
            except AuthError:
                name = None
            user = (s.execute(select(User).where(User.username == name)).scalar_one_or_none()
                    if name else None)
            stored = user.password_hash if user is not None else None
            user_id = user.id if user is not None else None
        # The slow hash runs outside any transaction; an unknown name costs the same.
        ok = auth.verify_password(stored or self._dummy(), password
                                  if isinstance(password, str) else "", self._hasher)
        ok = ok and stored is not None
        with self._tx() as s:
            self._login_lock(s, key)
            now = _now()
            s.execute(delete(LoginAttempt).where(
                LoginAttempt.at < now - timedelta(minutes=auth.LOCKOUT_WINDOW_MINUTES)))
            if not ok:
                s.add(LoginAttempt(name_key=key, at=now))
                self._audit(s, "anonymous", "auth.failed", "user", user_id, None,
                            clinic_id=user.clinic_id if user is not None else None)
                failed = True
            else:
                self._refuse_if_locked(s, key)  # failures raced in meanwhile
                user = s.get(User, user_id)
                if user is None:  # deleted meanwhile
                    raise AuthError(auth.BAD_CREDENTIALS)
                if user.disabled:
                    self._audit(s, f"user:{user.id}", "auth.disabled", "user", user.id, None,
                                clinic_id=user.clinic_id)
                    failed = None
                else:
                    s.execute(delete(LoginAttempt).where(LoginAttempt.name_key == key))
                    user.last_login_at = now
                    if auth.needs_rehash(user.password_hash, self._hasher):
                        user.password_hash = auth.hash_password(password, self._hasher)
                    self._audit(s, f"user:{user.id}", "auth.login", "user", user.id, None,
                                clinic_id=user.clinic_id)
                    failed = False
                    principal = Principal(user.id, user.username, user.role, user.clinic_id)
        if failed:
            raise AuthError(auth.BAD_CREDENTIALS)
        if failed is None:
            raise AuthError("this account is disabled; ask your administrator")
        return principal

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = auth.hash_password(auth.random_password(), self._hasher)
        return self._dummy_hash

    def _login_lock(self, s: Session, key: str) -> None:
        """Serialise sign-ins of one name (PostgreSQL; SQLite writers are serial)."""
        if s.bind.dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                      {"k": int(key[:15], 16)})

    def _refuse_if_locked(self, s: Session, key: str) -> None:
        now = _now()
        since = now - timedelta(minutes=auth.LOCKOUT_WINDOW_MINUTES)
        times = list(s.execute(select(LoginAttempt.at).where(
            LoginAttempt.name_key == key, LoginAttempt.at >= since)
            .order_by(LoginAttempt.at.desc()).limit(auth.LOCKOUT_ATTEMPTS)).scalars())
        if len(times) >= auth.LOCKOUT_ATTEMPTS:
            until = _utc(times[-1]) + timedelta(minutes=auth.LOCKOUT_WINDOW_MINUTES)
            minutes = max(1, math.ceil((until - now).total_seconds() / 60))
            raise AuthError(f"too many failed attempts: try again in {minutes} minutes")

    def ensure_demo_user(self, *, clinic_id: int) -> tuple[str, str | None]:
        """Create the practitioner account ``demo`` with a random password if it
        does not exist.

        Returns
        -------
        (str, str or None)
            The user name and the new password (shown once), or ``None`` as
            password when the account already existed.
        """
        with self._tx() as s:
            exists = s.execute(select(User.id).where(User.username == auth.DEMO_USERNAME)
                               ).scalar_one_or_none()
        if exists is not None:
            return auth.DEMO_USERNAME, None
        password = auth.random_password()
        try:
            self._create_user(_Who("system:demo", None), auth.DEMO_USERNAME, password,
                              role="practitioner", clinic_id=clinic_id)
        except DuplicateError:  # created meanwhile by another process
            return auth.DEMO_USERNAME, None
        return auth.DEMO_USERNAME, password

    # -- share links

    def create_share_link(self, patient_id: int, *, actor: Principal | str,
                          days: int = auth.SHARE_LINK_DAYS) -> str:
        """A read-only link to one patient's record, valid ``days`` days.

        Returns the token (shown once; only its SHA-256 is stored).
        """
        who = self._who(actor, write=True)
        days = int(days)
        if not 1 <= days <= auth.SHARE_LINK_MAX_DAYS:
            raise StoreError(f"a share link lasts 1–{auth.SHARE_LINK_MAX_DAYS} days")
        token = auth.new_share_token()
        with self._tx() as s:
            self._patient(s, who, patient_id, write=True)
            now = _now()
            link = ShareLink(patient_id=patient_id, token_hash=auth.hash_token(token),
                             created_by=who.label, created_at=now,
                             expires_at=now + timedelta(days=days))
            s.add(link)
            s.flush()
            self._audit(s, who, "share.create", "share_link", link.id, patient_id,
                        {"days": days})
        return token

    def open_share_link(self, token: str) -> Principal:
        """The patient principal of a share link (every opening is audited).

        Raises
        ------
        AuthError
            Unknown, expired or revoked link.
        """
        refused = AuthError("this share link is not valid (expired, revoked or mistyped); "
                            "ask the clinic for a new one")
        if not auth.looks_like_token(token):
            with self._tx() as s:
                self._audit(s, "anonymous", "share.refused", "share_link", None, None)
            raise refused
        with self._tx() as s:
            link = s.execute(select(ShareLink).where(
                ShareLink.token_hash == auth.hash_token(token))).scalar_one_or_none()
            if link is None or not _link_active(link):
                self._audit(s, f"share:{link.id}" if link else "anonymous", "share.refused",
                            "share_link", link.id if link else None,
                            link.patient_id if link else None)
                principal = None
            else:
                patient = s.get(Patient, link.patient_id)
                link.last_used_at = _now()
                principal = Principal(None, "patient", auth.PATIENT_ROLE, patient.clinic_id,
                                      patient_id=patient.id, link_id=link.id)
                self._audit(s, str(principal), "share.open", "share_link", link.id, patient.id)
        if principal is None:
            raise refused
        return principal

    def revoke_share_link(self, link: int | str, *, actor: Principal | str) -> ShareLinkRecord:
        """Revoke a share link given its id or its token (effective at once)."""
        who = self._who(actor, write=True)
        with self._tx() as s:
            if isinstance(link, str) and not link.isdigit():
                row = s.execute(select(ShareLink).where(
                    ShareLink.token_hash == auth.hash_token(link))).scalar_one_or_none() \
                    if auth.looks_like_token(link) else None
            else:
                row = s.get(ShareLink, int(link))
            if row is None:
                self._verify(s, who)
                raise NotFoundError("there is no such share link")
            self._patient(s, who, row.patient_id, write=True)
            if row.revoked_at is None:
                row.revoked_at = _now()
                self._audit(s, who, "share.revoke", "share_link", row.id, row.patient_id)
            return _link_rec(row)

    def list_share_links(self, patient_id: int, *,
                         actor: Principal | str | None = None) -> list[ShareLinkRecord]:
        """A patient's share links, newest first (tokens are never stored)."""
        who = self._who(actor, write=False)
        with self._tx() as s:
            self._patient(s, who, patient_id, staff_only=True)
            rows = s.execute(select(ShareLink).where(ShareLink.patient_id == patient_id)
                             .order_by(ShareLink.id.desc())).scalars()
            return [_link_rec(r) for r in rows]


# ----------------------------------------------------------------- helpers


def _refuse_bulk_audit_change(state) -> None:
    """Session hook: no UPDATE or DELETE statement may touch the audit log."""
    if state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) == AuditEntry.__tablename__:
            from .models import AuditLogIsAppendOnly

            raise AuditLogIsAppendOnly("the audit log is append-only")


def _link_active(link: ShareLink, now: datetime | None = None) -> bool:
    now = now or _now()
    return link.revoked_at is None and _utc(link.expires_at) > now


def _link_rec(r: ShareLink) -> ShareLinkRecord:
    return ShareLinkRecord(r.id, r.patient_id, r.created_by, _utc(r.created_at),
                           _utc(r.expires_at), _utc(r.revoked_at), _utc(r.last_used_at),
                           _link_active(r))


def _user_rec(u: User) -> UserRecord:
    return UserRecord(u.id, u.username, u.role, u.clinic_id, bool(u.disabled),
                      _utc(u.created_at), _utc(u.last_login_at))


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
