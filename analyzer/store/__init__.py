"""Persistence: patients, visits, photos, analyses, comparisons and the audit log.

Use :class:`Store` (``Store.open(settings)``); SQL lives only in this package.
"""
