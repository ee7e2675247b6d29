import cv2
import numpy as np
import pytest

from analyzer.errors import FaceNotFoundError
from analyzer.quality import assess
from analyzer.regions import FACE_OVAL, LEFT_EYE, LIPS, REGIONS, RIGHT_EYE, build_regions, polygon_mask


def rotate(rgb, degrees):
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def statuses(rgb, landmarker):
    face = landmarker.detect(rgb)
    return {i.name: i for i in assess(rgb, face, build_regions(rgb, face))}


def test_landmarks_on_sample_face(face_rgb, landmarker):
    face = landmarker.detect(face_rgb)
    assert face.points.shape == (478, 2)
    x, y, w, h = face.box
    assert 300 < w < 450 and 350 < h < 500  # the enlarged astronaut face
    # iris centres lie inside the eye outlines
    for eye, iris in ((RIGHT_EYE, 468), (LEFT_EYE, 473)):
        assert polygon_mask(face.points, eye, face_rgb.shape[:2])[tuple(np.round(face.points[iris][::-1]).astype(int))]
    assert face.faces_found == 1


def test_large_photo_landmarks_map_back_to_full_size(face_rgb, landmarker):
    """Photos over DETECT_MAX_SIDE are shown to MediaPipe downscaled; the landmarks
    still come back in full-size pixels."""
    import cv2

    from analyzer.face import DETECT_MAX_SIDE

    k = 2.5 * DETECT_MAX_SIDE / max(face_rgb.shape[:2])
    big = cv2.resize(face_rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    small_face, big_face = landmarker.detect(face_rgb), landmarker.detect(big)
    expected = small_face.points * k
    err = np.linalg.norm(big_face.points - expected, axis=1)
    assert np.median(err) < 0.01 * big_face.interocular_px
    assert big_face.interocular_px == pytest.approx(k * small_face.interocular_px, rel=0.02)


def test_no_face(landmarker):
    blank = np.full((400, 400, 3), 180, np.uint8)
    with pytest.raises(FaceNotFoundError, match="no face found"):
        landmarker.detect(blank)


def test_two_faces_counted_and_largest_kept(face_rgb, landmarker):
    small = cv2.resize(face_rgb, None, fx=0.6, fy=0.6)
    canvas = np.full((face_rgb.shape[0], face_rgb.shape[1] + small.shape[1], 3), 200, np.uint8)
    canvas[:, : face_rgb.shape[1]] = face_rgb
    canvas[: small.shape[0], face_rgb.shape[1]:] = small
    face = landmarker.detect(canvas)
    assert face.faces_found == 2
    assert face.box[0] < face_rgb.shape[1] / 2 + 100  # the large face (left) was kept
    items = {i.name: i for i in assess(canvas, face, build_regions(canvas, face))}
    assert items["several_faces"].status == "warn"


def test_roll_sign_and_size(face_rgb, landmarker):
    upright = landmarker.detect(face_rgb).pose["roll"]
    turned = landmarker.detect(rotate(face_rgb, 15)).pose["roll"]  # cv2: positive = counter-clockwise
    assert turned - upright == pytest.approx(15, abs=3)


def test_masks_inside_face_and_disjoint(face_rgb, landmarker):
    face = landmarker.detect(face_rgb)
    regions = build_regions(face_rgb, face)
    oval = polygon_mask(face.points, FACE_OVAL, face_rgb.shape[:2])
    total = np.zeros(face_rgb.shape[:2], int)
    for name in REGIONS:
        m = regions[name]
        assert m.sum() > 500, name
        assert not (m & ~oval).any(), name
        assert not (m & ~regions["whole_face"]).any(), name
        total += m
    assert total.max() == 1  # no pixel in two regions
    for feature in (RIGHT_EYE, LEFT_EYE, LIPS):
        assert not (polygon_mask(face.points, feature, face_rgb.shape[:2]) & regions["whole_face"]).any()
    assert all(v > 0.8 for k, v in regions.visible_fraction().items()), regions.visible_fraction()


def test_sample_face_passes_quality(face_rgb, landmarker):
    items = statuses(face_rgb, landmarker)
    for name in ("head_yaw", "head_pitch", "head_roll", "sharpness", "clipped_skin",
                 "skin_brightness", "colour_cast"):
        assert items[name].status == "pass", items[name]


def test_blur_detected(face_rgb, landmarker):
    blurred = cv2.GaussianBlur(face_rgb, (0, 0), 3.0)
    item = statuses(blurred, landmarker)["sharpness"]
    assert item.status in ("warn", "fail") and "blurred" in item.advice


def test_dark_detected(face_rgb, landmarker):
    dark = (face_rgb.astype(np.float32) * 0.15).astype(np.uint8)
    item = statuses(dark, landmarker)["skin_brightness"]
    assert item.status == "fail" and "too dark" in item.advice


def test_overexposed_detected(face_rgb, landmarker):
    bright = np.clip(face_rgb.astype(np.float32) * 1.6, 0, 255).astype(np.uint8)
    assert statuses(bright, landmarker)["clipped_skin"].status in ("warn", "fail")


def test_rotation_detected(face_rgb, landmarker):
    item = statuses(rotate(face_rgb, 30), landmarker)["head_roll"]
    assert item.status in ("warn", "fail") and "upright" in item.advice


def test_small_face_detected(face_rgb, landmarker):
    small = cv2.resize(face_rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.full_like(face_rgb, 200)
    canvas[: small.shape[0], : small.shape[1]] = small
    item = statuses(canvas, landmarker)["face_size"]
    assert item.status == "fail" and "closer" in item.advice


def test_colour_cast_detected(face_rgb, landmarker):
    cast = np.clip(face_rgb.astype(np.float32) * np.array([1.0, 0.8, 0.55]), 0, 255).astype(np.uint8)
    assert statuses(cast, landmarker)["colour_cast"].status in ("warn", "fail")


def test_occluded_region_detected(face_rgb, landmarker):
    face = landmarker.detect(face_rgb)
    covered = face_rgb.copy()
    cheek = polygon_mask(face.points, REGIONS["left_cheek"], face_rgb.shape[:2])
    covered[cheek] = (20, 20, 25)  # a dark hand or hair over the cheek
    items = {i.name: i for i in assess(covered, face, build_regions(covered, face))}
    assert items["visible_left_cheek"].status == "fail"


def _reference_colour_outliers(rgb, candidate, max_distance=5.0):
    """The float Lab/HSV formulation the look-up-table version must reproduce exactly."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    sample = lab[candidate]
    med = np.median(sample, axis=0)
    mad = np.median(np.abs(sample - med), axis=0) * 1.4826 + np.array([2.0, 1.5, 1.5])
    z = np.abs(lab - med) / mad
    dark = lab[..., 0] < 0.5 * med[0]
    chroma = np.hypot(z[..., 1], z[..., 2]) > 2.5 * max_distance
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    specular = (hsv[..., 2] >= 250) | ((hsv[..., 2] > 235) & (hsv[..., 1] < 25))
    return (dark | chroma | specular) & candidate


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skin_colour_outliers_match_float_reference(seed):
    from analyzer.regions import skin_colour_outliers

    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal([180, 130, 110], [25, 15, 15], (300, 400, 3)), 0, 255).astype(np.uint8)
    rgb[:80] = rng.integers(0, 256, (80, 400, 3), dtype=np.uint8)  # hair, fabric, highlights
    candidate = rng.random((300, 400)) < 0.3 + 0.2 * seed
    np.testing.assert_array_equal(skin_colour_outliers(rgb, candidate),
                                  _reference_colour_outliers(rgb, candidate))


def test_feature_exclusion_matches_whole_image_dilation(face_rgb, landmarker):
    from analyzer.regions import (LEFT_BROW, NOSTRILS_LEFT, NOSTRILS_RIGHT, RIGHT_BROW,
                                  feature_exclusion)

    face = landmarker.detect(face_rgb)
    shape = face_rgb.shape[:2]
    for margin in (3.2, 15.0):
        excl = np.zeros(shape, np.uint8)
        for poly in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS, NOSTRILS_RIGHT, NOSTRILS_LEFT):
            hull = cv2.convexHull(np.round(face.points[list(poly)] * 16).astype(np.int32))
            cv2.fillConvexPoly(excl, hull, 1, shift=4)
        k = max(1, int(round(margin)))
        ref = cv2.dilate(excl, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
        np.testing.assert_array_equal(feature_exclusion(face.points, shape, margin), ref.astype(bool))


def test_region_masks_kept_as_crops_behave_like_full_masks(face_rgb, landmarker):
    from analyzer.regions import RegionMasks

    face = landmarker.detect(face_rgb)
    regions = build_regions(face_rgb, face)
    rows, cols = regions.box
    assert regions.shape == face_rgb.shape[:2]
    full = {name: regions[name] for name in regions.names()}
    plain = RegionMasks(full, regions.expected_px, regions.candidate)
    for name, m in full.items():
        assert m.shape == face_rgb.shape[:2] and m.dtype == bool
        assert not m.any() or (m[rows, cols].sum() == m.sum())  # nothing outside the box
        np.testing.assert_array_equal(regions.crop(name), m[rows, cols])
        fresh = regions[name]
        fresh[:] = True  # a returned mask is a copy: changing it changes nothing stored
        assert not regions[name].all()
    assert regions.area_px() == plain.area_px()
    assert regions.visible_fraction() == plain.visible_fraction()
    np.testing.assert_array_equal(regions.candidate[rows, cols], regions.candidate_crop())
    assert regions.candidate.sum() == regions.candidate_crop().sum()
    assert set(regions.masks) == set(full) and regions.masks.get("nose") is not None
    q1 = {i.name: i.value for i in assess(face_rgb, face, regions)}
    q2 = {i.name: i.value for i in assess(face_rgb, face, plain)}
    assert q1 == q2


@pytest.mark.parametrize("shape", [(300, 400), (240, 320), (301, 403)])
def test_grid_sample_is_strided_slice(shape):
    from analyzer.regions import grid_sample

    img = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for step in range(1, 9):
        out = grid_sample(img, step)
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, img[::step, ::step])


def test_exposure_checks_match_pixel_reference(face_rgb, landmarker):
    """Clipping and median luma from OpenCV counts and histograms agree with the per-pixel formulas."""
    face = landmarker.detect(face_rgb)
    img = face_rgb.copy()
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(0, img.shape[0], 4000), rng.integers(0, img.shape[1], 4000)
    img[ys[:2000], xs[:2000]] = (255, 120, 90)          # one channel clipped
    img[ys[2000:], xs[2000:]] = rng.integers(0, 6, (2000, 3))  # all channels dark
    regions = build_regions(img, face)
    items = {i.name: i for i in assess(img, face, regions)}
    outline = regions.candidate
    px = img[outline].astype(int)
    clipped = ((px.max(axis=1) >= 250) | (px.max(axis=1) <= 5)).mean()
    assert items["clipped_skin"].value == pytest.approx(clipped, abs=1e-4)
    luma = np.median(px @ np.array([0.299, 0.587, 0.114]))
    assert abs(items["skin_brightness"].value - luma) <= 0.55


def test_row_dilation_equals_cv2_dilate_on_random_convex_shapes():
    from analyzer.regions import _dilate_rows

    rng = np.random.default_rng(5)
    fallbacks = 0
    for _ in range(200):
        h, w = rng.integers(5, 120, 2)
        pts = rng.uniform(-20, [w + 20, h + 20], (int(rng.integers(3, 12)), 2))
        hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
        m = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(m, hull, 1, shift=4)
        k = int(rng.integers(1, 30))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        ref = cv2.dilate(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        got = _dilate_rows(m, kernel)
        if got is None:  # a hull cut by the image edge can leave a gap in a row: cv2.dilate is used
            fallbacks += 1
            continue
        np.testing.assert_array_equal(got, ref)
    assert fallbacks < 20


def test_landmarkers_are_loaded_once_and_closed_before_exit():
    """One model per path, shared by threads; the CLI closes them before returning
    (MediaPipe's ``__del__`` during interpreter shutdown now and then printed
    "Exception ignored ... TypeError" after a command)."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from analyzer.face import close_landmarkers, get_landmarker

    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: get_landmarker(), range(4)))
    assert all(lm is loaded[0] for lm in loaded) and get_landmarker(None) is loaded[0]
    task = loaded[0]._impl
    close_landmarkers()
    assert task._handle is None and loaded[0]._impl is None
    assert get_landmarker() is loaded[0]          # still the one model, reloaded on use
    assert loaded[0].detect_all(np.zeros((64, 64, 3), np.uint8)).face_landmarks == []
    assert loaded[0]._impl is not None

    root = Path(__file__).resolve().parents[1]
    code = ("import sys\nfrom analyzer.cli import main\nfrom analyzer.face import get_landmarker\n"
            "task = get_landmarker()._impl\ncode = main(['compare', 'no-such-a.jpg', 'no-such-b.jpg'])\n"
            "assert task._handle is None, 'open after the CLI returned'\nprint('closed', code)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=root)
    assert proc.returncode == 0 and "closed" in proc.stdout, proc.stderr[-1500:]
    assert "Exception ignored" not in proc.stderr
