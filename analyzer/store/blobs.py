"""Content-addressed photo storage.

A blob's key is the SHA-256 of its bytes plus an extension
(``"ab/cd/abcd…ef.jpg"``), so the same bytes are stored once and a key can be
checked against its content on every read.  Blobs are written once and never
changed: the local store writes a temporary file, fsyncs it, renames it into
place, fsyncs the folder and makes the file read-only.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Protocol

from ..errors import StoreError

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})(\.[a-z0-9]{1,5})?$")


def blob_key(data: bytes, suffix: str = "") -> str:
    """Key of ``data``: ``"<h[:2]>/<h[2:4]>/<sha256><suffix>"``."""
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"


def _check_key(key: str) -> str:
    m = _KEY.match(key)
    if not m:
        raise StoreError(f"not a valid photo key: {key!r}")
    return m.group(1)


class BlobStore(Protocol):
    """Where stored photos live.  Implementations must make ``put`` atomic."""

    def put(self, data: bytes, suffix: str = "") -> str:
        """Store ``data`` (no-op if present) and return its key."""

    def get(self, key: str) -> bytes:
        """Bytes of ``key``; raises StoreError if missing or not matching its hash."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if absent)."""

    def keys(self) -> Iterator[str]:
        """Every stored key."""


class LocalBlobStore:
    """Blobs in a local folder (default ``<data_dir>/photos``).

    Parameters
    ----------
    root : path
        Folder of the store; created if missing.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """File of ``key`` (for tests and tools; do not write to it)."""
        _check_key(key)
        return self.root / key

    def put(self, data: bytes, suffix: str = "") -> str:
        key = blob_key(data, suffix)
        final = self.path(key)
        if final.exists() and self._intact(final, key):
            return key
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)  # atomic; identical content if it raced another writer
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(final.parent)
        return key

    def get(self, key: str) -> bytes:
        digest = _check_key(key)
        try:
            data = (self.root / key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"stored photo {key} is missing from {self.root}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"stored photo {key} is damaged (its content does not match its hash)")
        return data

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def keys(self) -> Iterator[str]:
        for path in sorted(self.root.glob("??/??/*")):
            key = path.relative_to(self.root).as_posix()
            if _KEY.match(key):
                yield key

    def _intact(self, path: Path, key: str) -> bool:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == _check_key(key)
        except OSError:
            return False


class FsspecBlobStore:
    """Blobs behind an fsspec URL (``s3://bucket/photos``, ``memory://x``...).

    Atomicity is the backend's: object stores publish an object only when its
    upload completes.  The protocol's own package (e.g. ``s3fs``) must be
    installed; only ``fsspec`` is shipped.
    """

    def __init__(self, url: str, **storage_options):
        import fsspec

        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.url = url
        self.root = self.root.rstrip("/")

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r})"

    def _p(self, key: str) -> str:
        _check_key(key)
        return f"{self.root}/{key}"

    def put(self, data: bytes, suffix: str = "") -> str:
        key = blob_key(data, suffix)
        if not self.exists(key):
            self.fs.pipe_file(self._p(key), data)
        return key

    def get(self, key: str) -> bytes:
        digest = _check_key(key)
        try:
            data = self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            raise StoreError(f"stored photo {key} is missing from {self.url}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"stored photo {key} is damaged (its content does not match its hash)")
        return data

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._p(key)))

    def delete(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm_file(self._p(key))

    def keys(self) -> Iterator[str]:
        base = self.root + "/"
        for path in sorted(self.fs.find(self.root)):
            key = path[len(base):] if path.startswith(base) else path
            if _KEY.match(key):
                yield key


def open_blob_store(location: str | Path) -> BlobStore:
    """A local store for a path, an fsspec store for a ``scheme://`` URL."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        return FsspecBlobStore(text)
    return LocalBlobStore(text.removeprefix("file://"))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
