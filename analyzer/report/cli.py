"""Commands ``report``, ``timelapse`` and ``export-metrics``.

Reads run as ``--actor`` (default ``$ANALYZER_ACTOR`` or ``cli:<login>``),
a trusted local operator.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..config import Settings
from ..errors import NotFoundError, ReportError


def _write(path: str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename) and say so."""
    dest = Path(path)
    if dest.is_dir():
        raise ReportError(f"{dest} is a folder: give a file name for --out")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {dest} ({len(data) // 1024} KiB)")
    return dest


def _format(args, allowed: tuple[str, ...]) -> str:
    fmt = (args.format or Path(args.out).suffix.lstrip(".")).lower()
    if fmt not in allowed:
        raise ReportError(f"cannot tell the format of {args.out!r}: name it "
                          f"{' or '.join('.' + a for a in allowed)}, or give --format")
    return fmt


def _actor(args) -> str:
    from ..store.cli import _actor as store_actor

    return store_actor(args)


def _open(settings: Settings):
    from ..store import Store

    return Store.open(settings)


def cmd_report(args, settings: Settings) -> int:
    from . import build_report

    with _open(settings) as store:
        data = build_report(store, args.patient, actor=_actor(args),
                            include_name=args.include_name)
    _write(args.out, data)
    return 0


def cmd_timelapse(args, settings: Settings) -> int:
    from . import TIMELAPSE_FORMATS, build_timelapse

    fmt = _format(args, TIMELAPSE_FORMATS)
    with _open(settings) as store:
        data = build_timelapse(store, args.patient, actor=_actor(args), fmt=fmt, view=args.view,
                               side=args.size, seconds_per_visit=args.seconds)
    _write(args.out, data)
    return 0


def cmd_export_metrics(args, settings: Settings) -> int:
    from . import FORMATS, export_metrics

    fmt = _format(args, FORMATS)
    with _open(settings) as store:
        actor = _actor(args)
        clinic_id = None
        if args.clinic:
            clinic_id = store.find_clinic(args.clinic)
            if clinic_id is None:
                if not args.clinic.isdigit():
                    raise NotFoundError(f"there is no clinic named {args.clinic!r}")
                clinic_id = int(args.clinic)
        data = export_metrics(store, actor=actor, patient_id=args.patient, clinic_id=clinic_id,
                              fmt=fmt, all_analyses=args.all_analyses)
    _write(args.out, data)
    return 0


def register(sub) -> None:
    """Add ``report``, ``timelapse`` and ``export-metrics`` to the CLI."""
    p = sub.add_parser("report", help="write a patient's PDF progress report")
    p.add_argument("--patient", required=True, metavar="ID_OR_CODE", help="patient code or id")
    p.add_argument("--out", required=True, metavar="FILE.pdf")
    p.add_argument("--include-name", action="store_true",
                   help="print the patient's name (default: the pseudonymous code only)")
    p.add_argument("--actor", help="who asks (default $ANALYZER_ACTOR or cli:<login>)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("timelapse", help="write an aligned time-lapse of a patient's course")
    p.add_argument("--patient", required=True, metavar="ID_OR_CODE", help="patient code or id")
    p.add_argument("--out", required=True, metavar="FILE.gif", help=".gif (or .mp4)")
    p.add_argument("--format", choices=("gif", "mp4"), help="default: from the file name")
    p.add_argument("--view", default="frontal", choices=("frontal", "left_45", "right_45"))
    p.add_argument("--size", type=int, metavar="PX", help="longest side of a frame (512)")
    p.add_argument("--seconds", type=float, metavar="S", help="seconds per visit (0.9)")
    p.add_argument("--actor", help="who asks (default $ANALYZER_ACTOR or cli:<login>)")
    p.set_defaults(func=cmd_timelapse)

    p = sub.add_parser("export-metrics",
                       help="write every stored metric (photo × region × metric) as CSV or JSON")
    p.add_argument("--patient", metavar="ID_OR_CODE", help="one patient (default: all)")
    p.add_argument("--clinic", metavar="ID_OR_NAME", help="one clinic's patients")
    p.add_argument("--out", required=True, metavar="FILE.csv", help=".csv or .json")
    p.add_argument("--format", choices=("csv", "json"), help="default: from the file name")
    p.add_argument("--all-analyses", action="store_true",
                   help="every stored analysis of each photo, not only the latest")
    p.add_argument("--actor", help="who asks (default $ANALYZER_ACTOR or cli:<login>)")
    p.set_defaults(func=cmd_export_metrics)
