"""One settings object for the whole library, read once from the environment.

Functions receive a :class:`Settings` (or the values they need) as an
argument; nothing deep in the library reads the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_PREFIX = "ANALYZER_"


@dataclass(frozen=True)
class Settings:
    """Configuration of the analyzer.

    Attributes
    ----------
    data_dir : Path
        Where the database and stored photos live (``ANALYZER_DATA_DIR``).
    max_file_bytes : int
        Largest accepted upload in bytes (``ANALYZER_MAX_FILE_BYTES``).
    max_pixels : int
        Largest accepted width × height, checked from the header before the
        pixels are decoded (``ANALYZER_MAX_PIXELS``).
    model_path : Path or None
        Face Landmarker model; ``None`` uses the copy shipped in the package
        (``ANALYZER_MODEL_PATH``).
    database_url : str or None
        SQLAlchemy URL of the database (``DATABASE_URL`` or
        ``ANALYZER_DATABASE_URL``, the latter wins); ``None`` means a SQLite
        file at ``<data_dir>/analyzer.db``.
    """

    data_dir: Path = field(default_factory=lambda: Path("data"))
    max_file_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 60_000_000
    model_path: Path | None = None
    database_url: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Build settings from ``ANALYZER_*`` environment variables."""
        env = os.environ if environ is None else environ
        s = cls()
        changes: dict[str, object] = {}
        if v := env.get(ENV_PREFIX + "DATA_DIR"):
            changes["data_dir"] = Path(v)
        if v := env.get(ENV_PREFIX + "MAX_FILE_BYTES"):
            changes["max_file_bytes"] = int(v)
        if v := env.get(ENV_PREFIX + "MAX_PIXELS"):
            changes["max_pixels"] = int(v)
        if v := env.get(ENV_PREFIX + "MODEL_PATH"):
            changes["model_path"] = Path(v)
        if v := env.get(ENV_PREFIX + "DATABASE_URL") or env.get("DATABASE_URL"):
            changes["database_url"] = v
        return replace(s, **changes)
