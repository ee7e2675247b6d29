"""Store commands: ``import``, ``reanalyze``, ``patients``, ``export``, ``erase``, ``db``
(and ``users`` / ``share`` from :mod:`analyzer.store.users_cli`).

Every change is recorded in the audit log under ``--actor`` (default:
``$ANALYZER_ACTOR`` or ``cli:<login name>``).
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys

from ..config import Settings
from ..errors import NotFoundError, StoreError

EXIT_PARTIAL = 1


def _actor(args) -> str:
    if args.actor:
        return args.actor
    if os.environ.get("ANALYZER_ACTOR"):
        return os.environ["ANALYZER_ACTOR"]
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli:unknown"


def _open(settings: Settings):
    from .repository import Store

    return Store.open(settings)


def _patient(store, code: str):
    p = store.find_patient(code)
    if p is None:
        raise NotFoundError(f"there is no patient with code {code}")
    return p


def cmd_import(args, settings: Settings) -> int:
    from .importer import import_folder

    with _open(settings) as store:
        r = import_folder(store, args.folder, args.patient, actor=_actor(args),
                          visit_date=args.date, view=args.view, skin_condition=args.skin,
                          lighting=args.lighting, camera_setup=args.camera_setup,
                          create_patient=not args.existing,
                          analyse=None if args.no_analysis else _default(),
                          progress=not args.no_progress)
    print(f"patient {args.patient}: {r.files} files, {r.added} added, "
          f"{r.already_stored} already stored, {r.analysed} analysed, "
          f"{r.analysis_failed} analyses failed, {r.skipped} skipped")
    for name, message in r.problems:
        print(f"  {name}: {message}", file=sys.stderr)
    return EXIT_PARTIAL if r.problems else 0


def _default():
    from .importer import default_analyse

    return default_analyse


def cmd_reanalyze(args, settings: Settings) -> int:
    from .importer import reanalyze

    client = None
    executor = None
    if args.dask:
        try:
            from distributed import Client
        except ImportError:
            raise StoreError("--dask needs the 'distributed' package (pip install -r requirements.txt)") from None
        client = Client(args.dask)
        executor = client.get_executor()
    try:
        with _open(settings) as store:
            pid = _patient(store, args.patient).id if args.patient else None
            r = reanalyze(store, actor=_actor(args), patient_id=pid, retry_failed=args.retry_failed,
                          progress=not args.no_progress, workers=args.workers, executor=executor)
    finally:
        if client is not None:
            client.close()
    print(f"algorithm {r.algorithm_version}: {r.photos} photos to analyse, "
          f"{r.analysed} analysed, {r.failed} failed (earlier analyses kept); "
          f"{r.seconds:.1f} s, {r.photos_per_second_per_core:.2f} photos/s per worker")
    for photo_id, message in r.problems:
        print(f"  photo {photo_id}: {message}", file=sys.stderr)
    return EXIT_PARTIAL if r.problems else 0


def cmd_patients(args, settings: Settings) -> int:
    with _open(settings) as store:
        rows = store.list_patients(search=args.search)
        for p in rows:
            visits = store.patient_timeline(p.id)
            photos = sum(len(v.photos) for v in visits)
            # Codes only: names are not printed unless asked for.
            name = f"  {p.name}" if args.names and p.name else ""
            print(f"{p.code}\t{len(visits)} visits\t{photos} photos{name}")
    return 0


def cmd_export(args, settings: Settings) -> int:
    with _open(settings) as store:
        path = store.export_patient(_patient(store, args.patient).id, args.out,
                                    actor=_actor(args))
    print(f"exported patient {args.patient} to {path}")
    return 0


def cmd_erase(args, settings: Settings) -> int:
    if not args.yes:
        raise StoreError("erasing deletes the patient's record and photos for good; "
                         "add --yes to confirm")
    with _open(settings) as store:
        counts = store.erase_patient(_patient(store, args.patient).id, actor=_actor(args))
    print(f"erased patient {args.patient}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def cmd_db(args, settings: Settings) -> int:
    from . import db

    engine = db.make_engine(db.database_url(settings))
    try:
        if args.action == "upgrade":
            from .repository import _migrate

            _migrate(engine)
        have, want = db.current_revision(engine), db.head_revision()
    finally:
        engine.dispose()
    print(f"{engine.url.render_as_string(hide_password=True)}: schema revision {have} "
          f"(newest {want})")
    return 0


def register(sub) -> None:
    """Add the store's sub-commands to ``python -m analyzer``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--actor", help="who is doing this, for the audit log "
                                        "(default $ANALYZER_ACTOR or cli:<login>)")
    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("import", parents=[common, progress],
                       help="import a folder of photos for a patient and analyse them")
    p.add_argument("folder", help="folder of photos; sub-folders named YYYY-MM-DD give visit dates")
    p.add_argument("--patient", required=True, help="pseudonymous patient code (created if new)")
    p.add_argument("--existing", action="store_true", help="fail if the patient does not exist")
    p.add_argument("--date", help="visit date YYYY-MM-DD for every photo "
                                  "(default: folder name, then EXIF capture date)")
    p.add_argument("--view", choices=["frontal", "left_45", "right_45"],
                   help="view of every photo (default: from the file name, else frontal)")
    p.add_argument("--skin", choices=["clean", "fresh_makeup", "other"],
                   help="skin condition at capture")
    p.add_argument("--lighting", help="lighting set-up, e.g. 'ring light, cross-polarised'")
    p.add_argument("--camera-setup", help="camera set-up, e.g. 'iPhone 15, 1 m, tripod'")
    p.add_argument("--no-analysis", action="store_true", help="store only; analyse later "
                                                               "with reanalyze")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("reanalyze", parents=[common, progress],
                       help="analyse stored photos with the current algorithm (old results kept)")
    p.add_argument("--patient", help="only this patient")
    p.add_argument("--retry-failed", action="store_true",
                   help="also retry photos whose analysis failed at this version")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="local worker processes (default: one per core)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run the analyses on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786")
    p.set_defaults(func=cmd_reanalyze)

    p = sub.add_parser("patients", help="list patients (codes)")
    p.add_argument("--search", help="part of a code or name")
    p.add_argument("--names", action="store_true", help="also print names")
    p.set_defaults(func=cmd_patients)

    p = sub.add_parser("export", parents=[common],
                       help="export one patient's full record (JSON + photos) as a zip")
    p.add_argument("--patient", required=True)
    p.add_argument("out", help="zip file (or folder) to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("erase", parents=[common],
                       help="erase one patient completely (record and photos)")
    p.add_argument("--patient", required=True)
    p.add_argument("--yes", action="store_true", help="confirm")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("db", help="database schema: status or upgrade")
    p.add_argument("action", choices=["status", "upgrade"])
    p.set_defaults(func=cmd_db)

    from .users_cli import register as register_users

    register_users(sub, common)
