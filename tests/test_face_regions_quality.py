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
