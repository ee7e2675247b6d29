"""How much saving a photo differently moves the summaries, in units of their MDC.

For phantom faces photographed once (retake strength 0.7, no JPEG), the
baseline is saved as JPEG quality 95 with 4:2:0 colour; the follow-up is the
same capture with a second sensor-noise draw, saved as JPEG 95 4:2:0 (noise
only), 90 or 85 (4:2:0), or 95 with 4:4:4 colour.  Prints the mean change of
each summary in % and in units of the MDC ``compare`` applies.  This is what
``compare.compression_difference`` warns about.

Run: ``.venv/bin/python benchmarks/compression.py [--scale 6] [--faces 4]``
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")
KEYS = ("texture", "redness", "pigmentation")
TONES = ("light", "tan", "dark")
SAVES = {"noise only": (95, 2), "quality 95 -> 90": (90, 2), "quality 95 -> 85": (85, 2),
         "4:2:0 -> 4:4:4": (95, 0)}


def jpeg(rgb: np.ndarray, quality: int, subsampling: int) -> bytes:
    """``rgb`` saved as a JPEG file (``subsampling``: 0 = 4:4:4, 2 = 4:2:0)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def one_face(args: tuple[str, int, float]) -> tuple[str, dict]:
    """``(tone, {save: {key: (change %, change / MDC)}})`` for one phantom face."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import TONES as TONE_OD, Capture, make_face, photograph
    from analyzer.pipeline import analyze

    tone, seed, scale = args
    face = make_face(scale=scale, seed=seed % 7, tone=TONE_OD[tone])
    cap = dataclasses.replace(Capture.random(np.random.default_rng(500 + seed), 0.7), jpeg_quality=None)
    first, _ = photograph(face, [], cap, seed=2 * seed)
    second, _ = photograph(face, [], cap, seed=2 * seed + 1)
    base = analyze(jpeg(first, 95, 2))   # read from the file as the CLI reads it
    out = {}
    for name, (quality, sub) in SAVES.items():
        c, _ = compare_analysed(base, analyze(jpeg(second, quality, sub)))
        out[name] = {k: (100 * c.delta[k]["value"] / c.baseline["summary"][k],
                         c.delta[k]["value"] / c.delta[k]["mdc"]) for k in KEYS}
    return tone, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=6.0, help="phantom scale (6 = 4.1 px/mm, 12 = 8.2)")
    p.add_argument("--faces", type=int, default=4, help="faces per tone")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    jobs = [(t, s, args.scale) for t in TONES for s in range(args.faces)]
    with ProcessPoolExecutor(args.workers) as pool:
        res = list(pool.map(one_face, jobs))
    print(f"{args.faces} faces per tone, scale {args.scale}: mean change, % (in MDC)")
    for name in SAVES:
        for tone in TONES:
            rows = [r[name] for t, r in res if t == tone]
            print(f"{name:17s} {tone:6s} " + "  ".join(
                f"{k} {np.mean([r[k][0] for r in rows]):+5.1f} % ({np.mean([r[k][1] for r in rows]):+4.2f})"
                for k in KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
