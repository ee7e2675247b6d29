"""Persistence: patients, visits, photos, analyses, comparisons and the audit log.

Use :class:`Store` (``Store.open(settings)``); SQL lives only in this package.
Bulk operations (folder import, re-analysis) are in :mod:`analyzer.store.importer`.
"""
from .blobs import BlobStore, FsspecBlobStore, LocalBlobStore, open_blob_store
from .repository import (SKIN_CONDITIONS, SKIN_TYPES, VIEWS, AnalysisRecord, AuditRecord,
                         PatientRecord, PhotoRecord, PreparedPhoto, Store, VisitRecord,
                         prepare_photo)

__all__ = ["Store", "BlobStore", "LocalBlobStore", "FsspecBlobStore", "open_blob_store",
           "PatientRecord", "VisitRecord", "PhotoRecord", "AnalysisRecord", "AuditRecord",
           "PreparedPhoto", "prepare_photo", "VIEWS", "SKIN_CONDITIONS", "SKIN_TYPES"]
