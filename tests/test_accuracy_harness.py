"""A small version of benchmarks/accuracy.py: known changes must come back out."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_small_harness_recovers_injected_redness_and_calibrates(capsys):
    import accuracy

    cases = [accuracy.Case("light", None, "none", 0.0, [], None, 900 + i, "calib") for i in range(3)]
    cases += [accuracy.Case("light", "redness", "high", 0.25, [("redness", 0.25)], None, 950),
              accuracy.Case("light", "redness", "high", 0.25, [("redness", 0.25)], "left_cheek", 951)]
    results = [accuracy.run_case(c, 4.0, 0.5) for c in cases]
    calibration = accuracy.report(results, ["light"])
    mdc = calibration["summary"]
    printed = capsys.readouterr().out
    assert "whole-face summary deltas" in printed and "alignment corner error" in printed
    nochange = results[:3]
    whole, regional = results[3], results[4]
    # whole-face redness: the right sign and far above the no-change spread
    assert whole["delta"]["redness"] > 3 * max(abs(r["delta"]["redness"]) for r in nochange)
    assert whole["delta"]["redness"] > mdc["redness"]
    # 3 calibration pairs are too few for a per-tone MDC: the pooled one is used
    assert calibration["summary_by_tone"] == {} and nochange[0]["ita_category"] in ("light", "very light")
    # a left-cheek change shows in the left cheek, much more than in the right cheek
    d = regional["metric_deltas"]
    assert d["hemoglobin_density@left_cheek"] > 5 * abs(d["hemoglobin_density@right_cheek"])
    # alignment against the sidecar transform
    assert np.median([r["corner_err"] for r in results]) < 0.5
    assert all(r["align_ok"] for r in results)
    # each photo's own values are recorded and calibrated too (the band of an uncompared chart point)
    assert whole["own_delta"]["redness"] > 3 * max(abs(r["own_delta"]["redness"]) for r in nochange)
    assert regional["own_metric_deltas"]["hemoglobin_density@left_cheek"] > 0.5 * d["hemoglobin_density@left_cheek"]
    own = calibration["own_photo"]
    assert own["summary"]["redness"] == accuracy.mdc95([r["own_delta"]["redness"] for r in nochange])
    per_metric = accuracy.per_metric_mdc(nochange * 2)  # needs ≥ 5 values per key
    assert per_metric["hemoglobin_density@left_cheek"] >= 0


def test_write_mdc_keeps_one_calibration_per_scale(tmp_path, monkeypatch):
    """A run replaces the calibration of its own scale and keeps the others, sorted by px/mm."""
    from types import SimpleNamespace

    import accuracy

    import analyzer.compare as compare

    monkeypatch.setattr(compare, "MDC_PATH", tmp_path / "mdc.json")

    def run(scale, px_per_mm, texture):
        results = [{"case": {"concern": None, "split": "calib"}, "px_per_mm": px_per_mm,
                    "metric_deltas": {"texture_index@whole_face": 0.1 * i}} for i in range(5)]
        args = SimpleNamespace(tones="light", scale=scale, strength=0.7, json_out=None)
        calibration = {"summary": {"texture": texture}, "summary_by_tone": {},
                       "metrics": accuracy.per_metric_mdc(results)}
        accuracy.write_mdc(results, calibration, args)

    run(12.0, 8.2, 0.4)
    run(6.0, 4.1, 0.9)
    run(12.0, 8.2, 0.3)   # the 8.2 px/mm calibration again: replaced, not added
    stored = compare.read_calibrations(tmp_path / "mdc.json")
    assert [c["provenance"]["px_per_mm"] for c in stored] == [4.1, 8.2]
    assert [c["summary"]["texture"] for c in stored] == [0.9, 0.3]
    assert stored[0]["metrics"]["texture_index@whole_face"] > 0
    assert compare.load_mdc(tmp_path / "mdc.json", px_per_mm=9.0)["summary"]["texture"] == 0.3


def test_mdc95_is_the_clinical_mdc_with_a_tail_guard():
    """Normal retake deltas: 1.96 × RMS (bias counts as noise); heavy tails: their 95th percentile."""
    import accuracy

    rng = np.random.default_rng(3)
    normal = rng.normal(0.0, 2.0, 20000)
    assert accuracy.mdc95(normal) == pytest.approx(1.96 * 2.0, rel=0.03)
    assert accuracy.mdc95(normal + 1.0) == pytest.approx(1.96 * np.sqrt(5.0), rel=0.03)
    rare_outliers = np.r_[np.full(94, 0.1), np.full(6, -10.0)]   # RMS 2.45, 1.96 × RMS 4.8
    assert accuracy.mdc95(rare_outliers) == pytest.approx(10.0)


def test_clopper_pearson_interval():
    """Exact binomial interval: 2 of 40 is 0.6–16.9 %; none of 200 is at most 1.8 %."""
    import accuracy

    lo, hi = accuracy.clopper_pearson(2, 40)
    assert lo == pytest.approx(0.0061, abs=1e-4) and hi == pytest.approx(0.1692, abs=1e-4)
    assert accuracy.clopper_pearson(0, 200) == (0.0, pytest.approx(0.0183, abs=1e-4))
    assert accuracy.clopper_pearson(40, 40)[1] == 1.0


def test_tone_mdc_bounds_the_95th_percentile_of_few_pairs():
    """A skin tone's MDC from 40 pairs is the largest delta (an 80 % upper bound of the
    95th percentile), not the second largest; 1.96 × RMS where that is larger; the
    pooled MDC (200 pairs) stays the plain percentile."""
    import accuracy

    deltas = np.r_[np.zeros(36), 1.0, 1.0, 2.0, -3.0]  # 40 pairs, one outlier
    assert accuracy.tone_mdc(deltas) == 3.0
    assert accuracy.mdc95(deltas) == pytest.approx(max(np.percentile(np.abs(deltas), 95),
                                                       1.96 * np.sqrt(np.mean(deltas ** 2))))
    assert accuracy.mdc95(deltas) < 3.0
    steady = np.full(40, 0.5)
    assert accuracy.tone_mdc(steady) == pytest.approx(1.96 * 0.5)
    many = np.r_[np.zeros(190), np.linspace(0.1, 1.0, 10)]
    assert accuracy.tone_mdc(many) < many.max()  # with 200 pairs the bound is below the largest


def test_pairs_saved_alike_are_calibrated_apart(capsys):
    """Pairs saved alike get their own MDC (the extra ones of both splits), those saved
    differently keep theirs (the calib split); the same-settings table reports the alike
    pairs against the MDC compare would apply."""
    import accuracy

    rng = np.random.default_rng(7)

    def pair(split, settings, alike, spread):
        # redness (and its metric family) is quieter saved alike, texture is not
        d, t = rng.normal(0.0, spread), rng.normal(0.0, 1.0)
        # each photo's own values vary twice as much, saved alike or not
        own = {"texture": 2 * rng.normal(0.0, 1.0), "redness": 2 * rng.normal(0.0, spread),
               "pigmentation": 2 * rng.normal(0.0, spread)}
        return {"case": {"tone": "dark", "concern": None, "label": "none", "signed_dose": 0.0,
                         "region": None, "split": split, "settings": settings},
                "delta": {"texture": t, "redness": d, "pigmentation": d}, "own_delta": own,
                "own_metric_deltas": {"hemoglobin_density@left_cheek": own["redness"]},
                "baseline": {k: 10.0 for k in accuracy.CONCERNS},
                "ita_category": "dark", "same_settings": alike, "corner_err": 0.1, "align_ok": True,
                "seconds": 1.0, "metric_deltas": {"hemoglobin_density@left_cheek": d, "texture_index@forehead": t},
                "px_per_mm": 4.1}

    results = ([pair(s, "mixed", False, 1.0) for s in ("calib", "eval") for _ in range(50)]
               + [pair(s, "same", True, 0.1) for s in ("calib", "eval") for _ in range(45)])
    calibration = accuracy.report(results, ["dark"])
    general, alike = calibration["summary"]["redness"], calibration["same_settings"]["summary"]["redness"]
    assert 1.5 < general < 3.0 and 0.15 < alike < 0.3
    assert calibration["same_settings"]["pairs"] == 90   # the extra pairs of both splits
    # an index whose noise does not fall when saved alike keeps only the general MDC
    assert "texture" not in calibration["same_settings"]["summary"]
    assert "texture" not in calibration["same_settings"]["summary_by_tone"]["dark"]
    assert list(calibration["same_settings"]["metrics"]) == ["hemoglobin_density@left_cheek"]
    # own values (a chart point without a trusted comparison): the same split
    own = calibration["own_photo"]
    assert 3.0 < own["summary"]["redness"] < 6.0 and 0.3 < own["same_settings"]["summary"]["redness"] < 0.6
    assert "texture" not in own["same_settings"]["summary"] and 3.0 < own["summary"]["texture"] < 6.0
    assert list(own["same_settings"]["metrics"]) == ["hemoglobin_density@left_cheek"]
    printed = capsys.readouterr().out
    assert "photos saved alike" in printed and "no-change pairs saved alike" in printed
    row = next(line for line in printed.splitlines() if line.startswith("dark") and "%" in line
               and line.count("%") == 9)
    # the alike pairs' false alarms are judged against their own (tone) MDC: a few %, not 0 or 100
    rates = [float(x.rstrip("%")) for x in row.split()[1:]][2::3]
    assert all(r <= 15 for r in rates)
    too_few = [r for r in results if r["case"]["settings"] == "mixed"]
    assert "same_settings" not in accuracy.report(too_few, ["dark"])
    assert "same_settings" not in accuracy.report(too_few, ["dark"])["own_photo"]


@pytest.mark.slow
def test_saved_alike_benchmark_detects_a_clear_redness_change(capsys):
    """benchmarks/saved_alike.py end to end on two small pairs: a clear change (0.05 OD
    hemoglobin) is detected however the photos were saved, and the pair saved alike is
    judged by the MDC of photos saved alike."""
    import saved_alike

    assert saved_alike.main(["--scale", "4", "--pairs", "1", "--tones", "light", "--doses", "0.05",
                             "--workers", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "OD  saved" in line]
    assert len(lines) == 2 and all("detected 100 %" in line for line in lines)
    assert lines[1].endswith("(1 pairs; 1 saved alike)") and lines[0].endswith("(1 pairs; 0 saved alike)")


def test_noise_sources_vary_one_capture_factor_at_a_time():
    """benchmarks/noise_sources.py: each row changes only its factor against the reference
    capture, and every factor a retake varies has a row."""
    import dataclasses

    import noise_sources
    from analyzer.phantom import Capture

    rng = np.random.default_rng(3)
    drawn = Capture.random(rng, 0.7)
    reference = Capture(**noise_sources.REFERENCE)
    varied = set()
    for factor, fields in noise_sources.FACTORS.items():
        capture = noise_sources.factor_capture(fields, drawn)
        if fields is None:
            assert capture == drawn
            continue
        differs = {f.name for f in dataclasses.fields(Capture)
                   if getattr(capture, f.name) != getattr(reference, f.name)}
        assert differs == set(fields), factor
        varied |= differs
    retake = {f.name for f in dataclasses.fields(Capture)
              if getattr(drawn, f.name) != getattr(Capture(), f.name)}
    assert retake <= varied


def test_caution_table_counts_cautions_on_flagged_pairs(capsys):
    """The harness counts compare's cautions on crosstalk flags, real changes and false alarms."""
    import accuracy

    def pair(concern, label, split, texture, redness, pigmentation):
        return {"case": {"concern": concern, "label": label, "split": split, "region": None},
                "delta": {"texture": texture, "redness": redness, "pigmentation": pigmentation},
                "baseline": {k: 100.0 for k in accuracy.CONCERNS}}

    results = [pair("pigmentation", "high", "eval", -3.0, 0.0, -20.0),   # within the pigment change
               pair("pigmentation", "high", "eval", -25.0, 0.0, -20.0),  # beyond it: cautioned
               pair("pigmentation", "low", "eval", 3.0, 0.0, -8.0),      # crosstalk the other way
               pair("texture", "medium", "eval", -4.0, 0.0, 0.5),        # a real change
               pair("texture", "high", "eval", -10.0, 0.0, -2.0),        # pigment within it
               pair("redness", "high", "eval", 0.0, 40.0, 4.0),          # pigment read from redness
               pair(None, "none", "eval", 2.0, 0.0, 0.0),                # a false alarm
               pair(None, "none", "calib", 2.0, 0.0, 0.0)]               # not evaluated
    accuracy.caution_table(results, lambda r: accuracy.judge_pair(r, lambda r, k: 1.0))
    out = capsys.readouterr().out
    assert ("texture       (may be pigmentation): 1/2 (+1 within the pigmentation change) / "
            "1/2 (+0 within the pigmentation change) / 0/1 (+0 within the pigmentation change)") in out
    assert ("pigmentation  (may be texture): 0/0 (+1 within the texture change) / "
            "0/2 (+0 within the texture change) / 0/0 (+0 within the texture change)") in out
    assert "pigmentation  (may be redness): 1/1 / 0/2 / 0/0" in out   # a low dose is not counted


def test_a_run_taken_alike_judged_with_a_given_calibration(capsys):
    """``--settings same --judge-shipped``: every pair of the design is taken alike, and
    judged with the calibration given (as compare judges with the shipped one), so every
    no-change pair, of either split, tests it; no calibration is derived from the run."""
    import accuracy

    cases = accuracy.build_cases(["dark"], 2, regional=True, quick=True, settings="same")
    assert {c.settings for c in cases} == {"same"} and sum(c.region is not None for c in cases) == 6

    def pair(split, delta):
        return {"case": {"tone": "dark", "concern": None, "label": "none", "signed_dose": 0.0,
                         "region": None, "split": split, "settings": "same"},
                "delta": {"texture": delta, "redness": -delta, "pigmentation": 0.0},
                "baseline": {k: 10.0 for k in accuracy.CONCERNS},
                "ita_category": "dark", "same_settings": True, "corner_err": 0.1, "align_ok": True,
                "seconds": 1.0, "metric_deltas": {}, "px_per_mm": 4.1}

    # 3 of 10 no-change pairs beyond the given MDC: one of them in the calib split
    results = [pair("calib", 0.5), pair("calib", 0.1)] + [pair("eval", d) for d in (0.6, 0.7, *[0.1] * 6)]
    given = {"summary": {k: 1.0 for k in accuracy.CONCERNS}, "summary_by_tone": {}, "metrics": {},
             "same_settings": {"summary": {k: 0.4 for k in accuracy.CONCERNS}, "summary_by_tone": {},
                               "metrics": {}}}
    assert accuracy.report(results, ["dark"], "same", given) is given
    out = capsys.readouterr().out
    assert "MDC, JPEG quality drawn per photo" not in out and "no-change pairs saved alike" not in out
    assert "texture       3/10 = 30.0 %" in out and "redness       3/10 = 30.0 %" in out
    assert "pigmentation  0/10 = 0.0 %" in out
    row = next(line for line in out.splitlines() if line.startswith("dark") and "texture" in line)
    assert row.split()[-2] == "30%"


def test_pairs_read_from_decoded_pixels_calibrate_only_what_they_clearly_raise(capsys):
    """``--decoded-colour`` pairs get their own calibration for an index whose MDC they raise
    by more than DECODED_LOSS (here redness, 4×), stay out of the general calibration and of
    the design's tables, and are judged with it (their own false-alarm table)."""
    import accuracy

    rng = np.random.default_rng(5)

    def pair(i, split, colour, redness):
        return {"case": {"tone": "tan", "concern": None, "label": "none", "signed_dose": 0.0, "changes": [],
                         "region": None, "seed": i, "split": split, "settings": "mixed", "colour": colour},
                "delta": {"texture": rng.normal(0, 0.1), "redness": rng.normal(0, redness),
                          "pigmentation": rng.normal(0, 0.1)},
                "baseline": {"texture": 20.0, "redness": 0.3, "pigmentation": 10.0},
                "ita_category": "tan", "same_settings": False, "decoded_colour": colour == "decoded",
                "px_per_mm": 4.1, "corner_err": 0.1, "align_ok": True, "seconds": 1.0,
                "metric_deltas": {"hemoglobin_density@left_cheek": rng.normal(0, redness),
                                  "texture_index@forehead": rng.normal(0, 0.1)}}

    results = [pair(i, split, colour, 0.004 if colour == "decoded" else 0.001)
               for colour in ("file", "decoded") for split in ("calib", "eval") for i in range(60)]
    calibration = accuracy.report(results, ["tan"])
    general, decoded = calibration["summary"], calibration["decoded_colour"]
    assert general["redness"] == accuracy.mdc95([r["delta"]["redness"] for r in results[:60]])
    assert set(decoded["summary"]) == {"redness"} and decoded["summary"]["redness"] > 2 * general["redness"]
    assert set(decoded["metrics"]) == {"hemoglobin_density@left_cheek"} and decoded["pairs"] == 60
    printed = capsys.readouterr().out
    table = printed.split("colour read from the decoded pixels (not the JPEG's chroma)")[1]
    assert "false alarms pooled over tones" in table
    # the decoded pairs are judged with their own MDC: few false alarms, not most of them
    pooled = table.split("false alarms pooled over tones: ")[1].splitlines()[0]
    assert int(pooled.split("redness ")[1].split("/")[0]) <= 6
