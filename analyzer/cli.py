"""Command line: ``python -m analyzer COMMAND ...``.

Every library error becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# MediaPipe's C++ logging would otherwise print to stderr on every run.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .config import Settings  # noqa: E402
from .errors import AnalyzerError  # noqa: E402

EXIT_USER_ERROR = 2


def _write_png(path: str, pixels) -> None:
    from .intake import encode_png

    Path(path).write_bytes(encode_png(pixels))


def _write_maps(folder: str, maps: dict, prefix: str) -> None:
    """Write heatmaps as ``<folder>/<prefix><concern>.png``."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--maps-out {folder}: a file of that name exists; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    for key, pixels in maps.items():
        _write_png(str(out / f"{prefix}{key}.png"), pixels)


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    from .pipeline import analyze
    from .regions import draw_regions

    done = analyze(args.photo, settings)
    if args.regions_out:
        _write_png(args.regions_out, draw_regions(done.photo.pixels, done.regions))
    if args.maps_out:
        from .views import photo_maps

        _write_maps(args.maps_out, photo_maps(done.skin_image), "")
    result = done.result.to_dict()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_analysis(result))
    return 0


def format_analysis(result: dict) -> str:
    """Human-readable text of an analysis result."""
    lines = [f"quality: {result['quality']['overall']}"]
    for item in result["quality"]["items"]:
        mark = {"pass": " ", "warn": "!", "fail": "X"}[item["status"]]
        lines.append(f"  [{mark}] {item['name']}: {item['value']} {item['unit']}"
                     + ("" if item["status"] == "pass" else f" — {item['advice']}"))
    box = result["face"]["box"]
    lines.append(f"face: {box['width']}×{box['height']} px at ({box['x']}, {box['y']}), "
                 f"{result['face']['landmarks']} landmarks")
    lines.append("regions (px): " + ", ".join(f"{k} {v['area_px']}" for k, v in result["regions"].items()))
    lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in result["summary"].items()))
    return "\n".join(lines)


def register_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="check quality, find the face and measure one photo")
    p.add_argument("photo", help="photo file (JPEG, PNG, WebP, TIFF, HEIC)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--regions-out", metavar="PNG", help="write the regions drawn over the photo")
    p.add_argument("--maps-out", metavar="DIR",
                   help="write redness, pigmentation and texture heatmaps of the face (fixed colour "
                        "limits, the same on every photo) as DIR/<concern>.png")
    p.set_defaults(func=cmd_analyze)


def cmd_phantom(args: argparse.Namespace, settings: Settings) -> int:
    from .phantom import TONES, demo_course, make_face, write_series

    if args.tone not in TONES:
        raise ValueError(f"unknown tone {args.tone!r}; one of {', '.join(TONES)}")
    face = make_face(scale=args.scale, seed=args.seed, tone=TONES[args.tone])
    written = write_series(Path(args.out_dir), face, demo_course(), seed=args.seed,
                           capture_strength=args.capture)
    for path in written:
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from .align import write_overlay
    from .pipeline import analyze_pair, compare

    # analysed only to be compared: compare measures both on the skin they share
    baseline, followup = analyze_pair(args.baseline, args.followup, settings, measure=False)
    comparison, alignment = compare(baseline, followup, settings,
                                    days_since_treatment=args.days_since_treatment, local=args.local)
    if args.aligned_out:
        _write_png(args.aligned_out, alignment.warped)
    if args.overlay_out:
        _write_png(args.overlay_out, write_overlay(baseline.photo.pixels, alignment))
    result = comparison.to_dict()
    if args.maps_out and alignment.ok:
        from . import views

        base = views.FaceView(baseline.photo.pixels, baseline.face, baseline.regions)
        before, after, skin = views.aligned_pair(base, followup.photo.pixels, result["alignment"]["matrix"])
        _write_maps(args.maps_out, views.change_maps(before, after, skin, result), "change_")
    elif args.maps_out:
        print("change maps not written: the alignment is not trusted", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_comparison(result))
    return 0 if alignment.ok else 3


def format_comparison(result: dict) -> str:
    """Human-readable text of a comparison."""
    from .compare import mdc_source, with_caution

    al = result["alignment"]
    lines = [f"alignment: {'ok' if al['ok'] else 'NOT TRUSTED'} (residual {al['residual_px']} px, "
             f"NCC {al['ncc']})" + ("" if al["ok"] else f" — {al['reason']}")]
    for key, d in result["delta"].items():
        b = result["baseline"]["summary"].get(key)
        f = result["followup"]["summary"].get(key)
        value = "n/a" if d["value"] is None else f"{d['value']:+.4g}"
        rel = "" if d.get("relative") is None else f" ({100 * d['relative']:+.1f} %)"
        source = "" if d.get("mdc_tone") in (None, "all tones") else f"; {mdc_source(d['mdc_tone'])}"
        mdc = "" if d.get("mdc") is None else f" (retake noise ±{d['mdc']:.3g}{source})"
        lines.append(f"{key:13s} {b} -> {f}: {value}{rel}, {with_caution(d['status'], d)}{mdc}")
    lines += [f"note: {flag}" for flag in result["flags"]]
    return "\n".join(lines)


def register_compare(sub) -> None:
    p = sub.add_parser("compare", help="align a follow-up photo to its baseline and report the change")
    p.add_argument("baseline", help="baseline photo")
    p.add_argument("followup", help="follow-up photo")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--aligned-out", metavar="PNG", help="write the follow-up resampled into the baseline frame")
    p.add_argument("--overlay-out", metavar="PNG", help="write a checkerboard overlay of the alignment")
    p.add_argument("--maps-out", metavar="DIR",
                   help="write heatmaps of the change in redness, pigmentation and texture over the "
                        "baseline (blue = less, red = more; fixed limits) as DIR/change_<concern>.png")
    p.add_argument("--days-since-treatment", type=int, metavar="N",
                   help="days since the last treatment (flags expected post-procedure redness)")
    p.add_argument("--local", action="store_true", help="also estimate a local (non-rigid) correction")
    p.set_defaults(func=cmd_compare)


def register_phantom(sub) -> None:
    p = sub.add_parser("phantom", help="write a synthetic patient course with known truth")
    p.add_argument("out_dir", help="folder for <date>_<visit>.jpg and .json sidecars")
    p.add_argument("--tone", default="light", help="skin tone: light, intermediate, tan, brown, dark")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=6.0, help="enlargement (6: face ≈ 550 px wide)")
    p.add_argument("--capture", type=float, default=0.5,
                   help="capture variance strength (0 = identical framing and light)")
    p.set_defaults(func=cmd_phantom)


def registrars():
    """Functions that add sub-commands; each command family lives in its own module.

    Each takes the ``add_subparsers`` object and sets ``func(args, settings) -> int``.
    """
    from .demo import register as register_demo
    from .store.cli import register as register_store  # light: imports SQLAlchemy lazily
    from .report.cli import register as register_report  # report, timelapse, export-metrics

    return [register_analyze, register_compare, register_phantom, register_store, register_demo,
            register_report]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analyzer",
                                     description="Before/after skin photo progress analyzer")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in registrars():
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        return args.func(args, settings)
    except AnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (ValueError, OSError) as exc:  # e.g. bad output path, bad env value
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        face = sys.modules.get(f"{__package__}.face")  # loaded only by commands that find faces
        if face is not None:
            face.close_landmarkers()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
