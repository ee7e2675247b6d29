"""The demo clinic: two synthetic patients' micro-needling courses, analysed.

``python -m analyzer demo`` (run by ``scripts/start.sh``) fills an empty
database from ``sample_images/demo_patient_a`` and ``demo_patient_b``: one
clinic, a practitioner, the patients, one visit per photo with the treatment
of session days 0 / 42 / 84, each photo stored (sanitized) and analysed, and
the comparison of every follow-up with the baseline.  A database that already
has patients is left alone.  The demo user's password is random, printed once
and written to ``<data dir>/DEMO_CREDENTIALS.txt`` (mode 0600).
"""
from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from .config import Settings
from .errors import AnalyzerError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images"
DEMO_CLINIC = "Demo clinic"
DEMO_ACTOR = "system:demo"
DEMO_USER = "demo"
DEMO_PATIENTS = (
    # folder, code, name, Fitzpatrick type
    ("demo_patient_a", "DEMO-A", "Demo patient A (light skin)", "II"),
    ("demo_patient_b", "DEMO-B", "Demo patient B (dark skin)", "VI"),
)
SESSION_DAYS = (0, 42, 84)
TREATMENT = dict(procedure="micro-needling", device="automated micro-needling pen",
                 needle_depth_mm=1.5, passes=4, serum="PRP",
                 post_care="No make-up for 24 h; gentle cleanser, hyaluronic serum and "
                           "SPF 50 for 2 weeks; no actives (retinoids, acids) for 5 days.")


@dataclass
class DemoReport:
    seeded: bool
    patients: int = 0
    photos: int = 0
    comparisons: int = 0
    seconds: float = 0.0
    username: str | None = None
    password: str | None = None
    credentials_file: Path | None = None
    problems: list[str] = field(default_factory=list)


def demo_photos(folder: Path, limit: int | None = None) -> list[tuple[Path, dict]]:
    """``(photo, sidecar)`` of a demo course, in date order."""
    out = []
    for jpg in sorted(Path(folder).glob("*.jpg")):
        meta = json.loads(jpg.with_suffix(".json").read_text())
        out.append((jpg, meta))
    return out[:limit] if limit else out


def _demo_user(store, clinic_id: int, settings: Settings) -> tuple[str | None, str | None, Path | None]:
    """Create the demo user (store access control) or, without it, a local
    demo credential; returns (username, password or None, credentials file)."""
    from .dashboard_data import demo_credentials_path, read_demo_credentials, write_demo_credentials

    if callable(getattr(store, "ensure_demo_user", None)):
        username, password = store.ensure_demo_user(clinic_id=clinic_id)
        if password:
            return username, password, write_demo_credentials(settings, username, password)
        return username, None, demo_credentials_path(settings)
    have = read_demo_credentials(settings)
    if have:
        return have[0], None, demo_credentials_path(settings)
    password = secrets.token_urlsafe(12)
    return DEMO_USER, password, write_demo_credentials(settings, DEMO_USER, password)


def seed_demo(store, *, samples: Path = SAMPLES, patients=DEMO_PATIENTS, limit: int | None = None,
              compare: bool = True, say: Callable[[str], None] | None = None) -> DemoReport:
    """Fill an empty store with the demo courses (see module doc).

    Parameters
    ----------
    limit : int, optional
        Only the first ``limit`` photos of each course (tests).
    compare : bool
        Also compute and store each follow-up's comparison with the baseline.
    say : callable, optional
        Receives progress lines.
    """
    from .dashboard_data import Gateway, LocalPrincipal, ensure_comparison
    from .pipeline import analyze

    say = say or (lambda line: None)
    t0 = time.perf_counter()
    if store.list_patients(**_read_kw(store)):
        return DemoReport(False, seconds=time.perf_counter() - t0)
    settings = store.settings
    clinic_id = store.create_clinic(DEMO_CLINIC, actor=DEMO_ACTOR)
    practitioner_id = store.create_practitioner("Demo practitioner", actor=DEMO_ACTOR,
                                                clinic_id=clinic_id, role="practitioner")
    report = DemoReport(True)
    courses = [(folder, code, name, st, demo_photos(samples / folder, limit))
               for folder, code, name, st, in patients]
    total = sum(len(c[4]) for c in courses)
    done = 0
    system = LocalPrincipal(None, DEMO_ACTOR, "admin", clinic_id)
    gw = Gateway(store, system, actor=DEMO_ACTOR)
    for folder, code, name, skin_type, photos in courses:
        if not photos:
            continue
        patient = store.create_patient(code, actor=DEMO_ACTOR, name=name, skin_type=skin_type,
                                       consent=True, consent_date=photos[0][1]["date"],
                                       clinic_id=clinic_id)
        report.patients += 1
        first = date.fromisoformat(photos[0][1]["date"])
        analysed = {}
        baseline_id = None
        for jpg, meta in photos:
            day = date.fromisoformat(meta["date"])
            offset = (day - first).days
            treatment = TREATMENT if offset in SESSION_DAYS else {}
            session = f"session {SESSION_DAYS.index(offset) + 1}: " if treatment else ""
            visit = store.add_visit(patient.id, day, actor=DEMO_ACTOR,
                                    practitioner_id=practitioner_id,
                                    notes=f"{meta.get('visit', '')}: {session}{meta.get('note', '')}",
                                    **treatment)
            data = jpg.read_bytes()
            t1 = time.perf_counter()
            try:
                photo = store.add_photo(visit.id, data, actor=DEMO_ACTOR, view="frontal",
                                        skin_condition="clean", lighting="clinic ring light")
                done_photo = analyze(store.photo_bytes(photo.id, **_read_kw(store)), settings)
            except AnalyzerError as exc:
                report.problems.append(f"{jpg.name}: {exc}")
                done += 1
                say(f"[{done}/{total}] {code} {meta['date']} {meta.get('visit', '')}: "
                    f"SKIPPED: {exc}")
                continue
            store.save_analysis(photo.id, done_photo.result.to_dict(), actor=DEMO_ACTOR)
            analysed[photo.id] = done_photo
            report.photos += 1
            done += 1
            say(f"[{done}/{total}] {code} {meta['date']} {meta.get('visit', '')}: analysed in "
                f"{time.perf_counter() - t1:.1f} s")
            if baseline_id is None:
                baseline_id = photo.id
            elif compare:
                t1 = time.perf_counter()
                ensure_comparison(gw, patient.id, baseline_id, photo.id, cache=analysed,
                                  days_since=_days_since(first, day))
                report.comparisons += 1
                say(f"        compared with the baseline in {time.perf_counter() - t1:.1f} s")
    user, password, path = _demo_user(store, clinic_id, settings)
    report.username, report.password, report.credentials_file = user, password, path
    report.seconds = time.perf_counter() - t0
    return report


def _days_since(first: date, day: date) -> int | None:
    before = [first.toordinal() + d for d in SESSION_DAYS if first.toordinal() + d < day.toordinal()]
    return day.toordinal() - max(before) if before else None


def _read_kw(store) -> dict:
    """Reads done by the system before any user exists (no actor needed)."""
    import inspect

    params = inspect.signature(store.list_patients).parameters
    return {"actor": DEMO_ACTOR} if "actor" in params else {}


def cmd_demo(args, settings: Settings) -> int:
    from .store import Store

    with Store.open(settings) as store:
        say = (lambda line: print(line, flush=True)) if not args.quiet else None
        if say:
            say(f"demo: database in {settings.data_dir}")
        report = seed_demo(store, limit=args.limit, compare=not args.no_compare, say=say)
    if not report.seeded:
        print("demo: the database already has patients; nothing to do")
        return 0
    print(f"demo: {report.patients} patients, {report.photos} photos analysed, "
          f"{report.comparisons} comparisons stored in {report.seconds:.0f} s")
    if report.password:
        print(f"demo: sign in as '{report.username}' with password: {report.password}")
    for problem in report.problems:
        print(f"demo: skipped {problem}", file=sys.stderr)
    if report.credentials_file:
        print(f"demo: credentials are in {report.credentials_file} (readable by you only)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="load the demo clinic (two treatment courses) into an "
                                    "empty database")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N photos per patient")
    p.add_argument("--no-compare", action="store_true",
                   help="do not precompute the comparisons with the baseline")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_demo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m analyzer demo")
