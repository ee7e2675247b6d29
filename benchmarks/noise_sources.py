"""Which part of a retake moves the summaries: retake noise by capture factor and skin tone.

For no-change phantom pairs, each factor of a retake (``analyzer.phantom.Capture``)
is varied on its own, drawn as in ``accuracy.py`` (retake strength 0.7), while
every other factor stays at a reference capture: no pose change, exposure 1,
neutral white balance, no lighting gradient, sensor noise 1.0 (8-bit units,
a new draw per photo) and JPEG quality 90 (4:2:0).  The first row, the
reference itself, is the floor every other row includes: two photos that
differ only in their sensor-noise draw.  The last row varies every factor at
once (the retakes of ``accuracy.py``).  Prints the RMS of (follow-up −
baseline) / baseline of each summary, in %, as ``compare`` measures it (on
the skin both photos show).  This is what the README's advice on what to keep
the same from visit to visit rests on.

Run: ``.venv/bin/python benchmarks/noise_sources.py [--pairs 12] [--scale 6] [--tones light,tan,dark]``
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")
KEYS = ("texture", "redness", "pigmentation")
# factor -> the Capture fields it varies (None: all of them)
FACTORS = {
    "reference (sensor-noise draw only)": (),
    "pose (angle, distance, shift, tilt)": ("angle_deg", "scale", "shift", "tilt"),
    "exposure": ("exposure",),
    "white balance": ("white_balance",),
    "sideways lighting gradient": ("gradient",),
    "sensor-noise level (0.5-2)": ("noise",),
    "JPEG quality (85-95)": ("jpeg_quality",),
    "all at once (accuracy.py retake)": None,
}
REFERENCE = {"noise": 1.0, "jpeg_quality": 90}


def factor_capture(fields: tuple[str, ...] | None, drawn):
    """The reference capture with ``fields`` taken from ``drawn`` (a ``Capture``);
    ``None``: ``drawn`` itself."""
    from analyzer.phantom import Capture

    if fields is None:
        return drawn
    reference = Capture(**REFERENCE)
    return dataclasses.replace(reference, **{f: getattr(drawn, f) for f in fields})


def no_change_pair(args: tuple[str, str, int, float]) -> tuple[str, str, dict[str, float]]:
    """``(tone, factor, {key: change in %})`` of one no-change pair."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import TONES, Capture, make_face, photograph_file
    from analyzer.pipeline import analyze

    tone, factor, seed, scale = args
    face = make_face(scale=scale, seed=seed % 7, tone=TONES[tone])
    rng = np.random.default_rng(seed)
    b_cap, f_cap = (factor_capture(FACTORS[factor], Capture.random(rng, 0.7)) for _ in range(2))
    baseline = analyze(photograph_file(face, [], b_cap, seed=2 * seed)[0])
    followup = analyze(photograph_file(face, [], f_cap, seed=2 * seed + 1)[0])
    c, _ = compare_analysed(baseline, followup, mdc={"summary": {}, "metrics": {}, "provenance": {}})
    return tone, factor, {k: 100 * c.delta[k]["value"] / c.baseline["summary"][k] for k in KEYS}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=12, help="no-change pairs per factor and tone")
    p.add_argument("--scale", type=float, default=6.0, help="phantom scale (6 = 4.1 px/mm)")
    p.add_argument("--tones", default="light,tan,dark")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    tones = args.tones.split(",")
    # the same seeds for every factor: row differences are the factor, not the faces
    jobs = [(t, f, 7000 + s, args.scale) for t in tones for f in FACTORS for s in range(args.pairs)]
    with ProcessPoolExecutor(args.workers) as pool:
        res = list(pool.map(no_change_pair, jobs))
    print(f"{len(res)} no-change pairs ({args.pairs} per factor and tone), scale {args.scale}; "
          "RMS change in % of the baseline, " + " / ".join(KEYS))
    print("| factor varied | " + " | ".join(tones) + " |")
    print("|---|" + "---|" * len(tones))
    for factor in FACTORS:
        cells = []
        for tone in tones:
            rows = [d for t, f, d in res if t == tone and f == factor]
            cells.append(" / ".join(f"{np.sqrt(np.mean([d[k] ** 2 for d in rows])):.2f}" for k in KEYS))
        print(f"| {factor} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
