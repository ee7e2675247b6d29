"""Retake noise of what a progress chart plots: a photo's own summaries against a comparison.

For no-change phantom pairs (two independent retakes of the same skin,
retake strength 0.7, as in ``accuracy.py``) prints, per summary index, the
RMS and 95th percentile of (follow-up − baseline) / baseline in %:

- of the two photos' own analysis summaries (each over its whole visible face),
- of the ``compare`` delta (both photos measured on the skin both show),

and how often each falls outside the band baseline ± MDC (the MDC ``compare``
applies); own summaries also against the band a progress chart draws for them
(the MDC of own values, ``analyzer.compare.own_photo_mdc``).  The progress
charts draw ``compare`` deltas for this reason
(:func:`analyzer.compare.charted_value`).

Run: ``.venv/bin/python benchmarks/chart_noise.py [--pairs 8] [--scale 6] [--tones light,tan,dark]``
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")
KEYS = ("texture", "redness", "pigmentation")


def no_change_pair(args: tuple[str, int, float]) -> dict[str, tuple[float, float, float, float]]:
    """``{key: (own-summary change %, compare delta %, MDC %, own-value MDC %)}`` of one
    no-change pair (the last: the band of a chart point without a trusted comparison,
    ``analyzer.compare.own_photo_mdc``; the MDC where not calibrated)."""
    from analyzer.compare import compare_analysed, load_mdc, own_photo_mdc
    from analyzer.phantom import TONES, Capture, make_face, photograph_file
    from analyzer.pipeline import analyze

    tone, seed, scale = args
    face = make_face(scale=scale, seed=seed % 7, tone=TONES[tone])
    rng = np.random.default_rng(1000 + seed)
    # as files, read through intake as the CLI and dashboard read them (colour from the JPEG's chroma)
    b = analyze(photograph_file(face, [], Capture.random(rng, 0.7), seed=2 * seed)[0])
    f = analyze(photograph_file(face, [], Capture.random(rng, 0.7), seed=2 * seed + 1)[0])
    c, _ = compare_analysed(b, f)
    calibration = load_mdc(px_per_mm=c.baseline["summary"]["px_per_mm"])
    out = {}
    for key in KEYS:
        own_b, own_f, ref = b.result.summary[key], f.result.summary[key], c.baseline["summary"][key]
        own_mdc = own_photo_mdc(calibration, key, b.result.summary.get("ita_category"))
        out[key] = (100 * (own_f - own_b) / own_b, 100 * c.delta[key]["value"] / ref,
                    100 * c.delta[key]["mdc"] / ref,
                    100 * max(own_mdc or 0.0, c.delta[key]["mdc"]) / own_b)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=8, help="no-change pairs per tone")
    p.add_argument("--scale", type=float, default=6.0, help="phantom scale (6 = 4.1 px/mm)")
    p.add_argument("--tones", default="light,tan,dark")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    jobs = [(t, s, args.scale) for t in args.tones.split(",") for s in range(args.pairs)]
    with ProcessPoolExecutor(args.workers) as pool:
        res = list(pool.map(no_change_pair, jobs))
    print(f"{len(res)} no-change pairs, tones {args.tones}, scale {args.scale}")
    for key in KEYS:
        own, cmp_, mdc, own_mdc = (np.array([r[key][i] for r in res]) for i in range(4))
        print(f"{key:13s} own summaries: RMS {np.sqrt(np.mean(own ** 2)):5.2f} %  "
              f"p95 {np.percentile(np.abs(own), 95):5.2f} %  outside ±MDC {100 * np.mean(np.abs(own) > mdc):3.0f} %"
              f"  outside its own band (±{own_mdc.mean():.2f} %) {100 * np.mean(np.abs(own) > own_mdc):3.0f} %"
              f"  | compare: RMS {np.sqrt(np.mean(cmp_ ** 2)):5.2f} %  "
              f"p95 {np.percentile(np.abs(cmp_), 95):5.2f} %  outside ±MDC {100 * np.mean(np.abs(cmp_) > mdc):3.0f} %"
              f"  | MDC {mdc.mean():.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
