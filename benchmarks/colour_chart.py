"""Retake noise of comparisons with a colour chart in the scene, against the same pairs without.

For no-change phantom pairs (two retakes of the same skin, strength 0.7) the
scene is photographed three ways: without a chart, with a ColorChecker
Classic lit like the face in both photos, and with it in the baseline only.
Prints, per skin tone and way, the RMS of each summary's relative change and
how many pairs ``compare`` flagged as a change (every one is a false alarm).

Run: ``.venv/bin/python benchmarks/colour_chart.py [--pairs 8] [--tones light,dark]``
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
WAYS = ("no chart", "chart in both", "chart in baseline only")


def one_pair(args: tuple[str, int]) -> tuple[str, dict]:
    """``(tone, {way: {key: (relative change %, flagged)}})`` of one no-change pair."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import TONES, Capture, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    tone, k = args
    face = make_face(scale=6, seed=k % 7, tone=TONES[tone])
    rng = np.random.default_rng(100 + k)
    captures = Capture.random(rng, 0.7), Capture.random(rng, 0.7)
    h = face.linear.shape[0]
    charts = (60, h - 260, 28, -3.0), (70, h - 270, 28, 2.0)

    def shot(i, chart):
        return analyse_pixels(photograph(face, [], captures[i], seed=2 * k + i, chart=chart)[0])

    plain = [shot(0, None), shot(1, None)]
    charted = [shot(0, charts[0]), shot(1, charts[1])]
    out = {}
    for way, (b, f) in zip(WAYS, ((plain[0], plain[1]), (charted[0], charted[1]), (charted[0], plain[1]))):
        c, _ = compare_analysed(b, f)
        out[way] = {key: (100 * c.delta[key]["relative"], bool(c.delta[key]["significant"])) for key in KEYS}
    return tone, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=8, help="no-change pairs per tone")
    p.add_argument("--tones", default="light,dark")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    tones = args.tones.split(",")
    with ProcessPoolExecutor(args.workers) as pool:
        res = list(pool.map(one_pair, [(t, k) for t in tones for k in range(args.pairs)]))
    print(f"{args.pairs} no-change pairs per tone, 4.1 px/mm: RMS change (flagged pairs)")
    for tone in tones:
        for way in WAYS:
            rows = [r[way] for t, r in res if t == tone]
            print(f"{tone:6s} {way:23s} " + "  ".join(
                f"{k} {np.sqrt(np.mean([r[k][0] ** 2 for r in rows])):4.2f} % ({sum(r[k][1] for r in rows)})"
                for k in KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
