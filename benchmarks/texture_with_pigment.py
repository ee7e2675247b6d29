"""Texture and pigment changing together: what ``compare`` claims for each.

From one RGB photo, pigment mottle about 1 mm across reads as texture, and
the guided melanin map follows the texture's detail where it is pigmented,
so when both indices change the same way ``compare`` claims each only beyond
what the other explains (``compare.judge_within_other``, factors in
``compare.EXPLAINED_BY``).  This prints, per skin tone, phantom pairs
(retakes as in ``accuracy.py``) where only texture, only pigment, or both
improved, the median relative changes, and how often each is claimed
improved: by its MDC alone (before the rule) and as ``compare`` reports it.
The cost of the rule is in the "both" rows: a real change that the other
index's change, about its size, went along with is not claimed.

With ``--settings same`` every follow-up is taken and saved like its baseline (one camera
setting), so the tighter MDC of photos saved alike applies.

Run: ``.venv/bin/python benchmarks/texture_with_pigment.py [--pairs 6] [--scale 6] [--tones light,brown,dark] [--settings same]``
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import Case, judge_pair, run_cases  # noqa: E402

TEXTURE = [("roughness", 0.7), ("pores", 0.7), ("lines", 0.7)]   # accuracy.py's medium texture dose
CONDITIONS = {
    "texture only (layers to 70 %)": TEXTURE,
    "pigment only (spots to 65 %)": [("spots", 0.65)],
    "both": TEXTURE + [("spots", 0.65)],
    "both, texture to 50 %": [(k, 0.5) for k, _ in TEXTURE] + [("spots", 0.65)],
}


def shipped_mdc(r: dict, key: str) -> float | None:
    """The MDC ``compare`` applies to pair ``r`` with the shipped calibration."""
    from analyzer.compare import load_mdc, summary_mdc

    return summary_mdc(load_mdc(px_per_mm=r["px_per_mm"]), key, r.get("ita_category"),
                       bool(r.get("same_settings")))[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=6, help="pairs per condition and tone")
    p.add_argument("--scale", type=float, default=6.0, help="phantom scale (6 = 4.1 px/mm, 12 = 8.2)")
    p.add_argument("--tones", default="light,brown,dark")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--settings", choices=("mixed", "same"), default="mixed",
                   help="mixed: JPEG quality and ISO drawn per photo; same: taken alike")
    args = p.parse_args(argv)
    tones = args.tones.split(",")
    # the same seeds for every condition: rows differ by the change, not the faces or retakes
    cases = [Case(t, name, "medium", -0.3, changes, None, 20_000 + s, settings=args.settings)
             for t in tones for name, changes in CONDITIONS.items() for s in range(args.pairs)]
    results = run_cases(cases, args.scale, 0.7, args.workers)
    print(f"{len(results)} pairs ({args.settings} settings), scale {args.scale}; median relative change, and how often "
          "claimed improved by its MDC alone / as compare reports it")
    print("| tone | change | texture | claimed | pigmentation | claimed |")
    print("|---|---|---|---|---|---|")
    for tone in tones:
        for name in CONDITIONS:
            rs = [r for r in results if r["case"]["tone"] == tone and r["case"]["concern"] == name]
            ds = [judge_pair(r, shipped_mdc) for r in rs]
            cells = []
            for k in ("texture", "pigmentation"):
                before = sum(d[k]["value"] < -d[k]["mdc"] for d in ds)
                after = sum(bool(d[k]["significant"]) and d[k]["value"] < 0 for d in ds)
                cells += [f"{100 * np.median([d[k]['relative'] for d in ds]):+.1f} %",
                          f"{before} / {after} of {len(ds)}"]
            print(f"| {tone} | {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
