"""compare: what changed between visits, measured in each photo's own pixels."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
         "--overlay-out", str(overlay), "--maps-out", str(tmp_path / "maps")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
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
    # change maps: the day-2 redness covers the face in the top (red) colours; texture does not
    maps = {k: np.asarray(Image.open(tmp_path / "maps" / f"change_{k}.png")) for k in ("redness", "texture")}
    red_share = {k: np.mean((m[..., 0] > 150) & (m[..., 2] < 80)) for k, m in maps.items()}
    assert red_share["redness"] > 4 * red_share["texture"], red_share


def test_compare_cli_missing_followup(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analyzer", "compare",
                           str(COURSE / "2026-03-02_baseline.jpg"), str(tmp_path / "none.jpg")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_shipped_mdc_matches_algorithm_version():
    """The shipped noise calibration was measured with the current algorithm."""
    from analyzer.compare import load_mdc
    from analyzer.version import ALGORITHM_VERSION

    from analyzer.compare import mdc_calibrations

    for mdc in mdc_calibrations():
        assert mdc["provenance"]["algorithm_version"] == ALGORITHM_VERSION
        assert mdc["provenance"]["px_per_mm"] > 0
        assert set(mdc["summary"]) == {"texture", "redness", "pigmentation"}
        assert all(v > 0 for v in mdc["summary"].values())
        assert "hemoglobin_density@left_cheek" in mdc["metrics"]
    assert load_mdc() == mdc_calibrations()[0]


def test_mdc_follows_the_photos_resolution(tmp_path):
    """The calibration at the highest resolution not above the photos'; the
    noisiest (lowest-resolution) one below every calibration or when unknown."""
    from analyzer.compare import load_mdc

    low = {"summary": {"texture": 2.0}, "provenance": {"px_per_mm": 4.0}}
    high = {"summary": {"texture": 1.0}, "provenance": {"px_per_mm": 8.0}}
    path = tmp_path / "mdc.json"
    path.write_text(json.dumps({"calibrations": [high, low]}))
    assert load_mdc(path)["summary"]["texture"] == 2.0
    assert load_mdc(path, px_per_mm=3.0)["summary"]["texture"] == 2.0
    assert load_mdc(path, px_per_mm=6.0)["summary"]["texture"] == 2.0
    assert load_mdc(path, px_per_mm=7.5)["summary"]["texture"] == 1.0   # within 10 %
    assert load_mdc(path, px_per_mm=15.0)["summary"]["texture"] == 1.0
    legacy = tmp_path / "legacy.json"   # a single calibration (older files)
    legacy.write_text(json.dumps(low))
    assert load_mdc(legacy, px_per_mm=15.0)["summary"]["texture"] == 2.0


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


@pytest.fixture(scope="module")
def phantom_pair():
    """Two analysed no-change phantom retakes (scale 6: about 4 px/mm)."""
    from analyzer.phantom import Capture, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6.0, seed=1)
    rng = np.random.default_rng(5)
    b = analyse_pixels(photograph(face, [], Capture.random(rng, 0.7), seed=10)[0])
    f = analyse_pixels(photograph(face, [], Capture.random(rng, 0.7), seed=11)[0])
    return b, f


def test_photos_below_the_calibrated_resolution_are_flagged(phantom_pair):
    from analyzer.compare import compare_analysed

    shipped, _ = compare_analysed(*phantom_pair)
    assert not [f for f in shipped.flags if "px/mm" in f]
    assert shipped.mdc_provenance["px_per_mm"] < 4.4   # the 4 px/mm calibration serves 4 px/mm photos
    sharp = {"summary": {}, "metrics": {}, "provenance": {"px_per_mm": 12.0}}
    comparison, _ = compare_analysed(*phantom_pair, mdc=sharp)
    flag = [f for f in comparison.flags if "px/mm" in f]
    assert len(flag) == 1 and "below the lowest resolution" in flag[0] and "12.0 px/mm" in flag[0]


def test_common_work_masks_match_the_full_resolution_masks(phantom_pair):
    """The follow-up's common-skin masks made on the work frames agree with the
    full-resolution route (warp each baseline mask, then resample) on a phantom pair."""
    from analyzer.align import align
    from analyzer.compare import common_regions, common_work_masks, photo_skin_image, work_matrix
    from analyzer.metrics import work_masks

    b, f = phantom_pair
    al = align(b.photo.pixels, f.photo.pixels, baseline_face=b.face, followup_face=f.face,
               baseline_regions=b.regions, followup_regions=f.regions)
    b_img, f_img = photo_skin_image(b), photo_skin_image(f)
    rows, cols = b.regions.box
    base_w, follow_w = common_work_masks(b.regions, al.valid[rows, cols], al.matrix, b_img, f_img)
    base_full, follow_full = common_regions(b.regions, f.regions, al.valid, al.matrix)
    expected = work_masks(follow_full, f_img.frame)
    for name, mask in follow_w.items():
        union = np.count_nonzero(mask | expected[name])
        assert union > 0, name
        assert np.count_nonzero(mask & expected[name]) / union > 0.95, name
    assert np.count_nonzero(follow_w["whole_face"]) > 0.8 * np.count_nonzero(base_w["whole_face"]) * \
        (f_img.px_per_mm / b_img.px_per_mm) ** 2
    # both photos measure the same skin: per region the same area, counted in baseline
    # work pixels (a resampled follow-up mask loses a rim of edge pixels, which the
    # baseline drops too)
    m = work_matrix(al.matrix, b_img, f_img)   # follow-up work px -> baseline work px
    for name in base_w:
        p = np.r_[np.argwhere(follow_w[name]).mean(0)[::-1], 1.0]   # the region's centre
        u, w = m[:2] @ p, m[2] @ p
        jacobian = (m[:2, :2] * w - np.outer(u, m[2, :2])) / w ** 2
        follow_area = np.count_nonzero(follow_w[name]) * abs(np.linalg.det(jacobian))
        assert abs(follow_area / np.count_nonzero(base_w[name]) - 1) < (5e-4 if name == "whole_face" else 3e-3), name


def test_summary_mdc_follows_the_baselines_skin_tone():
    """A noisier tone raises the MDC; a quieter one does not lower it below the pooled one."""
    from analyzer.compare import summary_mdc

    mdc = {"summary": {"texture": 1.0},
           "summary_by_tone": {"light": {"texture": 0.5}, "dark": {"texture": 2.0}}}
    assert summary_mdc(mdc, "texture", "dark") == (2.0, "dark")
    assert summary_mdc(mdc, "texture", "brown") == (2.0, "dark")          # nearest calibrated tone
    assert summary_mdc(mdc, "texture", "light") == (1.0, "all tones")     # pooled is the floor
    assert summary_mdc(mdc, "texture", "very light") == (1.0, "all tones")
    assert summary_mdc(mdc, "texture", None) == (1.0, "all tones")
    assert summary_mdc({"summary": {"texture": 1.0}}, "texture", "dark") == (1.0, "all tones")


def test_photos_saved_alike_take_their_own_calibration():
    """Pairs saved alike are judged against the same-settings MDC (per tone too, with its own
    pooled floor) where it is smaller; other pairs, and calibrations without one, against
    the general MDC."""
    from analyzer.compare import summary_mdc

    mdc = {"summary": {"redness": 1.0, "texture": 1.0}, "summary_by_tone": {"dark": {"redness": 3.0}},
           "same_settings": {"summary": {"redness": 0.4, "texture": 1.2},
                             "summary_by_tone": {"dark": {"redness": 0.6}, "light": {"redness": 0.2}}}}
    assert summary_mdc(mdc, "redness", "dark", same_settings=True) == (0.6, "dark, photos saved alike")
    assert summary_mdc(mdc, "redness", "light", same_settings=True) == (0.4, "all tones, photos saved alike")
    assert summary_mdc(mdc, "redness", "dark", same_settings=False) == (3.0, "dark")
    assert summary_mdc(mdc, "texture", "dark", same_settings=True) == (1.0, "all tones")  # larger: sampling
    general = {k: v for k, v in mdc.items() if k != "same_settings"}
    assert summary_mdc(general, "redness", "dark", same_settings=True) == (3.0, "dark")


def test_region_metrics_of_photos_saved_alike_take_the_smaller_mdc():
    from analyzer.compare import metric_mdc

    mdc = {"metrics": {"hemoglobin_density@left_cheek": 0.008, "texture_index@forehead": 0.6},
           "same_settings": {"metrics": {"hemoglobin_density@left_cheek": 0.004,
                                         "texture_index@forehead": 0.7}}}
    assert metric_mdc(mdc, "hemoglobin_density@left_cheek", same_settings=True) == 0.004
    assert metric_mdc(mdc, "hemoglobin_density@left_cheek") == 0.008
    assert metric_mdc(mdc, "texture_index@forehead", same_settings=True) == 0.6
    assert metric_mdc({}, "texture_index@forehead", same_settings=True) is None


def test_which_photos_count_as_saved_alike():
    from analyzer.compare import same_capture_settings as alike

    jpeg = {"format": "JPEG", "jpeg_quality": 92, "chroma_subsampling": "4:2:0", "camera": "Pixel 7"}
    assert alike(jpeg, dict(jpeg))
    assert not alike(jpeg, {**jpeg, "jpeg_quality": 91})
    assert not alike(jpeg, {**jpeg, "chroma_subsampling": "4:4:4"})
    assert not alike(jpeg, {**jpeg, "camera": "iPhone 13"})
    assert not alike(jpeg, {**jpeg, "camera": None})                 # one camera unknown
    assert not alike({**jpeg, "jpeg_quality": None}, {**jpeg, "jpeg_quality": None})   # tables unread
    tables = {**jpeg, "jpeg_tables": "a1b2"}
    assert alike(tables, dict(tables)) and alike(tables, jpeg)       # one fingerprint unknown (older result)
    assert not alike(tables, {**tables, "jpeg_tables": "c3d4"})       # same nearest quality, other tables
    assert alike({"format": "PNG"}, {"format": "TIFF"})               # both lossless
    assert not alike({"format": "PNG"}, jpeg)
    assert not alike({"format": "array"}, {"format": "array"})       # pixels without a file
    at = {**jpeg, "iso": 100}
    assert alike(at, {**at, "iso": 125})                            # within a third of a stop
    assert not alike(at, {**at, "iso": 200}) and not alike(at, jpeg)   # another ISO; one unknown


def test_photos_saved_almost_alike_get_a_note():
    """JPEGs a little apart in quality, or with other tables, or one without its camera:
    a note on how to detect smaller changes; alike, far apart (flagged already) or not
    both JPEG: none."""
    from analyzer.compare import not_saved_alike as note

    jpeg = {"format": "JPEG", "jpeg_quality": 92, "chroma_subsampling": "4:2:0", "camera": "Pixel 7",
            "jpeg_tables": "a1"}
    assert "JPEG quality about 92 vs 90" in note(jpeg, {**jpeg, "jpeg_quality": 90, "jpeg_tables": "b2"})
    assert "different JPEG quantisation tables" in note(jpeg, {**jpeg, "jpeg_tables": "b2"})
    assert "only one photo names its camera" in note(jpeg, {**jpeg, "camera": None})
    assert "(ISO 100 vs 160)" in note({**jpeg, "iso": 100}, {**jpeg, "iso": 160})
    assert note({**jpeg, "iso": 100}, {**jpeg, "iso": 400}) is None             # flagged as another ISO
    assert "same camera at the same setting" in note(jpeg, {**jpeg, "jpeg_tables": "b2"})
    assert note(jpeg, dict(jpeg)) is None
    assert note(jpeg, {**jpeg, "jpeg_quality": 80, "jpeg_tables": "c3"}) is None   # flagged as saved differently
    assert note(jpeg, {**jpeg, "camera": "iPhone 13"}) is None                    # flagged as another camera
    assert note({"format": "PNG"}, {"format": "PNG"}) is None
    heic = note({"format": "HEIF", "camera": "iPhone 13"}, {"format": "HEIF", "camera": "iPhone 13"})
    assert "HEIC/HEIF" in heic and "Most Compatible" in heic           # never alike: says how to be
    assert note({"format": "HEIF", "camera": "iPhone 13"}, {"format": "HEIF", "camera": "Pixel 7"}) is None


def test_compare_judges_photos_saved_alike_by_their_own_mdc():
    """Two visits of the demo course saved alike (JPEG 90, 4:2:0) take the same-settings MDC;
    the follow-up re-saved at quality 80 takes the general one."""
    import io

    from analyzer.compare import compare_analysed
    from analyzer.intake import load_photo
    from analyzer.pipeline import analyse_pixels

    base = load_photo(COURSE / "2026-03-02_baseline.jpg")
    follow = load_photo(COURSE / "2026-04-13_week06.jpg")
    buf = io.BytesIO()
    Image.fromarray(follow.pixels).save(buf, "JPEG", quality=80)
    resaved = load_photo(buf.getvalue())
    a = analyse_pixels(base.pixels, base.info)
    mdc = {"summary": {"texture": 9.0, "redness": 9.0, "pigmentation": 9.0},
           "same_settings": {"summary": {"texture": 1.0, "redness": 1.0, "pigmentation": 1.0}}}
    same, _ = compare_analysed(a, analyse_pixels(follow.pixels, follow.info), mdc=mdc)
    other, _ = compare_analysed(a, analyse_pixels(resaved.pixels, resaved.info), mdc=mdc)
    assert [same.delta[k]["mdc"] for k in ("texture", "redness")] == [1.0, 1.0]
    assert same.delta["redness"]["mdc_tone"] == "all tones, photos saved alike"
    assert [other.delta[k]["mdc"] for k in ("texture", "redness")] == [9.0, 9.0]
    assert not any("not saved alike" in f for f in same.flags + other.flags)
    near = io.BytesIO()
    Image.fromarray(follow.pixels).save(near, "JPEG", quality=88)
    near = load_photo(near.getvalue())
    almost, _ = compare_analysed(a, analyse_pixels(near.pixels, near.info), mdc=mdc)
    assert almost.delta["redness"]["mdc"] == 9.0
    assert [f for f in almost.flags if "not saved alike (JPEG quality about 90 vs 88)" in f]


def test_texture_change_with_a_pigment_change_the_same_way_is_cautioned():
    from analyzer.compare import pigment_in_texture_caution as caution

    def delta(t, p, t_sig=True, p_sig=True):
        return {"texture": {"value": t, "significant": t_sig},
                "pigmentation": {"value": p, "significant": p_sig}}

    assert "part of the texture change may be pigment" in caution(delta(-2.0, -6.0))
    assert caution(delta(3.0, 5.0))
    assert caution(delta(-2.0, 6.0)) is None          # opposite ways: not explained by pigment
    assert caution(delta(-2.0, -6.0, p_sig=False)) is None
    assert caution(delta(-0.1, -6.0, t_sig=False)) is None


def test_texture_change_within_the_pigment_change_is_not_claimed():
    """Pigment-only changes move the texture index by up to the pigment change itself
    (phantom); such a texture change is not claimed, a larger one is, with its caution."""
    from analyzer.compare import BEYOND_PIGMENT, judge_cross_effects, summary_change

    def delta(t, p, t_mdc=0.5, p_mdc=0.2):
        return {"texture": summary_change(t, 20.0, t_mdc), "redness": summary_change(0.0, 0.3, 0.01),
                "pigmentation": summary_change(p, 10.0, p_mdc)}

    d = delta(-2.2, -1.2)                   # texture -11 %, pigment -12 %: pigment alone does that
    flags = judge_cross_effects(d)
    assert d["texture"]["significant"] is False and d["texture"]["status"] == BEYOND_PIGMENT
    assert d["texture"]["caution"] == "pigment" and d["texture"]["beyond_other"] == 0.0
    assert d["pigmentation"]["status"] == "improved"
    assert flags == [f for f in flags if "no texture change is claimed" in f] and len(flags) == 1
    d = delta(-3.4, -1.2)                   # -17 % against -12 %: 5 % of 20 = 1.0 > MDC 0.5
    judge_cross_effects(d)
    assert d["texture"]["status"] == "improved" and d["texture"]["caution"] == "pigment"
    assert d["texture"]["beyond_other"] == pytest.approx(-0.05)
    d = delta(-2.8, -1.2)                   # 2 % of 20 = 0.4, within the MDC
    judge_cross_effects(d)
    assert d["texture"]["status"] == BEYOND_PIGMENT
    for t, p in ((-2.2, 1.2), (-2.2, -0.1), (0.3, -1.2)):   # other way; pigment or texture within noise
        d = delta(t, p)
        before = dict(d["texture"])
        judge_cross_effects(d)
        assert d["texture"] == before
    d = delta(5.4, 2.6)                     # new spots: +27 % against +26 %
    judge_cross_effects(d)
    assert d["texture"]["status"] == BEYOND_PIGMENT and d["pigmentation"]["status"] == "worse"


def test_pigment_change_within_the_texture_change_is_not_claimed():
    """Smoother skin lowers the pigment burden a little (up to ~0.35 x the texture change on
    the phantom): such a pigment change is not claimed, a larger one is."""
    from analyzer.compare import BEYOND_TEXTURE, judge_cross_effects, summary_change

    def delta(t, p):
        return {"texture": summary_change(t, 20.0, 0.4), "redness": summary_change(0.0, 0.3, 0.01),
                "pigmentation": summary_change(p, 10.0, 0.2)}

    d = delta(-1.8, -0.25)                  # texture -9 %, pigment -2.5 %: within 0.3 x 9 %
    flags = judge_cross_effects(d)
    assert d["texture"]["status"] == "improved" and d["texture"]["caution"] == "pigment"
    assert d["pigmentation"]["status"] == BEYOND_TEXTURE and d["pigmentation"]["significant"] is False
    assert d["pigmentation"]["caution"] == "texture" and d["pigmentation"]["beyond_other"] == 0.0
    assert any("no pigmentation change is claimed" in f for f in flags)
    d = delta(-1.8, -0.6)                   # -6 % against 2.7 %: 3.3 % of 10 = 0.33 > 0.2
    judge_cross_effects(d)
    assert d["pigmentation"]["status"] == "improved" and "caution" not in d["pigmentation"]


def test_redness_change_within_the_pigment_change_is_not_claimed():
    """Part of a melanin change reads as hemoglobin (up to ~0.13 x the pigment change on the
    phantom): with a tight MDC such a redness change is not claimed, a larger one is, and a
    redness change the other way or without a detectable pigment change is left as it is."""
    from analyzer.compare import BEYOND_PIGMENT, judge_cross_effects, summary_change

    def delta(r, p, r_mdc=0.004):
        return {"texture": summary_change(0.0, 20.0, 0.4), "redness": summary_change(r, 0.4, r_mdc),
                "pigmentation": summary_change(p, 10.0, 0.2)}

    d = delta(-0.006, -2.0)                 # redness -1.5 % with pigment -20 %: 0.13 x 20 % = 2.6 %
    flags = judge_cross_effects(d)
    assert d["redness"]["status"] == BEYOND_PIGMENT and d["redness"]["significant"] is False
    assert d["redness"]["beyond_other"] == 0.0 and d["pigmentation"]["status"] == "improved"
    assert any("no redness change is claimed" in f for f in flags)
    assert not any("may come from the redness" in f for f in flags)
    d = delta(-0.03, -2.0)                  # -7.5 %: 4.9 % of 0.4 = 0.0196 > MDC
    judge_cross_effects(d)
    assert d["redness"]["status"] == "improved" and d["redness"]["beyond_other"] == pytest.approx(-0.049)
    assert "caution" not in d["redness"]
    for r, p in ((-0.006, 2.0), (-0.006, -0.1), (0.003, -2.0)):   # other way; pigment or redness within noise
        d = delta(r, p)
        before = dict(d["redness"])
        judge_cross_effects(d)
        assert d["redness"] == before


def test_a_region_redness_change_within_its_pigment_change_is_not_claimed():
    """The regions' hemoglobin density (what the redness index is the whole face's mean
    of) gets the summary's rule: within 0.13 x the region's pigment change the same way,
    not claimed; beyond it, or the other way, left as it is."""
    from analyzer.compare import BEYOND_PIGMENT, judge_region_cross_effects

    def changes(red, pig):
        return {"hemoglobin_density": {"baseline": 0.30, "delta": red, "mdc": 0.002, "significant": abs(red) > 0.002},
                "pigmentation_index": {"baseline": 10.0, "delta": pig, "mdc": 0.2, "significant": abs(pig) > 0.2}}

    c = changes(-0.003, -2.0)                # -1 % redness with -20 % pigment: within 0.13 x
    judge_region_cross_effects(c)
    assert c["hemoglobin_density"]["status"] == BEYOND_PIGMENT and not c["hemoglobin_density"]["significant"]
    for red, pig in ((-0.012, -2.0), (0.003, -2.0), (-0.003, -0.1)):   # beyond; other way; no pigment change
        c = changes(red, pig)
        judge_region_cross_effects(c)
        assert c["hemoglobin_density"]["significant"] and "status" not in c["hemoglobin_density"]


def test_a_region_texture_change_within_its_pigment_change_is_not_claimed():
    from analyzer.compare import BEYOND_PIGMENT, judge_region_cross_effects

    def changes(t, p):
        return {"texture_index": {"baseline": 20.0, "delta": t, "mdc": 0.5, "significant": abs(t) > 0.5,
                                  "status": "improved"},
                "pigmentation_index": {"baseline": 10.0, "delta": p, "mdc": 0.2,
                                       "significant": abs(p) > 0.2, "status": "improved"}}
    c = changes(-2.0, -1.5)
    judge_region_cross_effects(c)
    assert c["texture_index"]["status"] == BEYOND_PIGMENT and not c["texture_index"]["significant"]
    assert c["pigmentation_index"]["significant"]          # -15 % is beyond 0.3 x -10 %
    c = changes(-4.0, -1.5)
    judge_region_cross_effects(c)
    assert c["texture_index"]["significant"] and c["texture_index"]["caution"] == "pigment"
    c = changes(-4.0, -0.3)                 # pigment -3 % with texture -20 %
    judge_region_cross_effects(c)
    assert c["pigmentation_index"]["status"] == "no detectable change beyond the texture change"


def test_a_small_pigment_change_with_a_redness_change_is_cautioned():
    from analyzer.compare import redness_in_pigment_caution as caution

    def delta(r, p, r_sig=True, p_sig=True):
        return {"redness": {"value": r, "significant": r_sig},
                "pigmentation": {"value": p, "relative": p, "significant": p_sig}}

    assert "may come from the redness" in caution(delta(0.5, 0.04))
    assert caution(delta(0.5, -0.04)) and caution(delta(-0.3, 0.03))
    assert caution(delta(0.5, 0.25)) is None          # far more than redness moves it
    assert caution(delta(0.5, 0.04, r_sig=False)) is None
    assert caution(delta(0.5, 0.04, p_sig=False)) is None


def test_strong_redness_on_a_phantom_carries_the_pigment_caution(phantom_pair):
    """Post-procedure redness on the same capture: the pigment burden moves a little, and
    where that counts as detectable the comparison says it may be the redness."""
    from analyzer.compare import compare_analysed, load_mdc
    from analyzer.phantom import Capture, Change, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6.0, seed=1)
    capture = Capture(exposure=0.9)
    before = analyse_pixels(photograph(face, [], capture, seed=3)[0])
    red = analyse_pixels(photograph(face, [Change("redness", 0.3)], capture, seed=4)[0])
    comparison, _ = compare_analysed(before, red)
    pig = comparison.delta["pigmentation"]
    assert comparison.delta["redness"]["status"] == "worse"
    assert 0 < pig["relative"] < 0.05                   # the leak, README Guided melanin map
    strict = load_mdc(px_per_mm=comparison.baseline["summary"]["px_per_mm"])
    strict = {**strict, "summary": {**strict["summary"], "pigmentation": 0.5 * pig["value"]},
              "summary_by_tone": {}}
    flagged, _ = compare_analysed(before, red, mdc=strict)
    assert flagged.delta["pigmentation"]["significant"]
    assert any("may come from the redness" in f for f in flagged.flags)
    assert flagged.delta["pigmentation"]["caution"] == "redness"
    assert "caution" not in flagged.delta["texture"]
    assert not any("may come from the redness" in f for f in compare_analysed(*phantom_pair)[0].flags)


def test_fading_spots_on_a_phantom_claim_no_texture_change(phantom_pair):
    """Spots fading to 40 %: pigmentation falls, texture follows by no more, and the
    comparison claims no texture change and says why; smoother skin with fading spots is
    claimed, with the caution that part of it may be pigment."""
    from analyzer.compare import BEYOND_PIGMENT, compare_analysed
    from analyzer.phantom import Capture, Change, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6.0, seed=1)
    rng = np.random.default_rng(5)
    Capture.random(rng, 0.7)  # the fixture's baseline capture
    capture = Capture.random(rng, 0.7)
    faded = analyse_pixels(photograph(face, [Change("spots", 0.4)], capture, seed=11)[0])
    comparison, _ = compare_analysed(phantom_pair[0], faded)
    texture = comparison.delta["texture"]
    assert comparison.delta["pigmentation"]["status"] == "improved"
    assert texture["relative"] < -0.05 and texture["value"] < -texture["mdc"]   # it did move
    assert texture["status"] == BEYOND_PIGMENT and texture["significant"] is False
    assert texture["caution"] == "pigment"
    assert any("no texture change is claimed" in f for f in comparison.flags)
    # texture layers to 50 % (-8 % alone) and spots to 65 %: -18 % texture against -13 % pigment
    smoother = [Change(k, 0.5) for k in ("roughness", "pores", "lines")] + [Change("spots", 0.65)]
    both, _ = compare_analysed(phantom_pair[0], analyse_pixels(photograph(face, smoother, capture, seed=11)[0]))
    assert both.delta["texture"]["status"] == "improved" and both.delta["texture"]["caution"] == "pigment"
    assert any("may be pigment" in f for f in both.flags)
    no_change, _ = compare_analysed(*phantom_pair)
    assert not any("pigment" in f for f in no_change.flags)


def test_an_untrusted_alignment_claims_no_change(phantom_pair):
    """A follow-up that cannot be aligned (mirrored and turned) keeps its values but no status."""
    import cv2

    from analyzer import dashboard_data as dd
    from analyzer.compare import NOT_COMPARABLE, compare_analysed
    from analyzer.pipeline import analyse_pixels

    baseline = phantom_pair[0]
    h, w = baseline.photo.pixels.shape[:2]
    turned = cv2.warpAffine(baseline.photo.pixels[:, ::-1].copy(),
                            cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h),
                            borderValue=(128, 128, 128))
    comparison, alignment = compare_analysed(baseline, analyse_pixels(turned))
    assert not alignment.ok
    result = comparison.to_dict()
    statuses = [d["status"] for d in result["delta"].values()]
    statuses += [m["status"] for region in result["regions"].values() for m in region.values()]
    assert set(statuses) == {NOT_COMPARABLE}
    assert all(d["significant"] is None and d["value"] is not None for d in result["delta"].values())
    assert any("retake the follow-up photo" in f for f in result["flags"])
    assert not any("may be pigment" in f for f in result["flags"])
    assert all("not compared" in line for line in dd.plain_summary(result))


def test_charted_value_puts_a_follow_up_on_the_baselines_footing():
    """A chart point is the baseline's own value plus the compared change, so it leaves
    the band baseline ± MDC exactly when the comparison found the change detectable."""
    from analyzer.compare import COMPARED, NOT_COMPARABLE, OWN_PHOTO, charted_value

    result = {"delta": {"texture": {"value": -0.4, "status": "improved"},
                        "redness": {"value": None, "status": "not measured"},
                        "pigmentation": {"value": 1.0, "status": NOT_COMPARABLE}},
              "regions": {"forehead": {"texture_index": {"delta": 0.25, "status": "worse"}}}}
    assert charted_value(21.0, 20.0, result, "texture") == (19.6, COMPARED)
    assert charted_value(21.0, 20.0, result, "redness") == (21.0, OWN_PHOTO)       # not measured
    assert charted_value(31.0, 30.0, result, "pigmentation") == (31.0, OWN_PHOTO)  # not trusted
    assert charted_value(21.0, 20.0, None, "texture") == (21.0, OWN_PHOTO)         # not compared
    assert charted_value(21.0, None, result, "texture") == (21.0, OWN_PHOTO)       # no baseline value
    assert charted_value(9.0, 8.0, result, "texture", "forehead", "texture_index") == (8.25, COMPARED)
    assert charted_value(9.0, 8.0, result, "texture", "chin", "texture_index") == (9.0, OWN_PHOTO)


def test_compare_text_states_the_retake_noise_of_each_index():
    """The text report gives each index's MDC next to its status, from the result itself."""
    from analyzer.cli import format_comparison

    result = {"alignment": {"ok": True, "residual_px": 1.0, "ncc": 0.9},
              "baseline": {"summary": {"texture": 20.0, "redness": 0.2}},
              "followup": {"summary": {"texture": 19.0, "redness": 0.2}},
              "delta": {"texture": {"value": -1.0, "relative": -0.05, "status": "improved", "mdc": 0.531},
                        "redness": {"value": None, "relative": None, "status": "not measured", "mdc": None}},
              "flags": []}
    lines = format_comparison(result).splitlines()
    assert lines[1].endswith("-1 (-5.0 %), improved (retake noise ±0.531)")
    assert lines[2].endswith("n/a, not measured")
    result["delta"]["texture"]["mdc_tone"] = "dark, photos saved alike"
    assert format_comparison(result).splitlines()[1].endswith(
        "(retake noise ±0.531; dark skin, photos saved alike)")
    result["delta"]["texture"]["mdc_tone"] = "all tones, photos saved alike"
    assert format_comparison(result).splitlines()[1].endswith(
        "(retake noise ±0.531; all skin tones, photos saved alike)")
    result["delta"]["texture"]["caution"] = "pigment"      # the status says what it may partly be
    assert ", improved (part may be pigment) (retake noise ±0.531;" in format_comparison(result)


def test_photos_saved_differently_are_flagged():
    """A follow-up re-saved at another JPEG quality and colour resolution carries a flag
    naming both; the same photo saved the same way does not."""
    import io

    from analyzer.compare import compare_analysed, compression_difference
    from analyzer.intake import load_photo
    from analyzer.pipeline import analyse_pixels

    base_file = COURSE / "2026-03-02_baseline.jpg"
    follow = np.asarray(Image.open(COURSE / "2026-03-04_day02.jpg").convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(follow).save(buf, "JPEG", quality=80, subsampling=0)
    base = load_photo(base_file)
    assert (base.info.jpeg_quality, base.info.chroma_subsampling) == (90, "4:2:0")
    resaved = load_photo(buf.getvalue())
    a, b = analyse_pixels(base.pixels, base.info), analyse_pixels(resaved.pixels, resaved.info)
    comparison, _ = compare_analysed(a, b)
    flag = [f for f in comparison.flags if "saved differently" in f]
    assert len(flag) == 1 and "JPEG quality about 90 vs 80" in flag[0] and "4:2:0 vs 4:4:4" in flag[0]
    same = load_photo(COURSE / "2026-03-04_day02.jpg").info.to_dict()
    assert compression_difference(base.info.to_dict(), same) is None
    assert compression_difference({"format": "JPEG", "jpeg_quality": 92}, {"format": "PNG"}) == (
        compression_difference({"format": "JPEG"}, {"format": "TIFF"}))          # lossless formats alike
    assert "JPEG vs lossless" in compression_difference({"format": "JPEG"}, {"format": "PNG"})
    assert compression_difference({"format": "array"}, {"format": "PNG"}) is None  # unknown: not compared


def test_photos_from_different_cameras_or_iso_are_flagged():
    from dataclasses import replace

    from analyzer.compare import camera_difference, compare_analysed, iso_difference
    from analyzer.intake import load_photo
    from analyzer.pipeline import analyse_pixels

    base = load_photo(COURSE / "2026-03-02_baseline.jpg")
    follow = load_photo(COURSE / "2026-03-04_day02.jpg")
    a = analyse_pixels(base.pixels, replace(base.info, camera="Apple iPhone 13", iso=100))
    b = analyse_pixels(follow.pixels, replace(follow.info, camera="Google Pixel 7", iso=400))
    comparison, _ = compare_analysed(a, b)
    flag = [f for f in comparison.flags if "different cameras" in f]
    assert len(flag) == 1 and "(Apple iPhone 13 vs Google Pixel 7)" in flag[0]
    assert [f for f in comparison.flags if "different ISO (100 vs 400)" in f]
    same = {"camera": "Apple iPhone 13"}
    assert camera_difference(same, dict(same)) is None
    assert camera_difference(same, {"camera": None}) is None       # unknown
    assert iso_difference({"iso": 400}, {"iso": 200}) and iso_difference({"iso": 100}, {"iso": 250})
    assert iso_difference({"iso": 100}, {"iso": 160}) is None      # less than a stop apart
    assert iso_difference({"iso": 100}, {}) is None                # unknown


def test_a_different_backdrop_is_flagged(phantom_pair):
    """The same retakes compare on one colour footing without a flag; with the left half of
    the follow-up's backdrop recoloured (a poster put up; the face untouched) the two
    readings of its light disagree and the colour footing is flagged as uncertain.  (A
    uniformly recoloured backdrop cannot be told from a change of light.)"""
    from dataclasses import replace as dc_replace

    from analyzer.align import align
    from analyzer.compare import colour_footing
    from analyzer.pipeline import AnalysedPhoto
    from analyzer.regions import FACE_OVAL, polygon_mask

    b, f = phantom_pair
    al = align(b.photo.pixels, f.photo.pixels, baseline_face=b.face, followup_face=f.face,
               baseline_regions=b.regions, followup_regions=f.regions)
    assert colour_footing(b, f, al.matrix)[2] is None
    pixels = f.photo.pixels.copy()
    backdrop = ~polygon_mask(f.face.points, FACE_OVAL, pixels.shape[:2])
    backdrop[:, int(f.face.points[:, 0].mean()):] = False
    pixels[backdrop] = np.clip(pixels[backdrop] * np.array([1.4, 1.0, 0.7]), 0, 255).astype(np.uint8)
    # edited pixels are no longer what the JPEG's chroma says: read as decoded
    other = AnalysedPhoto(photo=dc_replace(f.photo, pixels=pixels, chroma=None), face=f.face,
                          regions=f.regions, result=f.result)
    flag = colour_footing(b, other, al.matrix)[2]
    assert flag and "background around the face looks different" in flag


def test_backdrop_difference_flags_colour_not_brightness():
    """The two readings of the follow-up's light may differ in level (exposure is read
    against the baseline either way) but not in colour by more than 3 %."""
    from analyzer.compare import backdrop_difference

    own = np.array([0.5, 0.6, 0.4])
    assert backdrop_difference(own, own) is None
    assert backdrop_difference(own * 1.2, own) is None          # brighter: not a colour difference
    assert backdrop_difference(own * [1.02, 1.0, 0.99], own) is None
    flag = backdrop_difference(own * [1.04, 1.0, 1.0], own)
    assert flag and flag.startswith("colour: the background around the face looks different")
    assert backdrop_difference(None, own) is None and backdrop_difference(own, None) is None


def test_local_scale_of_a_projective_map():
    from analyzer.align import apply_matrix, local_scale

    similarity = np.array([[1.1 * np.cos(0.1), -1.1 * np.sin(0.1), 5.0],
                           [1.1 * np.sin(0.1), 1.1 * np.cos(0.1), -3.0], [0, 0, 1]])
    assert local_scale(similarity, (200, 100)) == pytest.approx(1.1, rel=1e-9)
    projective = np.array([[1.02, 0.01, 4.0], [-0.02, 0.97, 2.0], [2e-4, -1e-4, 1.0]])
    p, d = np.array([300.0, 250.0]), 1e-3
    corners = apply_matrix(projective, np.array([p, p + [d, 0], p + [0, d]]))
    jacobian = np.column_stack([corners[1] - corners[0], corners[2] - corners[0]]) / d
    assert local_scale(projective, p) == pytest.approx(np.sqrt(abs(np.linalg.det(jacobian))), rel=1e-5)


def test_the_followup_is_measured_at_the_scale_the_alignment_gives(monkeypatch):
    """A retake's scale from its own inter-ocular landmarks is off by 1–2.5 % against the
    baseline's; through the alignment it is right to 0.1 %, and compare measures the
    follow-up at that scale (filters sized in mm cut both photos' skin alike) and picks
    the noise calibration for the lower of the two scales it measures at."""
    from analyzer import compare
    from analyzer.align import local_scale
    from analyzer.compare import compare_analysed, followup_scale
    from analyzer.metrics import INTEROCULAR_MM
    from analyzer.phantom import Capture, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(6.0, seed=1)
    rng = np.random.default_rng(11)
    (b_rgb, b_truth), (f_rgb, f_truth) = (photograph(face, [], Capture.random(rng, 0.7), seed=s)
                                          for s in (100, 101))
    b, f = analyse_pixels(b_rgb), analyse_pixels(f_rgb)
    looked_up = []
    load_mdc = compare.load_mdc
    monkeypatch.setattr(compare, "load_mdc", lambda **kw: looked_up.append(kw["px_per_mm"]) or load_mdc(**kw))
    comparison, al = compare_analysed(b, f)
    assert al.ok
    true = np.linalg.inv(np.asarray(b_truth["matrix_to_frame"])) @ np.asarray(f_truth["matrix_to_frame"])
    x, y, w, h = f.face.box
    b_scale = b.face.interocular_px / INTEROCULAR_MM
    expected = b_scale / local_scale(true, (x + w / 2, y + h / 2))
    assert followup_scale(b, f, al) == pytest.approx(expected, rel=1e-3)
    assert comparison.followup["summary"]["px_per_mm"] == pytest.approx(expected, rel=1e-3)
    assert comparison.baseline["summary"]["px_per_mm"] == pytest.approx(b_scale, rel=1e-4)
    assert looked_up == [pytest.approx(min(b_scale, expected), rel=1e-3)]


def test_pairs_with_colour_from_decoded_pixels_take_their_own_larger_calibration():
    """Colour read from a lossy decode's pixels varies more between retakes (the decode
    rounds smooth chroma), so such pairs take the ``decoded_colour`` MDC where larger,
    per tone and per region; saved alike and decoded, each variant moves it its own way."""
    from analyzer.compare import metric_mdc, summary_mdc

    mdc = {"summary": {"redness": 1.0, "texture": 1.0}, "summary_by_tone": {"dark": {"redness": 1.5}},
           "metrics": {"hemoglobin_density@left_cheek": 0.004, "texture_index@forehead": 0.6},
           "same_settings": {"summary": {"texture": 0.5}, "summary_by_tone": {}},
           "decoded_colour": {"summary": {"redness": 2.0, "texture": 0.8},
                              "summary_by_tone": {"dark": {"redness": 4.0}, "light": {"redness": 1.0}},
                              "metrics": {"hemoglobin_density@left_cheek": 0.009,
                                          "texture_index@forehead": 0.5}}}
    assert summary_mdc(mdc, "redness", "dark", decoded_colour=True) == (4.0, "dark, colour from decoded pixels")
    assert summary_mdc(mdc, "redness", "light", decoded_colour=True) == (2.0, "all tones, colour from decoded pixels")
    assert summary_mdc(mdc, "redness", "dark") == (1.5, "dark")
    assert summary_mdc(mdc, "texture", "dark", decoded_colour=True) == (1.0, "all tones")  # smaller: not taken
    assert summary_mdc(mdc, "texture", "dark", same_settings=True) == (0.5, "all tones, photos saved alike")
    assert summary_mdc(mdc, "redness", "dark", True, True) == (4.0, "dark, colour from decoded pixels")
    assert metric_mdc(mdc, "hemoglobin_density@left_cheek", decoded_colour=True) == 0.009
    assert metric_mdc(mdc, "hemoglobin_density@left_cheek") == 0.004
    assert metric_mdc(mdc, "texture_index@forehead", decoded_colour=True) == 0.6


def test_a_webp_follow_up_is_judged_as_colour_from_decoded_pixels():
    """A follow-up saved as WebP has no JPEG chroma to read: the comparison says so and
    judges redness against the calibration of such pairs; a plain JPEG pair does not."""
    import io

    from analyzer.compare import colour_from_decoded_pixels, compare_analysed
    from analyzer.phantom import TONES, Capture, make_face, photograph_file
    from analyzer.pipeline import analyse_pixels, analyze

    face = make_face(6.0, seed=2, tone=TONES["tan"])
    jpegs = [photograph_file(face, [], Capture(jpeg_quality=90, noise=1.0), seed=s)[0] for s in (31, 32)]
    lossless = photograph_file(face, [], Capture(noise=1.0), seed=32)[0]
    webp = io.BytesIO()
    Image.open(io.BytesIO(lossless)).save(webp, "WEBP", quality=90)
    baseline, followup, followup_webp = analyze(jpegs[0]), analyze(jpegs[1]), analyze(webp.getvalue())
    assert [colour_from_decoded_pixels(a.result.to_dict()) for a in (baseline, followup, followup_webp)] \
        == [False, False, True]
    assert not colour_from_decoded_pixels(analyze(lossless).result.to_dict())      # PNG: exact pixels
    assert colour_from_decoded_pixels(analyse_pixels(baseline.photo.pixels).result.to_dict())  # no file

    mdc = {"summary": {k: 1e-3 for k in ("texture", "redness", "pigmentation")}, "metrics": {},
           "decoded_colour": {"summary": {"redness": 0.5}, "summary_by_tone": {}, "metrics": {}},
           "provenance": {}}
    plain, _ = compare_analysed(baseline, followup, mdc=mdc)
    mixed, _ = compare_analysed(baseline, followup_webp, mdc=mdc)
    assert plain.delta["redness"]["mdc"] == 1e-3 and mixed.delta["redness"]["mdc"] == 0.5
    assert mixed.delta["redness"]["mdc_tone"] == "all tones, colour from decoded pixels"
    assert mixed.delta["texture"]["mdc"] == 1e-3
    note = [f for f in mixed.flags if "decoded pixels" in f]
    assert note and "the follow-up photo's colour was read from decoded pixels (WEBP" in note[0]
    assert not [f for f in plain.flags if "decoded pixels" in f]


def test_the_decoded_colour_note_names_what_the_calibration_judges_more_widely():
    from analyzer.compare import decoded_colour_note

    heic = {"settings": {"chroma": "decoded pixels"}, "capture": {"format": "HEIF"}}
    jpeg = {"settings": {"chroma": "jpeg coefficients"}, "capture": {"format": "JPEG"}}
    png = {"settings": {"chroma": "decoded pixels"}, "capture": {"format": "PNG"}}
    assert decoded_colour_note(jpeg, png, ["redness"]) is None
    both = decoded_colour_note(heic, heic, ["redness", "pigmentation"])
    assert both.startswith("the baseline and follow-up photos' colour was read from decoded pixels (HEIF")
    assert "redness and pigmentation are judged against the larger retake noise" in both
    uncalibrated = decoded_colour_note(jpeg, heic, [])
    assert uncalibrated.startswith("the follow-up photo's") and "may be retake noise" in uncalibrated


def test_photos_analysed_only_to_be_compared_skip_their_own_metrics_and_compare_the_same():
    """``pipeline.compare`` (and the CLI's) analyses both photos without their own metrics
    (compare measures them again on the skin both show): the comparison is the same as
    from fully analysed photos, and the analysis says what it left out."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import TONES, Capture, Change, make_face, photograph_file
    from analyzer.pipeline import analyze, compare

    face = make_face(6.0, seed=3, tone=TONES["brown"])
    files = [photograph_file(face, changes, Capture(jpeg_quality=q, noise=1.0), seed=s)[0]
             for changes, q, s in (([], 90, 41), ([Change("redness", 0.12)], 92, 42))]
    quick, _ = compare(*files)
    full_b, full_f = (analyze(f) for f in files)
    full, _ = compare_analysed(full_b, full_f)
    # the same to float32 rounding (the maps are filtered in another order)
    for key, change in full.delta.items():
        assert quick.delta[key]["status"] == change["status"]
        assert quick.delta[key]["value"] == pytest.approx(change["value"], rel=1e-4, abs=1e-5)
    for region, metrics in full.regions.items():
        for name, m in metrics.items():
            assert quick.regions[region][name]["status"] == m["status"], (region, name)
    assert quick.flags == full.flags and full.delta["redness"]["status"] == "worse"
    bare = analyze(files[0], measure=False).result
    assert bare.summary == {} and bare.metrics == []
    assert bare.settings["metrics"] == "not measured (analysed to be compared)"
    assert full_b.result.settings["metrics"] == "measured" and full_b.result.summary["redness"] > 0
