"""Persistence: patients, visits, photos, analyses, comparisons and the audit log.

Use :class:`Store` (``Store.open(settings)``); SQL lives only in this package.
Bulk operations (folder import, re-analysis) are in :mod:`analyzer.store.importer`.
Names are imported lazily so ``python -m analyzer`` starts without SQLAlchemy.
"""
from importlib import import_module

_EXPORTS = {
    "Store": "repository", "PatientRecord": "repository", "VisitRecord": "repository",
    "PhotoRecord": "repository", "AnalysisRecord": "repository", "AuditRecord": "repository",
    "PreparedPhoto": "repository", "UserRecord": "repository", "ShareLinkRecord": "repository", "prepare_photo": "repository", "VIEWS": "repository",
    "SKIN_CONDITIONS": "repository", "SKIN_TYPES": "repository",
    "BlobStore": "blobs", "LocalBlobStore": "blobs", "FsspecBlobStore": "blobs",
    "open_blob_store": "blobs",
    "import_folder": "importer", "reanalyze": "importer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
