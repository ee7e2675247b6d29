"""Shared fixtures and helpers of the store tests (no tests here).

Backends: every ``store_url`` test runs on SQLite and on a real PostgreSQL
server.  The server's URL comes from ``TEST_POSTGRES_URL`` (``scripts/test.sh``
exports it after running ``scripts/postgres.sh``); when unset, the fixture
runs ``scripts/postgres.sh`` itself; when that fails the PostgreSQL variants
are skipped with the reason.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT / "sample_images" / "astronaut_face.jpg"
_pg_state: dict = {}


def postgres_base_url() -> str:
    """URL of the test server, or ``pytest.skip`` with the reason."""
    if "url" in _pg_state:
        return _pg_state["url"]
    if "skip" in _pg_state:
        pytest.skip(_pg_state["skip"])
    url = os.environ.get("TEST_POSTGRES_URL")
    reason = os.environ.get("TEST_POSTGRES_SKIP_REASON")
    if not url and not reason:
        try:
            out = subprocess.run([str(ROOT / "scripts" / "postgres.sh")], capture_output=True,
                                 text=True, timeout=300)
            if out.returncode == 0 and out.stdout.strip():
                url = out.stdout.strip().splitlines()[-1]
            else:
                reason = ("scripts/postgres.sh failed: "
                          + " ".join(out.stderr.strip().splitlines()[-3:]))
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"scripts/postgres.sh could not run ({exc})"
    if url and not reason:
        try:
            import psycopg

            with psycopg.connect(_libpq(url), connect_timeout=5):
                pass
        except Exception as exc:  # noqa: BLE001
            reason = f"PostgreSQL at {url} is not reachable ({exc.__class__.__name__}: {exc})"
    if reason or not url:
        _pg_state["skip"] = "PostgreSQL tests skipped: " + (reason or "no server")
        pytest.skip(_pg_state["skip"])
    _pg_state["url"] = url
    return url


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fresh_postgres_db() -> tuple[str, callable]:
    """Create an empty database on the test server; returns (url, drop)."""
    import psycopg

    base = postgres_base_url()
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name

    def drop():
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """A database URL with an empty database: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'analyzer.db'}"
        return
    url, drop = fresh_postgres_db()
    yield url
    drop()


@pytest.fixture
def settings(tmp_path, store_url):
    from analyzer.config import Settings

    return Settings(data_dir=tmp_path / "data", database_url=store_url)


@pytest.fixture
def store(settings):
    from analyzer.store import Store

    s = Store.open(settings)
    yield s
    s.close()


def jpeg_bytes(seed: int = 0, size: int = 64, quality: int = 90, exif: bytes | None = None,
               **save) -> bytes:
    """A small distinct JPEG (random pixels)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    buf = io.BytesIO()
    if exif is not None:
        save["exif"] = exif
    img.save(buf, format="JPEG", quality=quality, **save)
    return buf.getvalue()


def exif_with(captured: str | None = None, gps: bool = False, orientation: int = 1,
              secret: str | None = None, iso: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F], exif[0x0110] = "TestMake", "TestCam"
    if captured:
        exif.get_ifd(0x8769)[0x9003] = captured
    if iso:
        exif.get_ifd(0x8769)[0x8827] = iso
    if gps:
        g = exif.get_ifd(0x8825)
        g[1], g[2], g[3], g[4] = "N", (48.0, 51.0, 29.5), "E", (2.0, 17.0, 40.2)
        g[0x1B] = "GPSSECRET-PROCESSING"
    if secret:
        exif[0x010E] = secret  # ImageDescription
    return exif.tobytes()


def fake_analyse(version: str = "test-1"):
    """A fast stand-in for the pipeline: a result dict shaped like Analysis.to_dict()."""
    def analyse(data: bytes, settings) -> dict:
        value = float(len(data) % 97)
        return {"algorithm_version": version, "capture": {}, "face": {},
                "quality": {"overall": "pass", "items": []}, "regions": {},
                "summary": {"texture": value, "redness": 1.0, "pigmentation": float("nan")},
                "metrics": [{"name": "x", "value": np.float32(0.5)}], "warnings": [],
                "settings": {"model": "bundled"}}
    return analyse


def make_folder(root: Path, layout: dict[str, int], start_seed: int = 0) -> list[Path]:
    """Create ``{subfolder: count}`` small JPEGs; returns the files."""
    files, seed = [], start_seed
    for sub, count in layout.items():
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            f = d / f"photo_{seed:03d}.jpg"
            f.write_bytes(jpeg_bytes(seed))
            files.append(f)
            seed += 1
    return files


def run_py(code: str, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_minloglevel="2", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
