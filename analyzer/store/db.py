"""Engines and migrations: SQLite (default, WAL) or PostgreSQL (``DATABASE_URL``)."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url

from ..config import Settings
from ..errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 30_000


def database_url(settings: Settings) -> str:
    """The configured URL, or a SQLite file ``<data_dir>/analyzer.db``."""
    if settings.database_url:
        url = settings.database_url
        # Plain postgres URLs use the psycopg 3 driver we ship.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    return f"sqlite:///{Path(settings.data_dir).resolve() / 'analyzer.db'}"


def set_wal(cursor, timeout_s: float = SQLITE_BUSY_MS / 1000) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the database is locked.

    SQLite does not always call the busy handler here: a process opening a
    new database while another one converts it to WAL can get "database is
    locked" at once (6 processes opening a fresh file together failed in 1
    round of 40).  Retried with a growing pause, up to ``timeout_s``.
    """
    deadline, pause = time.monotonic() + timeout_s, 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.5)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and
    ``BEGIN IMMEDIATE`` transactions so concurrent writers queue instead of failing."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types
        raise StoreError(f"the database URL is not valid ({exc.__class__.__name__})") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r}; "
                     "use SQLite (default) or PostgreSQL")


def alembic_config(connection):
    """Alembic configuration bound to ``connection`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None`` if empty)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())
