"""compare: what changed between visits, measured in each photo's own pixels."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analyzer.compare import classify, more_is

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "sample_images" / "demo_patient_a"


def test_classify_against_mdc():
    assert classify(0.5, 0.2) == (True, "worse")
    assert classify(-0.5, 0.2) == (True, "improved")
    assert classify(0.1, 0.2) == (False, "no detectable change")
    assert classify(0.5, None) == (None, "not calibrated")
    assert classify(None, 0.2) == (None, "not measured")
    assert classify(-3.0, 1.0, "neutral") == (True, "lower")


def test_direction_mapping():
    assert more_is("more redness") == "worse"
    assert more_is("less even tone") == "worse"
    assert more_is("lighter tone") == "neutral"


@pytest.mark.slow
def test_compare_cli_post_procedure_redness(tmp_path):
    overlay = tmp_path / "overlay.png"
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "compare", str(COURSE / "2026-03-02_baseline.jpg"),
         str(COURSE / "2026-03-04_day02.jpg"), "--json", "--days-since-treatment", "2",
         "--overlay-out", str(overlay)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["alignment"]["ok"] is True
    m = np.asarray(result["alignment"]["matrix"])
    assert m.shape == (3, 3)
    # procedure redness was injected: redness rises clearly, and is flagged as expected
    assert result["delta"]["redness"]["value"] > 0
    assert result["delta"]["redness"]["relative"] > 0.2
    assert any("after a treatment" in f for f in result["flags"])
    assert set(result["baseline"]["summary"]) >= {"texture", "redness", "pigmentation"}
    assert overlay.stat().st_size > 1000


def test_compare_cli_missing_followup(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analyzer", "compare",
                           str(COURSE / "2026-03-02_baseline.jpg"), str(tmp_path / "none.jpg")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_shipped_mdc_matches_algorithm_version():
    """The shipped noise calibration was measured with the current algorithm."""
    from analyzer.compare import load_mdc
    from analyzer.version import ALGORITHM_VERSION

    mdc = load_mdc()
    assert mdc["provenance"]["algorithm_version"] == ALGORITHM_VERSION
    assert set(mdc["summary"]) == {"texture", "redness", "pigmentation"}
    assert all(v > 0 for v in mdc["summary"].values())
    assert "hemoglobin_density@left_cheek" in mdc["metrics"]


def test_clipping_in_either_photo_is_left_out_of_both():
    """A highlight clipped only in the follow-up is excluded from the baseline's skin too,
    at the place the transform maps it to (direction matters)."""
    from types import SimpleNamespace

    from analyzer.compare import measurable_exclusion

    def photo(clip_x=None):
        px = np.full((100, 200, 3), 150, np.uint8)
        if clip_x is not None:
            px[40:60, clip_x:clip_x + 20] = 255
        return SimpleNamespace(photo=SimpleNamespace(pixels=px),
                               face=SimpleNamespace(interocular_px=63.0))

    shift = np.array([[1.0, 0, 10], [0, 1, 0], [0, 0, 1]])  # follow-up (x, y) -> baseline (x + 10, y)
    excl = measurable_exclusion(photo(), photo(clip_x=50), shift)
    assert excl[50, 75] and excl[50, 62]
    assert not excl[50, 55] and not excl[50, 85] and not excl[20, 70]
    # clipping in the baseline is excluded where it is
    excl_b = measurable_exclusion(photo(clip_x=120), photo(), shift)
    assert excl_b[50, 125] and not excl_b[50, 100]
