"""Alignment: accuracy on known warps, direction, lighting, refusals, warp_mask."""
import json
from dataclasses import replace

import numpy as np
import pytest

from analyzer.align import Alignment, align, apply_matrix, warp_mask, write_overlay
from analyzer.errors import AlignmentError
from analyzer.phantom import Capture, Change, make_face, photograph, true_transform

WARP = dict(angle_deg=6.0, scale=1.08, shift=(0.04, -0.03), tilt=(1e-5, -0.5e-5))
CAMERA = dict(noise=1.5, jpeg_quality=80)


def corner_error(found, true, shape) -> float:
    h, w = shape[:2]
    c = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    return float(np.linalg.norm(apply_matrix(found, c) - apply_matrix(true, c), axis=1).mean())


@pytest.fixture(scope="module")
def face():
    return make_face(scale=4.0, seed=2)


@pytest.fixture(scope="module")
def baseline(face):
    return photograph(face, [], Capture(noise=1.0, jpeg_quality=85), seed=1)


@pytest.fixture(scope="module")
def pair(face, baseline):
    """Baseline, a follow-up on a known warp with redness and lighting change, truth, result."""
    b, sb = baseline
    f, sf = photograph(face, [Change("redness", 0.3)],
                       Capture(**WARP, exposure=1.15, white_balance=(1.05, 1.0, 0.94),
                               gradient=0.2, **CAMERA), seed=2)
    return b, f, true_transform(sf, sb), align(b, f)


def test_refined_accuracy_beats_landmarks(pair):
    b, f, true, res = pair
    assert isinstance(res, Alignment)
    assert res.ok, res.reason
    assert res.method == "ecc-homography"
    refined = corner_error(res.matrix, true, b.shape)
    landmarks = corner_error(res.landmark_matrix, true, b.shape)
    assert refined < 0.5
    assert refined < 0.25 * landmarks
    assert res.ncc > 0.5 and res.residual_px < 5


def test_direction_is_followup_to_baseline(pair):
    b, f, true, res = pair
    assert corner_error(np.linalg.inv(res.matrix), true, b.shape) > 20
    # the warped follow-up lies on the baseline: same skin at the same pixels
    assert res.warped.shape == b.shape and res.warped.dtype == np.uint8
    v = res.valid
    gb = b[..., 1].astype(float)
    aligned = np.corrcoef(gb[v], res.warped[..., 1].astype(float)[v])[0, 1]
    unaligned = np.corrcoef(gb[v], f[..., 1].astype(float)[v])[0, 1]
    assert aligned > 0.95 and aligned > unaligned + 0.1


def test_landmark_only_is_worse_and_flagged_in_method(pair):
    b, f, true, _ = pair
    res = align(b, f, refine=False)
    assert res.method == "landmarks"
    assert corner_error(res.matrix, true, b.shape) > 1.0


@pytest.mark.parametrize("light", [
    dict(exposure=0.8, gradient=-0.25),
    dict(exposure=1.2, white_balance=(0.92, 1.0, 1.08), gradient=0.25),
])
def test_lighting_change(face, baseline, light):
    b, sb = baseline
    f, sf = photograph(face, [Change("roughness", 0.7)],
                       Capture(angle_deg=-8, scale=0.92, shift=(-0.05, 0.02), **light, **CAMERA),
                       seed=3)
    res = align(b, f)
    assert res.ok, res.reason
    assert corner_error(res.matrix, true_transform(sf, sb), b.shape) < 0.6


def test_mirrored_followup_is_refused(pair):
    b, f, _, _ = pair
    res = align(b, np.ascontiguousarray(f[:, ::-1]))
    assert not res.ok
    assert "texture" in res.reason or "landmarks" in res.reason


def test_covered_face_is_refused(pair, landmarker):
    b, f, _, _ = pair
    pts = landmarker.detect(f).points
    (x0, y0), (x1, y1) = pts.min(axis=0).astype(int), pts.max(axis=0).astype(int)
    covered = f.copy()
    covered[(y0 + y1) // 2:y1 + 10, x0 - 10:x1 + 10] = (200, 180, 170)  # skin-coloured towel
    res = align(b, covered)
    assert not res.ok
    assert "visible" in res.reason
    assert res.valid.sum() < 0.6 * pair[3].valid.sum()


def test_pose_difference_is_refused(pair, landmarker):
    b, f, _, _ = pair
    fface = landmarker.detect(f)
    bface = landmarker.detect(b)
    turned = replace(fface, pose={**fface.pose, "yaw": bface.pose["yaw"] + 14.0})
    res = align(b, f, baseline_face=bface, followup_face=turned)
    assert not res.ok
    assert "turned 14°" in res.reason and "retake" in res.reason


def test_no_face_raises(pair):
    b, _, _, _ = pair
    with pytest.raises(AlignmentError):
        align(b, np.full_like(b, 128))


def test_warp_mask_direction(pair):
    b, f, true, _ = pair
    # a disk in the baseline frame, and where the same skin is in the follow-up
    centre_b = np.array([b.shape[1] * 0.5, b.shape[0] * 0.45])
    yy, xx = np.mgrid[0:b.shape[0], 0:b.shape[1]]
    disk = (xx - centre_b[0]) ** 2 + (yy - centre_b[1]) ** 2 < 40 ** 2
    expected = apply_matrix(np.linalg.inv(true), centre_b)[0]
    out = warp_mask(disk, true, f.shape[:2])
    assert out.shape == f.shape[:2] and out.dtype == bool
    ys, xs = np.nonzero(out)
    assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) < 0.5
    wrong = warp_mask(disk, np.linalg.inv(true), f.shape[:2])
    ys, xs = np.nonzero(wrong)
    assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) > 10


def test_local_flow_small_on_rigid_pair(pair):
    b, f, _, _ = pair
    res = align(b, f, local=True)
    assert res.local_flow is not None
    assert res.local_flow.flow.shape == b.shape[:2] + (2,)
    assert res.local_flow.median_px < 0.5
    assert corner_error(res.matrix, pair[2], b.shape) < 0.5  # the global transform is kept


def test_to_dict_and_overlay(pair):
    b, _, _, res = pair
    d = res.to_dict()
    json.dumps(d)
    assert d["ok"] is True and len(d["matrix_followup_to_baseline"]) == 3
    assert "warped" not in d and "valid" not in d
    over = write_overlay(b, res)
    assert over.dtype == np.uint8 and over.ndim == 3 and over.shape[2] == 3
    assert over.shape[1] > over.shape[0]  # two panels side by side


def test_given_regions_and_large_photos_keep_the_result(pair):
    """Regions passed in give the same alignment; a 3× photo aligns on the same working scale."""
    import cv2

    from analyzer.compare import common_regions
    from analyzer.face import get_landmarker
    from analyzer.regions import build_regions

    b, f, true, res = pair
    lm = get_landmarker()
    bf, ff = lm.detect(b), lm.detect(f)
    br, fr = build_regions(b, bf), build_regions(f, ff)
    given = align(b, f, baseline_face=bf, followup_face=ff, baseline_regions=br, followup_regions=fr)
    np.testing.assert_allclose(given.matrix, res.matrix, atol=1e-9)
    np.testing.assert_array_equal(given.valid, res.valid)
    # common regions on the face boxes equal the full-size computation
    base_c, follow_c = common_regions(br, fr, given.valid, given.matrix)
    base_f, follow_f = common_regions(br, fr["whole_face"], given.valid, given.matrix)
    for name in br.names():
        np.testing.assert_array_equal(base_c[name], base_f[name])
        np.testing.assert_array_equal(follow_c[name], follow_f[name])
        np.testing.assert_array_equal(follow_c[name], warp_mask(br[name] & given.valid, given.matrix,
                                                                f.shape) & fr["whole_face"])
    # three times the resolution (face ~1100 px > FINE_FACE_PX): working scale < 1, the matrix scales
    b2 = cv2.resize(b, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    f2 = cv2.resize(f, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    big = align(b2, f2)
    s = np.array([[3.0, 0, 1.0], [0, 3.0, 1.0], [0, 0, 1.0]])
    # (an upscaled photo has no texture at its own pixel scale, so only geometry is checked)
    assert corner_error(np.linalg.inv(s) @ big.matrix @ s, true, b.shape) < 0.5
    assert big.valid.shape == b2.shape[:2]
    assert big.checks["skin_coverage"] > 0.75


def test_warped_is_made_on_demand(pair):
    """align does not warp the whole follow-up; Alignment.warped does, on first access."""
    from analyzer.align import warp_image

    b, f, _, _ = pair
    res = align(b, f)
    assert res._warped is None and "warped" not in repr(res)
    expected = warp_image(f, res.matrix, b.shape)
    np.testing.assert_array_equal(res.warped, expected)
    assert res.warped is res.warped  # made once
    given = Alignment(matrix=res.matrix, warped=expected, valid=res.valid, residual_px=0.0, ncc=0.0,
                      ok=True, reason="", method="", seconds=0.0)
    assert given.warped is expected


def test_ecc_homography_matches_opencv(pair):
    """Our masked ECC maximises OpenCV's criterion: both land on the same homography."""
    import cv2

    from analyzer.align import ecc_homography, feature_image

    b = pair[0]
    features = feature_image(b)
    y0, x0 = b.shape[0] // 4, b.shape[1] // 4
    template = np.ascontiguousarray(features[y0:3 * y0, x0:3 * x0])
    h, w = template.shape
    offset = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1.0]])  # template px -> baseline px
    true = np.array([[1.03, 0.02, 6.0], [-0.015, 0.99, -4.0], [2e-5, -1e-5, 1.0]])  # template -> image
    # image(q) = features(offset · true⁻¹ · q): the template's skin warped by `true`
    image = cv2.warpPerspective(features, offset @ np.linalg.inv(true), (w + 40, h + 40),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, 255, -1)
    start = true @ np.array([[1, 0, 1.5], [0, 1, -1.0], [0, 0, 1.0]])
    rho, ours = ecc_homography(template, image, mask, start, gauss=3)
    _, theirs = cv2.findTransformECCWithMask(
        template, image, mask, np.full(image.shape, 255, np.uint8), start.astype(np.float32),
        cv2.MOTION_HOMOGRAPHY, (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 60, 1e-5), 3)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)

    def off(m, ref=true):
        return np.abs(apply_matrix(m, corners) - apply_matrix(ref, corners)).max()

    assert rho > 0.9
    assert off(ours) < 0.05 and off(theirs.astype(float)) < 0.05
    assert off(ours, theirs.astype(float)) < 0.02


def _align_ncc(args):
    b, f, bf, ff = args
    return align(b, f, baseline_face=bf, followup_face=ff).ncc


def test_align_in_a_forked_child(pair, landmarker):
    """align's helper threads are made per process: a fork after an align still aligns.

    (Faces are detected in the parent: MediaPipe itself does not survive a fork.)
    """
    import multiprocessing

    b, f, _, _ = pair
    bf, ff = landmarker.detect(b), landmarker.detect(f)
    here = align(b, f, baseline_face=bf, followup_face=ff).ncc
    with multiprocessing.get_context("fork").Pool(1) as pool:
        ncc = pool.apply_async(_align_ncc, ((b, f, bf, ff),)).get(timeout=120)
    assert ncc == pytest.approx(here, abs=1e-9)
