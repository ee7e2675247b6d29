"""Accuracy harness: metrics and alignment against the skin phantom's known truth.

For every skin tone it photographs phantom pairs (baseline, follow-up) with
independent retake variance, as files (JPEG at a quality drawn per photo),
reads them through intake and runs the same ``compare`` the CLI runs, and
prints per concern (texture, redness, pigmentation) and tone:

- sign agreement of the summary delta with the injected change,
- detectable rate (flagged significant, as ``compare`` judges it: ``judge_pair``, with
  texture and pigmentation each counted beyond what the other's change explains) on
  medium and high doses,
- Spearman correlation of the delta with dose over the dose-response curve (each dose
  level once; dose 0 is the median delta of the no-change pairs),
- retake noise: 95th percentile of |delta| on no-change pairs, as % of the mean,
- the MDC that ``compare`` applies (:func:`mdc95` pooled over tones, :func:`tone_mdc` per
  skin tone, from the calibration no-change pairs),
- false-alarm rate on *other* no-change pairs (not the ones that set the MDC),
- crosstalk: a concern flagged although only another concern was changed, and how
  often ``compare``'s cautions (texture that may be pigment, pigment that may be
  redness) come with a crosstalk flag, a real change and a false alarm, and how often
  a change went unclaimed as within the other's,
- alignment corner error against the sidecar transform;
- with ``--same-settings N``: N more no-change pairs per split and tone whose follow-up
  is saved like the baseline, their retake noise, MDC (``same_settings`` in the
  calibration) and false alarms;
- with ``--decoded-colour N``: N more no-change pairs per split and tone whose photos
  are analysed from their decoded pixels, without the JPEG's own chroma (what a HEIC,
  WebP or colour-managed photo gets), their retake noise, MDC (``decoded_colour``)
  and false alarms.

Run: ``.venv/bin/python benchmarks/accuracy.py [--quick] [--tones light,dark] [--write-mdc]``.
``--write-mdc`` stores the calibration (with provenance) in ``analyzer/data/mdc.json``,
one per phantom scale (``--scale``; ``compare`` picks by the photos' resolution).
``--from-json`` reports (and writes) from a stored run's ``--json-out`` without running
it again; ``--seed-offset 10000`` photographs other pairs (a fresh replication).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GLOG_minloglevel", "2")

CONCERNS = ("texture", "redness", "pigmentation")
# Injected changes per concern: (dose label, signed dose for correlation, changes).
# Signed dose > 0 means "more of the concern" (the summary should rise).
DOSES = {
    "redness": [("low", 0.05, [("redness", 0.05)]), ("medium", 0.12, [("redness", 0.12)]),
                ("high", 0.25, [("redness", 0.25)]),
                # signed dose = mean added hemoglobin: 0.15 + 0.3 × patch layer (0.03–0.05 on skin)
                ("high", 0.16, [("redness", 0.15), ("redness_patchy", 0.3)])],
    "pigmentation": [("low", -0.15, [("spots", 0.85)]), ("medium", -0.35, [("spots", 0.65)]),
                     ("high", -0.6, [("spots", 0.4)]), ("high", 0.6, [("spots", 1.6)])],
    "texture": [("low", -0.15, [("roughness", 0.85), ("pores", 0.85), ("lines", 0.85)]),
                ("medium", -0.3, [("roughness", 0.7), ("pores", 0.7), ("lines", 0.7)]),
                ("high", -0.5, [("roughness", 0.5), ("pores", 0.5), ("lines", 0.5)]),
                ("high", 0.4, [("roughness", 1.4), ("pores", 1.4), ("lines", 1.4)])],
}
REGIONAL = {"redness": "left_cheek", "pigmentation": "right_cheek", "texture": "forehead"}


@dataclass
class Case:
    tone: str
    concern: str | None      # None = no change
    label: str               # dose label or "none"
    signed_dose: float
    changes: list = field(default_factory=list)
    region: str | None = None
    seed: int = 0
    split: str = "eval"      # "calib" no-change pairs set the MDC; "eval" ones test it
    settings: str = "mixed"  # "mixed": JPEG quality drawn per photo; "same": the follow-up saved as the baseline
    colour: str = "file"     # "file": colour read as intake reads it; "decoded": from the decoded pixels only


SAME_SETTINGS_SEEDS = 100_000   # seeds of the same-settings pairs start this far on (the others keep theirs)
DECODED_SEEDS = 200_000         # ... and those of the pairs read from decoded pixels this far


def build_cases(tones, n_nochange: int, regional: bool, quick: bool, first_seed: int = 1000,
                n_same: int = 0, settings: str = "mixed", n_decoded: int = 0) -> list[Case]:
    """The pairs of a run: per tone ``n_nochange`` no-change pairs per split, the dose
    cases (and single-region ones), all taken with ``settings`` (the run's design), then
    ``n_same`` extra no-change pairs per split saved alike (the follow-up at the
    baseline's JPEG quality and ISO), then ``n_decoded`` extra no-change pairs per split
    (taken as the design's) whose colour is read from the decoded pixels."""
    cases = []
    seed = first_seed
    for tone in tones:
        for split in ("calib", "eval"):
            for _ in range(n_nochange):
                cases.append(Case(tone, None, "none", 0.0, [], None, seed, split, settings))
                seed += 1
        for concern, doses in DOSES.items():
            for label, signed, changes in (doses[1:3] if quick else doses):
                cases.append(Case(tone, concern, label, signed, changes, None, seed, settings=settings))
                seed += 1
                if regional:
                    cases.append(Case(tone, concern, label, signed, changes, REGIONAL[concern], seed,
                                      settings=settings))
                    seed += 1
    seed = first_seed + SAME_SETTINGS_SEEDS
    for tone in tones:
        for split in ("calib", "eval"):
            for _ in range(n_same):
                cases.append(Case(tone, None, "none", 0.0, [], None, seed, split, "same"))
                seed += 1
    seed = first_seed + DECODED_SEEDS
    for tone in tones:
        for split in ("calib", "eval"):
            for _ in range(n_decoded):
                cases.append(Case(tone, None, "none", 0.0, [], None, seed, split, settings, "decoded"))
                seed += 1
    return cases


@lru_cache(maxsize=7)
def phantom_face(scale: float, seed: int, tone: str):
    """The phantom subject of a case (a worker reuses the 7 faces of a tone)."""
    from analyzer.phantom import TONES, make_face

    return make_face(scale=scale, seed=seed, tone=TONES[tone])


def run_case(case: Case, scale: float, strength: float) -> dict:
    """Photograph one pair as files and compare them as the CLI does (from the files)."""
    from dataclasses import replace

    from analyzer.compare import colour_from_decoded_pixels, compare_analysed, same_capture_settings
    from analyzer.intake import load_photo
    from analyzer.phantom import Capture, Change, photograph_file, true_transform
    from analyzer.pipeline import analyse_pixels, analyze

    face = phantom_face(scale, case.seed % 7, case.tone)
    rng = np.random.default_rng(case.seed)
    b_capture, f_capture = Capture.random(rng, strength), Capture.random(rng, strength)
    if case.settings == "same":   # the same camera settings: JPEG quality and ISO (noise level)
        f_capture = replace(f_capture, jpeg_quality=b_capture.jpeg_quality, noise=b_capture.noise)
    b_file, b_side = photograph_file(face, [], b_capture, seed=case.seed * 2)
    changes = [Change(k, d, case.region) for k, d in case.changes]
    f_file, f_side = photograph_file(face, changes, f_capture, seed=case.seed * 2 + 1)
    if case.colour == "decoded":   # the file's pixels, without its chroma coefficients
        baseline, followup = (analyse_pixels(p.pixels, p.info) for p in map(load_photo, (b_file, f_file)))
    else:
        baseline, followup = analyze(b_file), analyze(f_file)
    t0 = time.perf_counter()
    comparison, al = compare_analysed(baseline, followup, mdc=MDC_NONE)
    seconds = time.perf_counter() - t0
    truth = true_transform(f_side, b_side)
    h, w = baseline.photo.pixels.shape[:2]
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T

    def project(m):
        p = m @ corners
        return p[:2] / p[2]

    corner_err = float(np.linalg.norm(project(al.matrix) - project(truth), axis=0).mean())
    out = {"case": case.__dict__, "seconds": seconds, "corner_err": corner_err, "align_ok": al.ok,
           "delta": {k: comparison.delta[k]["value"] for k in CONCERNS},
           "baseline": {k: comparison.baseline["summary"].get(k) for k in CONCERNS},
           "ita_category": comparison.baseline["summary"].get("ita_category"),
           "same_settings": same_capture_settings(baseline.photo.info.to_dict(), followup.photo.info.to_dict()),
           "decoded_colour": colour_from_decoded_pixels(baseline.result.to_dict())
           or colour_from_decoded_pixels(followup.result.to_dict()),
           "px_per_mm": comparison.baseline["summary"].get("px_per_mm")}
    out["metric_deltas"] = {f"{name}@{region}": v["delta"]
                            for region, metrics in comparison.regions.items()
                            for name, v in metrics.items()}
    out["metric_baseline"] = {f"{name}@{region}": v["baseline"]
                              for region, metrics in comparison.regions.items()
                              for name, v in metrics.items()}
    # each photo's own values (its whole visible face): what a progress chart plots
    # for a visit without a trusted comparison
    b_own, f_own = own_values(baseline.result), own_values(followup.result)
    out["own_delta"] = {k: difference(f_own.get(k), b_own[k]) for k in CONCERNS}
    out["own_metric_deltas"] = {key: difference(f_own.get(key), v) for key, v in b_own.items()
                                if key not in CONCERNS}
    return out


def own_values(analysis) -> dict:
    """A photo's own summaries and ``metric@region`` values."""
    return {**{k: analysis.summary.get(k) for k in CONCERNS},
            **{f"{m['name']}@{m['region']}": m.get("value") for m in analysis.metrics}}


def difference(after, before):
    return None if after is None or before is None else float(after - before)


MDC_NONE = {"summary": {}, "metrics": {}, "provenance": {}}


def run_cases(cases: list[Case], scale: float, strength: float, workers: int) -> list[dict]:
    """:func:`run_case` for every case, in ``workers`` processes; with one, in this
    process (no fork: safe inside a process that already runs threads, e.g. a test run)."""
    jobs = (cases, [scale] * len(cases), [strength] * len(cases))
    if workers <= 1:
        return list(map(run_case, *jobs))
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(run_case, *jobs))


SUMMARY_METRIC = {"texture": "texture_index", "redness": "redness_index",
                  "pigmentation": "pigmentation_index"}
# Per-region stand-ins where a summary index is registered for the whole face only.
REGIONAL_FALLBACK = {"texture": "roughness_mid", "redness": "hemoglobin_density",
                     "pigmentation": "brown_spot_area"}


def regional_key(concern: str, region: str, deltas: dict) -> str:
    key = f"{SUMMARY_METRIC[concern]}@{region}"
    return key if key in deltas else f"{REGIONAL_FALLBACK[concern]}@{region}"


def mdc95(deltas) -> float:
    """Minimal detectable change from no-change (retake) deltas: the larger of
    1.96 × their root mean square and the 95th percentile of their size.

    1.96 × RMS is the clinical MDC95 (1.96 × √2 × SEM, SEM = SD of test-retest
    differences / √2; Weir 2005, J Strength Cond Res 19:231), with the RMS
    in place of the SD so that a systematic bias counts as noise.  It is
    steadier than a 95th percentile, which rests on the two or three largest
    of 40 deltas; the percentile guards against tails heavier than normal.
    On the 520-pair runs at both resolutions this took the worst skin tone's
    pigmentation false alarms from 15 % to 8 % with detection unchanged.
    """
    size = np.abs(np.asarray(deltas, dtype=float))
    return float(max(np.percentile(size, 95), 1.96 * np.sqrt(np.mean(size ** 2))))


def tone_mdc(deltas, confidence: float = 0.8) -> float:
    """MDC of one skin tone from its few (20–40) no-change deltas: the larger of 1.96 ×
    their RMS and an upper confidence bound of their 95th percentile.

    The bound is the smallest order statistic of |delta| that lies above the
    true 95th percentile with probability ``confidence`` (binomial, distribution
    free); with 40 pairs at 80 % it is the largest delta.  A plain percentile of
    40 deltas rests on the second and third largest: on the 520-pair runs of algorithm
    2026.11.29-10 dark-skin pigmentation then read 8 / 12 % false alarms on
    the evaluation pairs (8.2 / 4.1 px/mm), with the bound 2 / 2 %, detection
    and single-region detection unchanged (the pooled and per-metric MDCs,
    from 200 pairs, keep :func:`mdc95`).
    """
    from scipy.stats import binom

    size = np.sort(np.abs(np.asarray(deltas, dtype=float)))
    n = len(size)
    k = next((k for k in range(1, n + 1) if binom.cdf(k - 1, n, 0.95) >= confidence), n)
    return float(max(size[k - 1], 1.96 * np.sqrt(np.mean(size ** 2))))


def per_metric_mdc(calib: list[dict]) -> dict[str, float]:
    """:func:`mdc95` per metric@region over no-change pairs."""
    keys = set().union(*(r["metric_deltas"] for r in calib)) if calib else set()
    out = {}
    for key in sorted(keys):
        vals = [abs(r["metric_deltas"][key]) for r in calib if r["metric_deltas"].get(key) is not None]
        if len(vals) >= 5:
            out[key] = mdc95(vals)
    return out


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def clopper_pearson(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) confidence interval of a rate ``hits / n``."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = float(beta.ppf(a, hits, n - hits + 1)) if hits else 0.0
    hi = float(beta.ppf(1 - a, hits + 1, n - hits)) if hits < n else 1.0
    return lo, hi


MIN_TONE_PAIRS = 10   # an ITA° category gets its own MDC from this many calibration pairs
MIN_SAME_PAIRS = 40   # photos saved alike get their own calibration from this many pairs
# ... for an index (and its metric family) whose pooled MDC saved alike is below this share
# of the general one: only a clear gain is a gain (the per-tone MDC of 20–25 pairs saved
# alike is noisy, and taking the smaller of two noisy MDCs would lower the threshold by chance)
ALIKE_GAIN = 0.8
# Pairs whose colour is read from decoded pixels get their own calibration for an index whose
# pooled MDC it raises above this share of the general one (a clear loss, not sampling error).
DECODED_LOSS = 1.25


def alike_calibration(alike: list[dict], general: dict) -> dict:
    """The calibration of pairs saved alike (``same_settings``), kept for the indices whose
    pooled MDC it lowers clearly (below :data:`ALIKE_GAIN` × the general one)."""
    return variant_calibration(alike, general, "photos saved alike",
                               lambda mine, pooled: mine < ALIKE_GAIN * pooled)


def decoded_calibration(pairs: list[dict], general: dict) -> dict:
    """The calibration of pairs whose colour is read from their decoded pixels
    (``decoded_colour``), kept for the indices whose pooled MDC it raises clearly (above
    :data:`DECODED_LOSS` × the general one)."""
    return variant_calibration(pairs, general, "colour read from decoded pixels",
                               lambda mine, pooled: mine > DECODED_LOSS * pooled)


def variant_calibration(pairs: list[dict], general: dict, label: str, kept) -> dict:
    """The calibration of one kind of pair (:func:`summary_calibration` and per metric),
    for the indices (and their metric families) where ``kept(its pooled MDC, the general
    one)``."""
    from analyzer.metrics.registry import REGISTRY

    own = summary_calibration(pairs, label)
    keys = [k for k in CONCERNS if kept(own["summary"][k], general["summary"][k])]
    print(f"  {label}: own MDC for {', '.join(keys) or 'no index'}")
    metrics = per_metric_mdc(pairs)
    return {"summary": {k: own["summary"][k] for k in keys},
            "summary_by_tone": {c: {k: v[k] for k in keys} for c, v in own["summary_by_tone"].items()},
            "metrics": {key: v for key, v in metrics.items()
                        if key.split("@")[0] in REGISTRY and REGISTRY[key.split("@")[0]].family in keys},
            "pairs": len(pairs)}


def summary_calibration(calib: list[dict], label: str) -> dict:
    """Print and return the summaries' MDC from no-change pairs: pooled (``summary``,
    :func:`mdc95`) and per ITA° category of the baseline (``summary_by_tone``,
    :func:`tone_mdc`)."""
    mdc = {k: mdc95([r["delta"][k] for r in calib]) for k in CONCERNS}
    print(f"\nMDC, {label} (max of 95th pct |delta| and 1.96 RMS delta on {len(calib)} calibration "
          "no-change pairs, all tones):")
    for k in CONCERNS:
        means = [r["baseline"][k] for r in calib]
        print(f"  {k:13s} MDC {mdc[k]:.4f}   = {100 * mdc[k] / np.mean(means):.2f} % of mean {np.mean(means):.4f}")
    by_category: dict[str, dict] = {}
    for cat in sorted({r.get("ita_category") for r in calib} - {None}):
        rs = [r for r in calib if r.get("ita_category") == cat]
        if len(rs) >= MIN_TONE_PAIRS:
            by_category[cat] = {k: tone_mdc([r["delta"][k] for r in rs]) for k in CONCERNS}
        print(f"  baseline ITA° {cat:13s} {len(rs):3d} pairs: " + (", ".join(
            f"{k} {by_category[cat][k]:.4f}" for k in CONCERNS) if cat in by_category else "too few, nearest used"))
    return {"summary": mdc, "summary_by_tone": by_category}


def own_rows(pairs: list[dict]) -> list[dict]:
    """``pairs`` with each photo's own values as their deltas (pairs with every summary)."""
    return [{**r, "delta": r["own_delta"], "metric_deltas": r["own_metric_deltas"]} for r in pairs
            if r.get("own_delta") and all(r["own_delta"].get(k) is not None for k in CONCERNS)]


def own_photo_calibration(calib: list[dict], alike: list[dict] = (), from_pixels: list[dict] = ()) -> dict:
    """The MDC of each photo's own values (its whole visible face, not the skin a
    comparison finds in both photos): what a progress chart's band is at a visit
    without a trusted comparison (``analyzer.compare.charted_series``); from the
    pairs ``alike`` (saved alike) and ``from_pixels`` (colour read from decoded pixels)
    also their own (``same_settings``, ``decoded_colour``, as :func:`alike_calibration`,
    :func:`decoded_calibration`)."""
    rows = own_rows(calib)
    out = {**summary_calibration(rows, "each photo's own values"), "metrics": per_metric_mdc(rows)}
    if len(own_rows(alike)) >= MIN_SAME_PAIRS:
        out["same_settings"] = alike_calibration(own_rows(alike), out)
    if len(own_rows(from_pixels)) >= MIN_SAME_PAIRS:
        out["decoded_colour"] = decoded_calibration(own_rows(from_pixels), out)
    return out


def settings_of(r: dict) -> str:
    """How pair ``r`` was taken: ``"mixed"`` (JPEG quality and ISO drawn per photo) or
    ``"same"`` (the follow-up taken and saved like the baseline)."""
    return r["case"].get("settings", "mixed")


def mixed(r: dict) -> bool:
    """A pair taken with the JPEG quality and ISO drawn per photo (not saved alike)."""
    return settings_of(r) == "mixed"


def decoded(r: dict) -> bool:
    """A pair of ``--decoded-colour``: its colour read from the decoded pixels."""
    return r["case"].get("colour") == "decoded"


def run_calibration(results: list[dict]) -> dict:
    """The MDC calibration from the calib split: of the summaries, pooled (``summary``)
    and per ITA° category of the baseline (``summary_by_tone``) from the pairs with JPEG
    quality and ISO drawn per photo (a few of them alike by chance), and per metric and
    region (``metrics``); the same from the pairs saved alike (``same_settings``: the
    extra ones of ``--same-settings`` of both splits, and those of the calib split alike
    by chance) and from each photo's own values (``own_photo``).

    A tone's MDC of photos saved alike from 40 pairs was too uncertain: on the -17 run
    at 4.1 px/mm, brown skin's redness read 0.73 % at most over its 40 calib pairs and a
    95th percentile of 1.07 % over its 40 eval pairs.  So the extra pairs of both splits
    calibrate it, and a run taken alike (``--settings same --judge-shipped``, fresh
    seeds) tests it.
    """
    nochange = [r for r in results if r["case"]["concern"] is None and not decoded(r)]
    calib = [r for r in nochange if r["case"]["split"] == "calib"]
    calib_mixed = [r for r in calib if mixed(r)]
    calibration = {**summary_calibration(calib_mixed, "JPEG quality drawn per photo"),
                   "metrics": per_metric_mdc(calib_mixed)}
    alike = [r for r in nochange if r.get("same_settings") and (r["case"]["split"] == "calib" or not mixed(r))]
    if len(alike) >= MIN_SAME_PAIRS:
        calibration["same_settings"] = alike_calibration(alike, calibration)
    from_pixels = [r for r in results if decoded(r) and r["case"]["split"] == "calib"]
    if len(from_pixels) >= MIN_SAME_PAIRS:
        calibration["decoded_colour"] = decoded_calibration(from_pixels, calibration)
    if own_rows(calib_mixed):
        calibration["own_photo"] = own_photo_calibration(calib_mixed, alike, from_pixels)
    return calibration


def report(results: list[dict], tones, settings: str = "mixed", calibration: dict | None = None) -> dict:
    """Print the tables of the run's design (its pairs taken with ``settings``) and return
    the calibration they are judged with: :func:`run_calibration` (the calib split sets
    it, the eval split tests it), or ``calibration`` when given (e.g. the shipped one;
    every no-change pair then tests it).  ``compare`` applies it
    (``analyzer.compare.summary_mdc``, ``metric_mdc``, ``own_photo_mdc``) and so do the
    tables."""
    from analyzer.compare import summary_mdc

    own = calibration is None
    calibration = run_calibration(results) if own else calibration

    def design(r):
        return settings_of(r) == settings and not decoded(r)

    def evaluates(r):  # a no-change pair that tests the calibration
        return r["case"]["concern"] is None and (not own or r["case"]["split"] == "eval")

    by_tone = {t: [r for r in results if r["case"]["tone"] == t and design(r)] for t in tones}

    def limit(r, k):  # the MDC compare applies to this pair
        return summary_mdc(calibration, k, r.get("ita_category"), bool(r.get("same_settings")),
                           decoded_colour=bool(r.get("decoded_colour")))[0]

    judged_by_id = {}

    def judged(r):
        if id(r) not in judged_by_id:
            judged_by_id[id(r)] = judge_pair(r, limit)
        return judged_by_id[id(r)]

    def flagged(r, k):
        return bool(judged(r)[k]["significant"])
    header = f"{'tone':13s}{'concern':13s}{'sign':>7s}{'detect':>8s}{'spearman':>9s}{'noise%':>8s}{'falarm':>8s}{'xtalk':>7s}"
    print("\nwhole-face summary deltas\n" + header)
    for tone, rs in by_tone.items():
        nochange = [r for r in rs if r["case"]["concern"] is None]
        evaluation = [r for r in nochange if evaluates(r)]
        for k in CONCERNS:
            changed = [r for r in rs if r["case"]["concern"] == k and r["case"]["region"] is None]
            sign = np.mean([np.sign(r["delta"][k]) == np.sign(r["case"]["signed_dose"]) for r in changed])
            strong = [r for r in changed if r["case"]["label"] in ("medium", "high")]
            detect = np.mean([np.sign(r["delta"][k]) == np.sign(r["case"]["signed_dose"])
                              and flagged(r, k) for r in strong]) if strong else float("nan")
            # dose-response curve: one point per dose level, dose 0 = the median no-change delta
            rho = spearman([0.0] + [r["case"]["signed_dose"] for r in changed],
                           [float(np.median([r["delta"][k] for r in evaluation]))]
                           + [r["delta"][k] for r in changed])
            p95 = np.percentile([abs(r["delta"][k]) for r in nochange], 95)
            noise = 100 * p95 / np.mean([r["baseline"][k] for r in nochange])
            falarm = np.mean([flagged(r, k) for r in evaluation])
            others = [r for r in rs if r["case"]["concern"] not in (None, k) and r["case"]["region"] is None]
            xtalk = np.mean([flagged(r, k) for r in others]) if others else float("nan")
            print(f"{tone:13s}{k:13s}{100 * sign:6.0f}%{100 * detect:7.0f}%{rho:9.2f}{noise:7.2f}%"
                  f"{100 * falarm:7.0f}%{100 * xtalk:6.0f}%")
    caution_table([r for rs in by_tone.values() for r in rs if r["case"]["region"] is None], judged)
    if settings == "mixed":
        same_settings_table(results, tones, limit, flagged)
    decoded_table(results, tones, limit, flagged)
    pooled = [r for r in results if evaluates(r) and design(r)]
    if pooled:
        print("\nfalse alarms pooled over tones (Clopper-Pearson 95 % interval; one tone's cell "
              "rests on a fifth of these pairs):")
        for k in CONCERNS:
            hits = sum(flagged(r, k) for r in pooled)
            lo, hi = clopper_pearson(hits, len(pooled))
            print(f"  {k:13s} {hits}/{len(pooled)} = {100 * hits / len(pooled):.1f} %"
                  f"   ({100 * lo:.1f}–{100 * hi:.1f} %)")
    regional = [r for r in results if r["case"]["region"]]
    if regional:
        print("\nsingle-region changes: the changed region's summary metric has the injected sign "
              "and exceeds its MDC / the whole-face summary exceeds its MDC")
        for k in CONCERNS:
            rs = [r for r in regional if r["case"]["concern"] == k]
            key_of = lambda r: regional_key(k, r["case"]["region"], r["metric_deltas"])  # noqa: E731
            hit = [np.sign(r["metric_deltas"].get(key_of(r)) or 0) == np.sign(r["case"]["signed_dose"])
                   and region_flagged(r, key_of(r), calibration) for r in rs if r["case"]["label"] in ("medium", "high")]
            whole = [flagged(r, k) for r in rs]
            print(f"  {k:13s} regional detected {100 * np.mean(hit):5.0f} %   whole-face flagged "
                  f"{100 * np.mean(whole):5.0f} %   ({len(rs)} pairs)")
    errs = np.array([r["corner_err"] for r in results])
    bad = [r for r in results if r["corner_err"] > 3 and r["align_ok"]]
    print(f"\nalignment corner error vs sidecar: median {np.median(errs):.3f} px, p95 "
          f"{np.percentile(errs, 95):.3f} px, silent failures (>3 px and ok) {len(bad)}")
    print(f"time per pair (compare only): median {np.median([r['seconds'] for r in results]):.2f} s")
    return calibration


def judge_pair(r: dict, limit) -> dict:
    """The summary changes of pair ``r`` as ``compare`` reports them, given the MDC
    ``limit(r, key)`` it applies (``compare.summary_change``, ``judge_cross_effects``)."""
    from analyzer.compare import judge_cross_effects, summary_change

    d = {k: summary_change(r["delta"][k], r["baseline"][k], limit(r, k)) for k in CONCERNS}
    judge_cross_effects(d)
    return d


def region_flagged(r: dict, key: str, calibration: dict) -> bool:
    """Whether ``compare`` would flag the change of ``metric@region`` ``key`` in pair ``r``
    (its own MDC; a texture index or hemoglobin density beyond its region's pigment change,
    ``compare.judge_region_cross_effects``)."""
    from analyzer.compare import judge_region_cross_effects, metric_mdc

    region = key.split("@")[1]
    changes = {}
    for name in {key.split("@")[0], "texture_index", "pigmentation_index"}:
        k = f"{name}@{region}"
        value, limit = r["metric_deltas"].get(k), metric_mdc(calibration, k, bool(r.get("same_settings")),
                                                             decoded_colour=bool(r.get("decoded_colour")))
        if value is not None:
            changes[name] = {"baseline": r["metric_baseline"].get(k), "delta": value, "mdc": limit,
                             "significant": limit is not None and abs(value) > limit}
    judge_region_cross_effects(changes)
    return bool(changes.get(key.split("@")[0], {}).get("significant"))


def caution_table(results: list[dict], judged) -> None:
    """How often ``compare``'s cautions (a texture change that may be pigment, a pigment
    change that may be redness) come with a crosstalk flag, a real change and a false alarm,
    and how often a change went unclaimed because the other of texture and pigmentation
    explains it (``compare.judge_within_other``)."""
    from analyzer.compare import BEYOND

    kinds = {"crosstalk from the other concern": lambda c, k, other: c["concern"] == other,
             "a medium or high dose of its own": lambda c, k, other: (c["concern"] == k and c["label"]
                                                                       in ("medium", "high")),
             "a no-change pair": lambda c, k, other: c["concern"] is None and c["split"] == "eval"}
    print("\ncautions on whole-face pairs where the index was flagged: " + " / ".join(kinds))
    for k, other, note in (("texture", "pigmentation", "pigment"), ("pigmentation", "redness", "redness"),
                           ("pigmentation", "texture", "texture"), ("redness", "pigmentation", "pigment")):
        # k: the index flagged; other: the concern its caution says part of the change may be
        cells = []
        for kind in kinds.values():
            ds = [judged(r)[k] for r in results if kind(r["case"], k, other)]
            flagged = [d for d in ds if d["significant"]]
            cell = f"{sum(d.get('caution') == note for d in flagged)}/{len(flagged)}"
            if other in BEYOND:
                cell += f" (+{sum(d['status'] == BEYOND[other] for d in ds)} within the {other} change)"
            cells.append(cell)
        print(f"  {k:13s} (may be {other}): " + " / ".join(cells))


def same_settings_table(results: list[dict], tones, limit, flagged) -> None:
    """Retake noise and false alarms of the no-change pairs saved alike (``--same-settings``;
    their false alarms are in-sample: these pairs calibrate the MDC of photos saved alike)."""
    variant_table([r for r in results if r["case"]["concern"] is None and not mixed(r) and not decoded(r)],
                  tones, limit, flagged,
                  "no-change pairs saved alike (follow-up at the baseline's JPEG quality): retake noise "
                  "(95th pct |delta|, % of mean), the MDC compare applies (% of mean), false alarms "
                  "(in-sample: these pairs set that MDC; --settings same --judge-shipped tests it)")


def decoded_table(results: list[dict], tones, limit, flagged) -> None:
    """Retake noise and false alarms of the no-change pairs whose colour is read from the
    decoded pixels (``--decoded-colour``; false alarms on their eval split)."""
    variant_table([r for r in results if r["case"]["concern"] is None and decoded(r)], tones, limit, flagged,
                  "no-change pairs with colour read from the decoded pixels (not the JPEG's chroma): "
                  "retake noise (95th pct |delta|, % of mean), the MDC compare applies (% of mean), "
                  "false alarms (eval split)")


def variant_table(same: list[dict], tones, limit, flagged, title: str) -> None:
    """Per tone and index: retake noise, applied MDC and false alarms of no-change pairs ``same``."""
    if not same:
        return
    print("\n" + title)
    print(f"{'tone':13s}" + "".join(f"{k:>26s}" for k in CONCERNS))
    for tone in tones:
        rs = [r for r in same if r["case"]["tone"] == tone]
        if not rs:
            continue
        cells = []
        for k in CONCERNS:
            mean = np.mean([r["baseline"][k] for r in rs])
            noise = 100 * np.percentile([abs(r["delta"][k]) for r in rs], 95) / mean
            applied = 100 * np.median([limit(r, k) for r in rs]) / mean
            evaluation = [r for r in rs if r["case"]["split"] == "eval"]
            falarm = np.mean([flagged(r, k) for r in evaluation])
            cells.append(f"{noise:6.2f}% {applied:6.2f}% {100 * falarm:5.0f}%")
        print(f"{tone:13s}" + "".join(f"{c:>26s}" for c in cells))
    evaluation = [r for r in same if r["case"]["split"] == "eval"]
    if evaluation:
        print("  false alarms pooled over tones: " + ", ".join(
            f"{k} {sum(flagged(r, k) for r in evaluation)}/{len(evaluation)}"
            for k in CONCERNS))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tones", default="light,intermediate,tan,brown,dark")
    parser.add_argument("--nochange", type=int, default=8, help="no-change pairs per split and tone")
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--strength", type=float, default=0.7, help="retake variance strength")
    parser.add_argument("--same-settings", type=int, default=0,
                        help="extra no-change pairs per split and tone saved alike (the follow-up "
                             "at the baseline's JPEG quality): their own MDC")
    parser.add_argument("--decoded-colour", type=int, default=0,
                        help="extra no-change pairs per split and tone whose colour is read from the "
                             "decoded pixels, not the JPEG's chroma (as for HEIC, WebP, colour-managed "
                             "photos): their own MDC")
    parser.add_argument("--settings", choices=("mixed", "same"), default="mixed",
                        help="how every pair of the design is taken: mixed (JPEG quality and ISO "
                             "drawn per photo) or same (the follow-up taken and saved like the "
                             "baseline, as README's 'Photographing for comparison' asks)")
    parser.add_argument("--judge-shipped", action="store_true",
                        help="judge with the shipped calibration (analyzer/data/mdc.json at this "
                             "resolution, as compare does) instead of the run's calib split; "
                             "every no-change pair then tests it")
    parser.add_argument("--quick", action="store_true", help="fewer doses, no regional cases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-mdc", action="store_true")
    parser.add_argument("--json-out", help="write every pair's raw result here")
    parser.add_argument("--from-json", help="report (and --write-mdc) from a run's --json-out "
                        "instead of running the pairs again; pass that run's --scale and --tones")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="other pairs than the shipped calibration's (a fresh replication; "
                             "with --from-json: the stored run's)")
    args = parser.parse_args(argv)
    if args.write_mdc and (args.judge_shipped or args.settings != "mixed"):
        parser.error("--write-mdc calibrates from a run with --settings mixed and its own calib split")
    tones = args.tones.split(",")
    t0 = time.perf_counter()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        print(f"{len(results)} pairs from {args.from_json}")
    else:
        cases = build_cases(tones, args.nochange, regional=not args.quick, quick=args.quick,
                            first_seed=1000 + args.seed_offset, n_same=args.same_settings,
                            settings=args.settings, n_decoded=args.decoded_colour)
        print(f"{len(cases)} pairs, tones {tones}, scale {args.scale}, retake strength {args.strength}")
        results = run_cases(cases, args.scale, args.strength, args.workers)
        if args.json_out:   # first: a report that fails loses no photographed pair
            Path(args.json_out).write_text(json.dumps(results, indent=1))
    shipped = None
    if args.judge_shipped:
        from analyzer.compare import load_mdc

        shipped = load_mdc(px_per_mm=float(np.median([r["px_per_mm"] for r in results])))
        print(f"judged with the shipped calibration at {shipped['provenance'].get('px_per_mm')} px/mm "
              f"(algorithm {shipped['provenance'].get('algorithm_version')})")
    if shipped is None and not any(r["case"]["concern"] is None and r["case"]["split"] == "calib"
                                   and mixed(r) and not decoded(r) for r in results):
        print("no calibration no-change pairs (--nochange 0): nothing to judge with; "
              "the pairs are kept with --json-out for a later --from-json")
        return 0
    calibration = report(results, tones, args.settings, shipped)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.write_mdc:
        write_mdc(results, calibration, args)
    return 0


def _command(args, calib) -> str:
    """The command that photographs this calibration's pairs (for a ``--from-json``
    re-derivation: the run that stored them, whose seeds are the defaults)."""
    if getattr(args, "from_json", None):
        tones = max(1, len(args.tones.split(",")))
        from_pixels = sum(map(decoded, calib))
        per_tone = (sum(map(mixed, calib)) - from_pixels) // tones
        same = (len(calib) - sum(map(mixed, calib))) // tones
        return (f"benchmarks/accuracy.py --scale {args.scale:g} --nochange {per_tone} --write-mdc"
                + (f" --same-settings {same}" if same else "")
                + (f" --decoded-colour {from_pixels // tones}" if from_pixels else "")
                + (f" --seed-offset {args.seed_offset}" if getattr(args, "seed_offset", 0) else ""))
    return "benchmarks/accuracy.py " + " ".join(
        a for a in sys.argv[1:] if a != "--json-out" and a != args.json_out)


def write_mdc(results, calibration, args) -> None:
    """Store this run's calibration in ``analyzer/data/mdc.json``, replacing the one
    measured at the same phantom scale and keeping the others (one per resolution)."""
    from analyzer.compare import MDC_PATH, read_calibrations
    from analyzer.version import ALGORITHM_VERSION

    calib = [r for r in results if r["case"]["concern"] is None and r["case"]["split"] == "calib"]
    calibration = {
        **calibration,
        "provenance": {
            "algorithm_version": ALGORITHM_VERSION,
            "command": _command(args, calib),
            "from_json": bool(getattr(args, "from_json", None)),
            "pairs": sum(not decoded(r) for r in calib), "tones": args.tones, "scale": args.scale,
            "pairs_saved_alike": calibration.get("same_settings", {}).get("pairs", 0),
            "pairs_decoded_colour": calibration.get("decoded_colour", {}).get("pairs", 0),
            "px_per_mm": round(float(np.median([r["px_per_mm"] for r in calib])), 2),
            "retake_strength": args.strength,
            "statistic": "max(95th percentile of |delta|, 1.96 x RMS delta); per skin tone: "
                         "max(80 % upper confidence bound of the 95th percentile, 1.96 x RMS delta); "
                         "pairs saved alike (same format, JPEG quality, colour resolution, camera) "
                         "also calibrated on their own (same_settings), for the indices whose pooled "
                         "MDC that lowers below ALIKE_GAIN x the general one, used where smaller; "
                         "pairs whose colour is read from decoded pixels (not the JPEG's chroma) "
                         "calibrated on their own (decoded_colour), for the indices whose pooled MDC "
                         "that raises above DECODED_LOSS x the general one, used where larger; "
                         "own_photo: the same statistics of each photo's own values (whole visible "
                         "face; pairs saved alike too), the band of a chart point without a trusted "
                         "comparison",
        },
    }
    kept = [c for c in read_calibrations(MDC_PATH) if c["provenance"].get("scale") != args.scale]
    calibrations = sorted(kept + [calibration], key=lambda c: c["provenance"].get("px_per_mm", 0.0))
    MDC_PATH.write_text(json.dumps({"calibrations": calibrations}, indent=1))
    print(f"wrote {MDC_PATH} (calibrations at {[c['provenance'].get('px_per_mm') for c in calibrations]} px/mm)")


if __name__ == "__main__":
    sys.exit(main())
