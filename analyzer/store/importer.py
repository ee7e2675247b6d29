"""Bulk operations: import a folder of photos for a patient; re-analyse after an
algorithm change.

Both are restartable: every photo is committed on its own (blob first, then
its row), and a re-run skips what is already stored and analysed, so an
import killed mid-way completes without duplicates when run again.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from ..config import Settings
from ..errors import AnalyzerError, IntakeError, StoreError
from .repository import Store, prepare_photo

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif"}
_DATE_DIR = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\b")
_VIEW_HINTS = (("left", "left_45"), ("right", "right_45"), ("l45", "left_45"),
               ("r45", "right_45"), ("front", "frontal"))

Analyse = Callable[[bytes, Settings], dict]


def default_analyse(data: bytes, settings: Settings) -> dict:
    """Run the analysis pipeline on a stored photo; returns ``Analysis.to_dict()``."""
    from ..pipeline import analyze

    return analyze(data, settings).result.to_dict()


def current_algorithm_version() -> str:
    from .. import version

    return version.ALGORITHM_VERSION


@dataclass
class ImportReport:
    """What an import did.  ``problems`` lists (file, message) of skipped files
    and failed analyses; file paths are relative to the imported folder."""

    patient_id: int
    files: int = 0
    added: int = 0
    already_stored: int = 0
    analysed: int = 0
    analysis_failed: int = 0
    skipped: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ReanalyzeReport:
    """What a re-analysis did."""

    algorithm_version: str
    photos: int = 0
    analysed: int = 0
    failed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    @property
    def photos_per_second_per_core(self) -> float:
        done = self.analysed + self.failed
        return done / self.seconds / max(self.workers, 1) if self.seconds > 0 else 0.0


def photo_files(folder: Path) -> list[Path]:
    """Photo files under ``folder`` (recursive, hidden files skipped), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def date_from_path(path: Path, root: Path) -> date | None:
    """The date of the nearest parent folder named like ``2026-03-14`` (under ``root``)."""
    for part in reversed(path.relative_to(root).parts[:-1]):
        m = _DATE_DIR.match(part)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def view_from_name(path: Path) -> str:
    """``left_45`` / ``right_45`` if the file name says so, else ``frontal``."""
    stem = path.stem.lower()
    for hint, view in _VIEW_HINTS:
        if hint in stem:
            return view
    return "frontal"


def import_folder(store: Store, folder: str | Path, patient_code: str, *, actor,
                  visit_date: date | str | None = None, view: str | None = None,
                  skin_condition: str | None = None, lighting: str | None = None,
                  camera_setup: str | None = None, create_patient: bool = True,
                  analyse: Analyse | None = default_analyse,
                  algorithm_version: str | None = None,
                  progress: bool = True) -> ImportReport:
    """Import every photo under ``folder`` for one patient, then analyse them.

    The visit date of a photo is, in order: ``visit_date`` if given, the
    nearest parent folder named ``YYYY-MM-DD``, the EXIF capture date.  Files
    with none of these, or that are not usable photos, are skipped and
    reported.  One visit per patient and date is used (created if missing).

    Parameters
    ----------
    actor : Principal or str
        Who imports (a Principal is limited to its clinic; see :class:`Store`).
    analyse : callable or None
        ``analyse(stored_bytes, settings) -> dict``; ``None`` stores without
        analysing.  A failed analysis is recorded; the photo stays stored.
    progress : bool
        Show a progress bar on stderr.
    """
    from tqdm import tqdm

    root = Path(folder)
    files = photo_files(root)
    patient = store.find_patient(patient_code, actor=actor)
    if patient is None:
        if not create_patient:
            raise StoreError(f"there is no patient with code {patient_code}")
        try:
            patient = store.create_patient(patient_code, actor=actor)
        except StoreError:  # created meanwhile by a concurrent import
            patient = store.find_patient(patient_code, actor=actor)
            if patient is None:
                raise
    report = ImportReport(patient_id=patient.id, files=len(files))
    version = algorithm_version or current_algorithm_version()
    visits: dict[date, int] = {}
    bar = tqdm(files, desc="import", unit="photo", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    for path in bar:
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.skipped += 1
            report.problems.append((rel, f"cannot read: {exc.strerror}"))
            continue
        photo = store.find_photo_by_source(patient.id, hashlib.sha256(data).hexdigest(),
                                           actor=actor)
        if photo is not None:
            report.already_stored += 1
        else:
            try:
                prepared = prepare_photo(data, store.settings)
            except IntakeError as exc:
                report.skipped += 1
                report.problems.append((rel, str(exc)))
                continue
            day = _visit_day(visit_date, path, root, prepared.info.captured_at)
            if day is None:
                report.skipped += 1
                report.problems.append((rel, "no visit date: put it in a folder named "
                                             "YYYY-MM-DD or give --date"))
                continue
            if day not in visits:
                visits[day] = store.ensure_visit(patient.id, day, actor=actor).id
            photo = store.add_photo(visits[day], prepared, actor=actor,
                                    view=view or view_from_name(path),
                                    skin_condition=skin_condition, lighting=lighting,
                                    camera_setup=camera_setup)
            if photo.created:
                report.added += 1
            else:
                report.already_stored += 1
        if analyse is not None:
            if photo.id in set(store.photos_needing_analysis(version, patient_id=patient.id,
                                                             actor=actor)):
                ok, message = _analyse_one(store, photo.id, analyse, version, actor)
                if ok:
                    report.analysed += 1
                else:
                    report.analysis_failed += 1
                    report.problems.append((rel, message))
    bar.close()
    return report


def reanalyze(store: Store, *, actor, patient_id: int | None = None,
              analyse: Analyse = default_analyse, algorithm_version: str | None = None,
              retry_failed: bool = False, progress: bool = True, workers: int = 1,
              executor=None) -> ReanalyzeReport:
    """Analyse every stored photo that has no analysis at the current algorithm
    version; earlier analyses are kept.  Restartable like :func:`import_folder`:
    each result is committed as soon as it arrives, so an interrupted run loses
    at most the photos in flight and the next run picks up the rest.

    Parameters
    ----------
    patient_id : int, optional
        Only this patient's photos.
    retry_failed : bool
        Also retry photos whose analysis at this version failed.
    workers : int
        Local worker processes (1 = in this process).
    executor : concurrent.futures.Executor, optional
        Where analyses run instead, e.g. ``distributed.Client(address).get_executor()``
        for a Dask cluster.  Photos are read and results written by this process
        only; workers receive bytes and return result dicts.
    """
    from tqdm import tqdm

    version = algorithm_version or current_algorithm_version()
    ids = store.photos_needing_analysis(version, patient_id=patient_id,
                                        retry_failed=retry_failed, actor=actor)
    report = ReanalyzeReport(algorithm_version=version, photos=len(ids), workers=max(1, workers))
    bar = tqdm(total=len(ids), desc="reanalyze", unit="photo", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    started = time.perf_counter()

    def record(photo_id: int, ok: bool, payload) -> None:
        if ok:
            store.save_analysis(photo_id, payload, actor=actor)
            report.analysed += 1
        else:
            store.record_failed_analysis(photo_id, version, payload, actor=actor)
            report.failed += 1
            report.problems.append((photo_id, payload))
        bar.update(1)

    if executor is None and workers <= 1:
        for photo_id in ids:
            record(photo_id, *_analyse_bytes(store.photo_bytes(photo_id, actor=actor),
                                             store.settings, analyse))
    else:
        _run_parallel(store, ids, actor, analyse, workers, executor, record)
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _analyse_bytes(data: bytes, settings: Settings, analyse: Analyse) -> tuple[bool, object]:
    """``(True, result)`` or ``(False, message)``; runs in a worker, so it never raises."""
    try:
        return True, analyse(data, settings)
    except AnalyzerError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug in one analysis must not stop the run
        return False, f"internal error in the analysis ({exc.__class__.__name__}: {exc})"


def _run_parallel(store: Store, ids: list[int], actor, analyse: Analyse, workers: int,
                  executor, record) -> None:
    """Keep ``2 × workers`` photos in flight (bounded memory); record results as they come."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    own = executor is None
    # "spawn", not fork: a forked child of a process whose threads hold locks
    # (MediaPipe, SQLAlchemy pools, a web server) can deadlock on its first lock.
    pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            if own else executor)
    window = max(2, 2 * max(workers, 1))
    pending: dict = {}
    queue = list(ids)
    try:
        while queue or pending:
            while queue and len(pending) < window:
                photo_id = queue.pop(0)
                data = store.photo_bytes(photo_id, actor=actor)
                pending[pool.submit(_analyse_bytes, data, store.settings, analyse)] = photo_id
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                record(pending.pop(future), *future.result())
    finally:
        if own:
            pool.shutdown(cancel_futures=True)


def _visit_day(given, path: Path, root: Path, captured_at: str | None) -> date | None:
    if given:
        return given if isinstance(given, date) else date.fromisoformat(str(given))
    day = date_from_path(path, root)
    if day is None and captured_at:
        day = datetime.fromisoformat(captured_at).date()
    return day


def _analyse_one(store: Store, photo_id: int, analyse: Analyse, version: str,
                 actor) -> tuple[bool, str]:
    """Analyse one stored photo; a failure is recorded, never deletes the photo."""
    try:
        data = store.photo_bytes(photo_id, actor=actor)
        result = analyse(data, store.settings)
    except AnalyzerError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug in one analysis must not stop the import
        message = f"internal error in the analysis ({exc.__class__.__name__}: {exc})"
    else:
        store.save_analysis(photo_id, result, actor=actor)
        return True, ""
    store.record_failed_analysis(photo_id, version, message, actor=actor)
    return False, message
