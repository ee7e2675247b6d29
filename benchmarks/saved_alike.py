"""Small redness changes detected with photos saved alike and with photos saved differently.

For each skin tone and dose, phantom pairs with hemoglobin added evenly
(``redness`` dose, OD) are photographed twice: the follow-up at a JPEG quality
drawn per photo (85–95, like the baseline's), and at the baseline's quality
(saved alike).  Each pair is judged against the MDC ``compare`` applies to it
(the shipped calibration in ``analyzer/data/mdc.json``), and the share of pairs
whose redness rose by more than it is printed.

Run: ``.venv/bin/python benchmarks/saved_alike.py [--scale 6] [--pairs 10] [--tones dark]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402  (also puts the repository on sys.path)

FIRST_SEED = 50_000   # apart from the calibration's and its replication's seeds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=6.0, help="phantom scale (6: 4.1 px/mm, 12: 8.2)")
    parser.add_argument("--pairs", type=int, default=10, help="pairs per tone, dose and way of saving")
    parser.add_argument("--tones", default="dark")
    parser.add_argument("--doses", default="0.01,0.02", help="hemoglobin OD added evenly")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from analyzer.compare import load_mdc, summary_mdc

    tones, doses = args.tones.split(","), [float(d) for d in args.doses.split(",")]
    cases = [accuracy.Case(tone, "redness", "small", dose, [("redness", dose)], None,
                           FIRST_SEED + 1000 * t + 100 * d + j, "eval", settings)
             for t, tone in enumerate(tones) for d, dose in enumerate(doses)
             for settings in ("mixed", "same") for j in range(args.pairs)]
    t0 = time.perf_counter()
    results = accuracy.run_cases(cases, args.scale, 0.7, args.workers)
    mdc = load_mdc(px_per_mm=float(np.median([r["px_per_mm"] for r in results])))
    print(f"{len(results)} pairs, scale {args.scale}, calibration at "
          f"{mdc.get('provenance', {}).get('px_per_mm')} px/mm")
    for tone in tones:
        for dose in doses:
            for settings, label in (("mixed", "saved differently"), ("same", "saved alike")):
                rs = [r for r in results if r["case"]["tone"] == tone and r["case"]["signed_dose"] == dose
                      and r["case"]["settings"] == settings]
                limits = [summary_mdc(mdc, "redness", r["ita_category"], r["same_settings"])[0] for r in rs]
                detected = np.mean([r["delta"]["redness"] > limit for r, limit in zip(rs, limits)])
                print(f"{tone:6s} +{dose:.3f} OD  {label:18s} mean delta {np.mean([r['delta']['redness'] for r in rs]):.4f}"
                      f" OD (of {np.mean([r['baseline']['redness'] for r in rs]):.3f}), MDC {np.median(limits):.4f},"
                      f" detected {100 * detected:3.0f} %  ({len(rs)} pairs; "
                      f"{sum(r['same_settings'] for r in rs)} saved alike)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
