"""Database tables (SQLAlchemy 2 declarative models).

The schema itself is created and changed only by the Alembic revisions in
``analyzer/store/migrations/versions``; these classes must match the newest
revision (a test compares them).  Enumerated values are plain strings checked
in :mod:`analyzer.store.repository`, so adding a value needs no migration.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, String, Text, UniqueConstraint, event)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..errors import StoreError

JsonType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Clinic(Base):
    __tablename__ = "clinic"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Practitioner(Base):
    __tablename__ = "practitioner"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Patient(Base):
    __tablename__ = "patient"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    skin_type: Mapped[str | None] = mapped_column(String(8))
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    visits: Mapped[list["Visit"]] = relationship(back_populates="patient",
                                                 cascade="all, delete-orphan",
                                                 order_by="Visit.visit_date, Visit.id")


class Visit(Base):
    __tablename__ = "visit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"),
                                            index=True)
    practitioner_id: Mapped[int | None] = mapped_column(
        ForeignKey("practitioner.id", ondelete="SET NULL"))
    visit_date: Mapped[date] = mapped_column(Date)
    procedure: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(200))
    needle_depth_mm: Mapped[float | None] = mapped_column(Float)
    passes: Mapped[int | None] = mapped_column(Integer)
    serum: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    post_care: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    patient: Mapped[Patient] = relationship(back_populates="visits")
    photos: Mapped[list["Photo"]] = relationship(back_populates="visit",
                                                 cascade="all, delete-orphan",
                                                 order_by="Photo.id")


class Photo(Base):
    __tablename__ = "photo"
    __table_args__ = (UniqueConstraint("patient_id", "sha256",
                                       name="uq_photo_patient_id_sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"),
                                            index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the stored copy
    source_sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the upload
    blob_key: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sanitize_method: Mapped[str] = mapped_column(String(40))
    view: Mapped[str] = mapped_column(String(20))
    # capture metadata (from intake; never location)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime)
    camera: Mapped[str | None] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    orientation: Mapped[int] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(20))
    capture: Mapped[dict] = mapped_column(JsonType)
    # capture conditions, so scores are read in context
    skin_condition: Mapped[str | None] = mapped_column(String(20))
    lighting: Mapped[str | None] = mapped_column(String(200))
    camera_setup: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    visit: Mapped[Visit] = relationship(back_populates="photos")
    analyses: Mapped[list["Analysis"]] = relationship(back_populates="photo",
                                                      cascade="all, delete-orphan",
                                                      order_by="Analysis.id")


class Analysis(Base):
    __tablename__ = "analysis"
    __table_args__ = (UniqueConstraint("photo_id", "algorithm_version", "settings_key",
                                       name="uq_analysis_photo_version_settings"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photo.id", ondelete="CASCADE"), index=True)
    algorithm_version: Mapped[str] = mapped_column(String(40))
    settings_key: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(10))  # "ok" or "failed"
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JsonType)
    quality_overall: Mapped[str | None] = mapped_column(String(10))
    # summary values as columns (revision 0002), backfilled from ``result``
    texture: Mapped[float | None] = mapped_column(Float)
    redness: Mapped[float | None] = mapped_column(Float)
    pigmentation: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    photo: Mapped[Photo] = relationship(back_populates="analyses")


class Comparison(Base):
    __tablename__ = "comparison"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"),
                                            index=True)
    baseline_photo_id: Mapped[int] = mapped_column(ForeignKey("photo.id", ondelete="CASCADE"))
    followup_photo_id: Mapped[int] = mapped_column(ForeignKey("photo.id", ondelete="CASCADE"))
    algorithm_version: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who did what, when.  Holds ids and counts only, never names or images."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_patient_id_at", "patient_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    patient_id: Mapped[int | None] = mapped_column(Integer)  # no FK: survives erasure
    details: Mapped[dict | None] = mapped_column(JsonType)
    # revision 0003: the clinic the entry belongs to (scopes an admin's view)
    clinic_id: Mapped[int | None] = mapped_column(Integer, index=True)


class AuditLogIsAppendOnly(StoreError):
    """Raised when code tries to change or delete an audit entry."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_audit_change(_mapper, _connection, target):
    # Also enforced in the database by triggers (revision 0003).
    raise AuditLogIsAppendOnly("the audit log is append-only")


class User(Base):
    """A practitioner's account (revision 0003).  ``password_hash`` is argon2id."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id", ondelete="SET NULL"),
                                                  index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ShareLink(Base):
    """A patient's read-only link (revision 0003); only the token's SHA-256 is kept."""

    __tablename__ = "share_link"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"),
                                            index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """A failed sign-in (revision 0003), keyed by SHA-256 of the user name."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_name_key_at", "name_key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
