import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analyzer.phantom import (TONES, Capture, Change, capture_matrix, make_face, photograph,
                              render_skin, true_transform)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def face():
    return make_face(scale=4.0, seed=3)


def test_deterministic(face):
    cap = Capture.random(np.random.default_rng(5))
    a, sa = photograph(face, [Change("redness", 0.2)], cap, seed=7)
    b, sb = photograph(face, [Change("redness", 0.2)], cap, seed=7)
    np.testing.assert_array_equal(a, b)
    assert sa == sb
    assert json.loads(json.dumps(sa)) == sa  # sidecar is plain JSON


def test_identity_capture_matrix():
    np.testing.assert_allclose(capture_matrix(Capture(), (100, 120)), np.eye(3), atol=1e-12)


def test_sidecar_transform_maps_landmarks_to_frame(face, landmarker):
    cap = Capture(angle_deg=6, scale=1.08, shift=(0.04, -0.03), tilt=(1e-5, 0))
    rgb, sidecar = photograph(face, [], cap)
    pts = landmarker.detect(rgb).points.astype(np.float64)
    m = np.asarray(sidecar["matrix_to_frame"])
    mapped = np.c_[pts, np.ones(len(pts))] @ m.T
    mapped = mapped[:, :2] / mapped[:, 2:]
    err = np.linalg.norm(mapped - face.landmarks, axis=1)
    assert np.median(err) < 2.0
    # and the inverse direction is clearly wrong (the test can fail)
    wrong = np.c_[pts, np.ones(len(pts))] @ np.linalg.inv(m).T
    assert np.median(np.linalg.norm(wrong[:, :2] / wrong[:, 2:] - face.landmarks, axis=1)) > 10


def test_true_transform_composes(face):
    a = {"matrix_to_frame": capture_matrix(Capture(angle_deg=3), (400, 400)).tolist()}
    b = {"matrix_to_frame": capture_matrix(Capture(angle_deg=-2, scale=1.1), (400, 400)).tolist()}
    m = true_transform(b, a)  # follow-up b -> baseline a
    p = np.array([123.0, 210.0, 1.0])
    via_frame = np.linalg.inv(np.asarray(a["matrix_to_frame"])) @ (np.asarray(b["matrix_to_frame"]) @ p)
    np.testing.assert_allclose((m @ p)[:2] / (m @ p)[2], via_frame[:2] / via_frame[2], atol=1e-9)


def test_regional_redness_stays_in_region(face):
    base = render_skin(face)
    red = render_skin(face, [Change("redness", 0.3, region="left_cheek")])
    changed = np.abs(red - base).max(axis=2) > 1e-4
    inside = face.regions["left_cheek"] > 0
    assert changed.any() and not (changed & ~inside).any()
    # hemoglobin absorbs green more than red: red/green ratio rises
    w = face.regions["left_cheek"] > 0.9
    assert (red[w, 0] / red[w, 1]).mean() > (base[w, 0] / base[w, 1]).mean() * 1.1


def test_texture_doses_scale_fine_detail(face):
    import cv2

    def detail(img):
        g = img.mean(axis=2)
        return np.std((g - cv2.GaussianBlur(g, (0, 0), 2.0))[face.skin > 0.9])

    smooth = detail(render_skin(face, [Change("roughness", 0.5), Change("pores", 0.5)]))
    base = detail(render_skin(face))
    rough = detail(render_skin(face, [Change("roughness", 1.5), Change("pores", 1.5)]))
    assert smooth < base < rough


def test_tones_get_darker():
    means = [float(render_skin(make_face(4.0, 0, tone=t)).mean()) for t in TONES.values()]
    assert means == sorted(means, reverse=True)


def test_bad_change_kind():
    with pytest.raises(ValueError, match="unknown change kind"):
        Change("sparkle", 1.0)


def test_unknown_region(face):
    with pytest.raises(ValueError, match="unknown region"):
        render_skin(face, [Change("redness", 0.2, region="elbow")])


def test_phantom_cli_writes_course(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analyzer", "phantom", str(tmp_path), "--scale", "3",
                           "--tone", "tan"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    jpgs = sorted(tmp_path.glob("*.jpg"))
    assert len(jpgs) == 5
    sidecar = json.loads(jpgs[1].with_suffix(".json").read_text())
    assert sidecar["visit"] == "day02" and sidecar["changes"][0]["kind"] == "redness"
    assert sidecar["phantom"]["tone_od"] == TONES["tan"]


def test_photograph_file_is_what_intake_reads(face):
    """The phantom's photo file: JPEG at the capture's quality (read back from its tables by
    intake) with the ISO of its noise in EXIF, PNG when lossless; its pixels are the
    photograph's."""
    from analyzer.intake import load_photo
    from analyzer.phantom import Capture, photograph, photograph_file

    capture = Capture(jpeg_quality=87, noise=1.0)
    data, sidecar = photograph_file(face, [], capture, seed=4)
    photo = load_photo(data)
    assert (photo.info.format, photo.info.jpeg_quality, photo.info.chroma_subsampling) == ("JPEG", 87, "4:2:0")
    assert photo.info.iso == 100                        # the ISO its sensor noise stands for
    assert load_photo(photograph_file(face, [], Capture(jpeg_quality=87, noise=2.0), seed=4)[0]).info.iso == 400
    rgb, same_sidecar = photograph(face, [], capture, seed=4)
    assert np.array_equal(photo.pixels, rgb) and sidecar == same_sidecar
    lossless = load_photo(photograph_file(face, [], Capture(), seed=4)[0])
    assert lossless.info.format == "PNG" and lossless.info.jpeg_quality is None
