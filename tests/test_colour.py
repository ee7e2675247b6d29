import numpy as np
import pytest

from analyzer import colour as C
from analyzer.phantom import TONE_ITA, TONES, V_HEMOGLOBIN, V_MELANIN, Capture, make_face, photograph


def test_srgb_linear_round_trip():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(C.linear_to_srgb(C.srgb_to_linear(x)), x, atol=1e-5)
    assert C.srgb_to_linear(np.array([255], np.uint8))[0] == pytest.approx(1.0)


def test_chromophores_recover_known_densities():
    rng = np.random.default_rng(0)
    truth = np.stack([rng.uniform(0, 2, 500), rng.uniform(0, 0.6, 500), rng.uniform(0, 1, 500)], -1)
    od = truth @ C.RGB_FROM_CHROMOPHORES
    lin = np.exp(-od).astype(np.float32)[None]
    np.testing.assert_allclose(C.chromophores(lin)[0], truth, atol=2e-3)
    np.testing.assert_allclose(C.from_chromophores(C.chromophores(lin)), lin, atol=1e-4)


def test_exposure_and_gradient_go_to_the_neutral_component():
    rng = np.random.default_rng(1)
    lin = rng.uniform(0.05, 0.8, (40, 60, 3)).astype(np.float32)
    ramp = np.linspace(0.7, 1.3, 60, dtype=np.float32)[None, :, None] * 0.9
    a, b = C.chromophores(lin), C.chromophores(lin * ramp)
    np.testing.assert_allclose(b[..., :2], a[..., :2], atol=2e-3)
    assert np.abs(b[..., 2] - a[..., 2]).max() > 0.1  # the neutral part did change


def test_erythema_and_melanin_index_formulas():
    lin = np.array([[[0.5, 0.25, 0.2]]], np.float32)
    assert C.erythema_index(lin)[0, 0] == pytest.approx(100 * np.log10(2.0), rel=1e-5)
    assert C.melanin_index(lin)[0, 0] == pytest.approx(100 * np.log10(2.0), rel=1e-5)


@pytest.mark.parametrize("ita,category", [(60, "very light"), (50, "light"), (30, "intermediate"),
                                          (20, "tan"), (0, "brown"), (-40, "dark")])
def test_ita_categories(ita, category):
    assert C.ita_category(ita) == category


def test_colour_checker_fit_recovers_a_cast():
    cast = np.array([[1.15, 0.05, 0.0], [0.02, 0.95, 0.03], [0.0, 0.04, 0.8]])
    ref_lin = C.srgb_to_linear(C.COLORCHECKER_SRGB / 255.0)
    measured = C.linear_to_srgb(ref_lin @ np.linalg.inv(cast).T) * 255.0
    matrix, de = C.fit_colour_checker(measured)
    np.testing.assert_allclose(matrix, cast, atol=0.02)
    assert de < 1.5
    # the fit must fail to be trivially right: identity leaves a large error
    err_identity = np.abs(C.srgb_to_linear(measured / 255.0) - ref_lin).max()
    assert err_identity > 0.05


@pytest.fixture(scope="module")
def light_face():
    return make_face(4.0, seed=0)


def test_background_illuminant_follows_white_balance(light_face):
    from analyzer.face import get_landmarker

    gains = np.array([1.06, 1.0, 0.93])
    a, _ = photograph(light_face, [], Capture())
    b, _ = photograph(light_face, [], Capture(white_balance=tuple(gains)))
    fa, fb = get_landmarker().detect(a), get_landmarker().detect(b)
    ia = np.array(C.colour_correction(a, fa).illuminant)
    ib = np.array(C.colour_correction(b, fb).illuminant)
    np.testing.assert_allclose((ib / ib[1]) / (ia / ia[1]), gains / gains[1], rtol=0.01)
    cb = C.colour_correction(b, fb)
    assert not cb.calibrated and any("uncalibrated" in w for w in cb.warnings)
    # a given reference maps b's background to grey with a's luminance (exposure equalised)
    ref = C.colour_correction(b, fb, illuminant=ia * 1.2)
    luma = np.array([0.2126, 0.7152, 0.0722])
    np.testing.assert_allclose(ref.matrix @ ib, np.full(3, luma @ ia * 1.2), rtol=1e-6)


def test_phantom_chromophore_directions_are_separated():
    """Known phantom absorption directions project mostly onto our own basis vectors."""
    mel = V_MELANIN @ C.CHROMOPHORES_FROM_RGB
    hb = V_HEMOGLOBIN @ C.CHROMOPHORES_FROM_RGB
    assert hb[1] > 0.8 and abs(hb[0]) < 0.12 * hb[1]    # documented crosstalk ≈ -0.10
    assert mel[0] > 0.5 and abs(mel[1]) < 0.15 * mel[0]  # documented crosstalk ≈ 0.11


def test_heatmap_overlay():
    rgb = np.full((20, 30, 3), 128, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    out = C.heatmap(rgb, np.ones((20, 30), np.float32), mask, 0.0, 1.0)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert (out[~mask] == 128).all() and (out[mask] != 128).any()


@pytest.mark.parametrize("tone", ["intermediate", "tan", "brown", "dark"])
def test_ita_category_of_phantom_tones(tone, light_face):
    from analyzer.pipeline import analyse_pixels

    light_face.tone = TONES[tone]
    try:
        rgb, _ = photograph(light_face, [], Capture())
        summary = analyse_pixels(rgb).result.summary
    finally:
        light_face.tone = 0.0
    assert summary["ita_category"] == C.ita_category(TONE_ITA[tone])
    assert summary["ita_deg"] == pytest.approx(TONE_ITA[tone], abs=4.0)


def _draw_chart(rgb: np.ndarray, x0: int, y0: int, patch: int, angle: float = 4.0) -> None:
    """A ColorChecker Classic pasted onto the photo (not lit by the scene)."""
    from analyzer.phantom import draw_chart

    draw_chart(rgb, x0, y0, patch, angle)


def _with_cast(rgb: np.ndarray, gains) -> np.ndarray:
    lin = C.srgb_to_linear(rgb) * np.asarray(gains, np.float32)
    return np.round(C.linear_to_srgb(lin) * 255).astype(np.uint8)


GAINS = (1.08, 1.0, 0.85)  # a warm cast, as gains in linear RGB


def test_colour_checker_in_small_photo_is_found(face_rgb, landmarker):
    img = face_rgb.copy()
    _draw_chart(img, 20, 740, patch=24, angle=-3.0)
    patches = C.detect_colour_checker(img)
    assert patches is not None
    assert np.abs(patches - C.COLORCHECKER_SRGB).max() < 6
    assert C.colour_correction(img, landmarker.detect(img)).source == "colorchecker"


def test_colour_checker_patches_are_rgb_and_the_fit_undoes_a_cast(face_rgb, landmarker):
    """Patch means come in R, G, B order, so the fitted matrix undoes a cast of the photo."""
    gains = GAINS
    img = face_rgb.copy()
    _draw_chart(img, 20, 740, patch=24, angle=-3.0)
    img = _with_cast(img, gains)
    expected = _with_cast(C.COLORCHECKER_SRGB.astype(np.uint8)[None], gains)[0].astype(np.float32)
    patches = C.detect_colour_checker(img)
    assert patches is not None and np.abs(patches - expected).max() < 6
    corr = C.colour_correction(img, landmarker.detect(img))
    assert corr.source == "colorchecker"
    corrected = C.srgb_to_linear(expected / 255.0) @ corr.matrix.T
    np.testing.assert_allclose(corrected, C.srgb_to_linear(C.COLORCHECKER_SRGB / 255.0), atol=0.02)


@pytest.fixture(scope="module")
def photo_12mp(face_rgb, landmarker):
    """The sample face enlarged to a ~4000 px phone photo, its landmarks scaled along."""
    import cv2

    from analyzer.face import FaceLandmarks

    face = landmarker.detect(face_rgb)
    k = 4.5
    big = cv2.resize(face_rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    return big, FaceLandmarks(face.points * k, face.depth * k, face.pose, face.faces_found)


def test_colour_checker_in_12_mp_photo_is_found_and_corrects_a_cast(photo_12mp):
    """A chart with 9 mm patches beside the face: found (coarse search, fine remeasure),
    patches in R, G, B order, and the fitted matrix undoes a cast of the whole photo."""
    import cv2

    from analyzer.face import INTEROCULAR_MM

    big, face = photo_12mp
    img = big.copy()
    px_per_mm = face.interocular_px / INTEROCULAR_MM
    _draw_chart(img, 80, 2700, patch=round(9 * px_per_mm))
    img = _with_cast(cv2.GaussianBlur(img, (0, 0), 1.0), GAINS)
    expected = _with_cast(C.COLORCHECKER_SRGB.astype(np.uint8)[None], GAINS)[0].astype(np.float32)
    patches = C.detect_colour_checker(img, px_per_mm)
    assert patches is not None
    assert np.abs(patches - expected).max() < 4  # R, G, B order: a swap would be off by ~100
    corr = C.colour_correction(img, face)
    assert corr.source == "colorchecker" and corr.calibrated and corr.fit_error < 1.5
    corrected = C.srgb_to_linear(expected / 255.0) @ corr.matrix.T
    np.testing.assert_allclose(corrected, C.srgb_to_linear(C.COLORCHECKER_SRGB / 255.0), atol=0.02)
    # no chart: the background estimate, as before
    assert C.colour_correction(_with_cast(big, GAINS), face).source == "background"


def test_background_mask_on_a_grid_matches_the_full_mask(photo_12mp):
    big, face = photo_12mp
    full = C.background_mask(big.shape[:2], face)
    for step in (1, 3, 4, 5):
        grid = C.background_mask(big.shape[:2], face, step=step)
        ref = full[::step, ::step]
        assert grid.shape == ref.shape
        assert (grid != ref).mean() < 0.004  # only along the grown oval's edge
    np.testing.assert_array_equal(C.background_mask(big.shape[:2], face, step=1), full)


def test_illuminant_from_histograms_equals_per_pixel_estimate(photo_12mp):
    from analyzer.regions import grid_sample

    big, face = photo_12mp
    img = _with_cast(big, GAINS)
    step, sub = C._background_grid(img.shape[:2], face)
    assert sub.sum() <= 1.3 * C.ILLUMINANT_MAX_PIXELS
    grid = grid_sample(img, step)
    ref = C.estimate_illuminant(C.srgb_to_linear(grid), sub)
    np.testing.assert_allclose(C._illuminant_srgb8(grid, sub), ref, rtol=1e-9)
    ib = np.asarray(C.colour_correction(img, face).illuminant)
    ia = np.asarray(C.colour_correction(big, face).illuminant)
    np.testing.assert_allclose((ib / ib[1]) / (ia / ia[1]), np.asarray(GAINS) / GAINS[1], rtol=0.01)


def test_chart_that_is_not_a_colorchecker_is_not_used(face_rgb, landmarker, monkeypatch):
    """A chart-like find whose patches do not fit the ColorChecker Classic (here: the
    reference colours shuffled) is refused with a warning; the background is used instead."""
    shuffled = C.COLORCHECKER_SRGB[np.random.default_rng(0).permutation(24)]
    box = np.array([[10.0, 10.0], [60.0, 10.0], [60.0, 40.0], [10.0, 40.0]])
    monkeypatch.setattr(C, "find_colour_checker", lambda rgb, *a, **k: (shuffled.astype(np.float32), box))
    corr = C.colour_correction(face_rgb, landmarker.detect(face_rgb))
    assert corr.source == "background" and not corr.calibrated
    assert any("do not match a ColorChecker Classic" in w for w in corr.warnings)
    _, err = C.fit_colour_checker(shuffled)
    assert err > C.MAX_CHECKER_FIT_DE
    _, good = C.fit_colour_checker(C.COLORCHECKER_SRGB)
    assert good < 1.0


def test_a_colour_checker_in_only_one_photo_does_not_read_as_a_change():
    """Baseline calibrated by a chart, follow-up (same skin, no chart) by its background:
    the two footings differ by ~30 % in redness on the phantom, so comparisons are made on
    the background footing instead of reporting a large false change."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import TONES, Capture, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6, seed=0, tone=TONES["light"])
    rng = np.random.default_rng(3)
    before, _ = photograph(face, [], Capture.random(rng, 0.7), seed=0)
    after, _ = photograph(face, [], Capture.random(rng, 0.7), seed=1)
    before = before.copy()
    _draw_chart(before, 30, before.shape[0] - 200, patch=28, angle=-3.0)
    base, follow = analyse_pixels(before), analyse_pixels(after)
    assert base.result.summary["colour"]["source"] == "colorchecker"
    assert follow.result.summary["colour"]["source"] == "background"
    own = base.result.summary["redness"] / follow.result.summary["redness"] - 1
    assert own > 0.15                              # the footings really differ
    comparison, _ = compare_analysed(base, follow)
    assert abs(comparison.delta["redness"]["relative"]) < 0.02, comparison.delta["redness"]
    assert comparison.delta["redness"]["status"] == "no detectable change"
    # the chart is left out of the baseline's background illuminant: it equals the estimate
    # on the same photo without the chart, over the same background minus the chart's outline
    from analyzer.regions import grid_sample

    plain, _ = photograph(face, [], Capture.random(np.random.default_rng(3), 0.7), seed=0)
    _, box = C.find_colour_checker(before, base.face.interocular_px / C.INTEROCULAR_MM)
    step, background = C._background_grid(before.shape[:2], base.face)
    beside = background & ~C._outline_mask(box, step, background.shape)
    assert 0.01 < 1 - beside.sum() / background.sum() < 0.3
    np.testing.assert_allclose(base.result.summary["colour"]["illuminant"],
                               C._illuminant_srgb8(grid_sample(plain, step), beside), rtol=2e-5)
    tinted = C._illuminant_srgb8(grid_sample(before, step), background)
    untinted = C._illuminant_srgb8(grid_sample(plain, step), background)
    assert np.abs(tinted / tinted[1] - untinted / untinted[1]).max() > 0.001


def test_the_chart_is_chosen_by_its_fit_not_by_the_detectors_first_guess():
    """On this phantom retake the detector's first candidate is a chart-like patch of the
    background (fit ΔE ~40) and the real chart is its second: the one that fits is used."""
    from analyzer.phantom import TONES, Capture, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6, seed=0, tone=TONES["light"])
    rng = np.random.default_rng(3)
    photograph(face, [], Capture.random(rng, 0.7), seed=0)        # the same capture as above
    after, _ = photograph(face, [], Capture.random(rng, 0.7), seed=1)
    after = after.copy()
    _draw_chart(after, 40, after.shape[0] - 210, patch=28, angle=2.0)
    analysed = analyse_pixels(after)
    colour = analysed.result.summary["colour"]
    assert colour["source"] == "colorchecker" and colour["fit_error_de"] < 1.0
    assert not [w for w in analysed.result.warnings if "do not match a ColorChecker" in w]


def test_two_charted_photos_are_compared_on_their_backgrounds():
    """A chart lit like the face in both photos calibrates each analysis; the comparison
    maps the follow-up's background onto the baseline's, as without a chart (a chart's fit
    is noisier between retakes: benchmarks/colour_chart.py)."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import TONES, Capture, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6, seed=0, tone=TONES["light"])
    rng = np.random.default_rng(3)
    h = face.linear.shape[0]
    charts = (60, h - 260, 28, -3.0), (70, h - 270, 28, 2.0)
    base, follow = (analyse_pixels(photograph(face, [], Capture.random(rng, 0.7), seed=i, chart=charts[i])[0])
                    for i in (0, 1))
    assert base.correction.source == follow.correction.source == "colorchecker"
    assert base.result.summary["colour_calibrated"] and follow.result.summary["colour_calibrated"]
    comparison, _ = compare_analysed(base, follow)
    assert comparison.baseline["summary"]["colour"]["source"] == "background"
    assert comparison.followup["summary"]["colour"]["source"] == "reference"
    assert abs(comparison.delta["redness"]["relative"]) < 0.03


def test_background_gains_read_the_change_of_light_through_a_lighting_gradient(landmarker):
    """The follow-up's light over the baseline's, read on the same background cells: the
    capture's white balance × exposure ratio (colour within 0.25 %), although the lighting
    gradient turned the other way (which moved the photos' own estimates by 4 % in level
    and 0.34 % in red over green); no corresponding background: None."""
    from analyzer.phantom import true_transform

    face = make_face(6.0, seed=1)
    cb = Capture(noise=1.0, gradient=-0.08, jpeg_quality=95)
    cf = Capture(angle_deg=2.0, scale=1.03, shift=(0.01, -0.01), exposure=1.1,
                 white_balance=(1.03, 0.98, 1.01), gradient=0.08, noise=1.0, jpeg_quality=90)
    (b, sb), (f, sf) = photograph(face, [], cb, seed=1), photograph(face, [], cf, seed=2)
    fb = landmarker.detect(b)
    gains = C.background_gains(b, f, fb, true_transform(sf, sb))
    error = np.log(gains / (cf.exposure * np.array(cf.white_balance)))
    assert abs(error[0] - error[1]) < 0.0025 and abs(error[2] - error[1]) < 0.0025
    assert abs(error[1]) < 0.02
    elsewhere = np.array([[1, 0, 1e5], [0, 1, 0], [0, 0, 1.0]])  # follow-up mapped off the baseline
    assert C.background_gains(b, f, fb, elsewhere) is None
    # a phone-sized pair (12 px cells, every third pixel averaged) reads the same gains
    import cv2

    from analyzer.face import FaceLandmarks

    k = 3.0
    scale = np.diag([k, k, 1.0])
    big = FaceLandmarks(fb.points * k, fb.depth * k, fb.pose, fb.faces_found)
    gains_big = C.background_gains(cv2.resize(b, None, fx=k, fy=k), cv2.resize(f, None, fx=k, fy=k), big,
                                   scale @ true_transform(sf, sb) @ np.linalg.inv(scale))
    np.testing.assert_allclose(gains_big, gains, rtol=0.002)


def test_a_background_cell_with_one_clipped_pixel_is_left_out():
    """A cell's mean is unknown (NaN) as soon as one pixel it averages is clipped, not only
    when about half of them are (the pixel-area mean of a 0/1 mask rounds to 0 below that)."""
    rgb = np.full((48, 48, 3), 120, np.uint8)
    rgb[15, 27] = (255, 200, 180)         # a pixel the 12-px cells (sampled every 3 px) average
    means = C._cell_means(rgb, 12)
    assert np.isnan(means[1, 2]).all()
    assert np.isfinite(np.delete(means.reshape(-1, 3), 1 * 4 + 2, axis=0)).all()
