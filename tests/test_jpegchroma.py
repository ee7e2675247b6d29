"""The chroma a JPEG holds, recovered from its 8-bit decode (analyzer.jpegchroma)."""
import io

import numpy as np
import pytest
from PIL import Image

from analyzer.intake import _ORIENT_CV, load_photo
from analyzer.jpegchroma import exact_chroma
from analyzer.phantom import TONES, Capture, capture_file, make_face, render_skin


def _whole_delta(photo):
    """What the decode rounded away, at every pixel of ``photo`` (ΔR, ΔG, ΔB)."""
    h, w = photo.pixels.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    return exact_chroma(photo.pixels, (0, 0, w, h), photo.chroma).rgb_delta_at(photo.pixels, ys, xs)


def _skin_mean_error(jpeg: bytes, lossless: np.ndarray, skin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB error over ``skin`` of the plain decode and of the decode with the file's chroma."""
    photo = load_photo(jpeg)
    plain = photo.pixels.astype(np.float64)
    recovered = plain + _whole_delta(photo)
    return plain[skin].mean(0) - lossless[skin].mean(0), recovered[skin].mean(0) - lossless[skin].mean(0)


@pytest.fixture(scope="module")
def dark_skin():
    face = make_face(scale=6.0, seed=1, tone=TONES["dark"])
    return render_skin(face, [], 0), face.skin > 0.9


def test_the_skin_colour_no_longer_follows_the_jpeg_quality(dark_skin):
    """Dark skin (sRGB blue ≈ 40), one exposure saved at qualities 85–95: the plain
    decode's mean blue moves by ~0.2 code values with the quality (the rounding of
    flat chroma blocks), the file's chroma by a quarter of that."""
    linear, skin = dark_skin
    lossless = np.asarray(Image.open(io.BytesIO(capture_file(linear, Capture(noise=1.0), np.random.default_rng(0)))))
    errors = [_skin_mean_error(capture_file(linear, Capture(noise=1.0, jpeg_quality=q), np.random.default_rng(0)),
                               lossless.astype(np.float64), skin) for q in (85, 88, 91, 95)]
    plain, recovered = (np.array([e[i] for e in errors]) for i in (0, 1))
    spread_plain, spread_recovered = np.ptp(plain, axis=0), np.ptp(recovered, axis=0)
    assert spread_plain[2] > 0.15, spread_plain               # the effect is there to remove
    assert (spread_recovered < 0.07).all(), (spread_recovered, spread_plain)
    assert (np.abs(recovered) < 0.07).all(), recovered        # and the level is the lossless one


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_the_block_grid_follows_the_exif_orientation(orientation):
    """A photo stored rotated (EXIF orientation, sides not multiples of 16) reads the
    same chroma as the upright one, rotated: the block grid moved with the pixels."""
    rng = np.random.default_rng(orientation)
    y, x = np.mgrid[0:150, 0:203].astype(np.float32)
    rgb = np.dstack([90 + 0.2 * x, 60 + 0.1 * y, 40 + 0.05 * (x + y)]) + rng.normal(0, 1.0, (150, 203, 3))
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)

    def saved(tag):
        exif = Image.Exif()
        exif[0x0112] = tag
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90, exif=exif)
        return load_photo(buf.getvalue())

    upright, turned = saved(1), saved(orientation)
    assert turned.chroma is not None and turned.chroma.orientation == orientation

    expected = _ORIENT_CV[orientation](_whole_delta(upright))
    got = _whole_delta(turned)
    assert np.abs(expected).max() > 0.3                       # there is rounding to undo
    assert np.allclose(got, expected, atol=2e-3)


def test_photos_that_are_not_plain_jpegs_keep_their_decoded_colour():
    rgb = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    png, grey = io.BytesIO(), io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    Image.fromarray(rgb[..., 0]).save(grey, "JPEG", quality=90)
    assert load_photo(png.getvalue()).chroma is None
    assert load_photo(grey.getvalue()).chroma is None


def test_an_analysis_says_where_its_colour_was_read():
    """A JPEG's analysis reads the file's chroma; the same pixels as PNG, the decode."""
    from analyzer.pipeline import analyze

    data = open("sample_images/astronaut_face.jpg", "rb").read()
    png = io.BytesIO()
    Image.open(io.BytesIO(data)).save(png, "PNG")
    assert analyze(data).result.settings["chroma"] == "jpeg coefficients"
    assert analyze(png.getvalue()).result.settings["chroma"] == "decoded pixels"
