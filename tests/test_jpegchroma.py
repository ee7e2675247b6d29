"""The chroma a JPEG holds, recovered from its 8-bit decode (analyzer.jpegchroma)."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from analyzer.intake import _ORIENT_CV, load_photo
from analyzer.jpegchroma import _CHROMA_TO_RGB, _TO_CHROMA, exact_chroma
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


def _blockwise_reference(rgb, box, coding):
    """exact_chroma as first written, block by block (BLAS, gathered blocks): what the
    fast version must reproduce number for number."""
    (sx, sy), (ox, oy), swap = coding.block_grid()
    bx, by = 8 * sx, 8 * sy
    H, W = rgb.shape[:2]
    x0, y0 = max(ox, ox + bx * ((box[0] - ox) // bx - 1)), max(oy, oy + by * ((box[1] - oy) // by - 1))
    x1 = min(ox + bx * ((W - ox) // bx), ox + bx * (-(-(box[2] - ox) // bx) + 1))
    y1 = min(oy + by * ((H - oy) // by), oy + by * (-(-(box[3] - oy) // by) + 1))
    patch, ns = rgb[y0:y1, x0:x1], ((x1 - x0) // sx, (y1 - y0) // sy)
    means = patch.astype(np.float32)
    if (sx, sy) != (1, 1):
        means = cv2.resize(np.left_shift(patch, 6, dtype=np.uint16), ns, interpolation=cv2.INTER_AREA)
        means = means.astype(np.float32) * np.float32(1 / 64)
    chroma = means.reshape(-1, 3) @ _TO_CHROMA.T

    def dct(blocks, flags):
        n = len(blocks)
        rows = cv2.dct(np.ascontiguousarray(blocks).reshape(n * 8, 8), flags=flags).reshape(n, 8, 8)
        return cv2.dct(np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(n * 8, 8), flags=flags) \
            .reshape(n, 8, 8).transpose(0, 2, 1)

    def plane(c, table):
        x = m = np.ascontiguousarray(chroma[:, c].reshape(ns[1], ns[0]))
        for on, k in ((sx > 1, np.float32([[-1 / 6, 0, -1 / 6]])), (sy > 1, np.float32([[-1 / 6], [0], [-1 / 6]]))):
            if on:
                t = m * np.float32(8 / 6)
                for _ in range(6):
                    x = t + cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REPLICATE)
                m = x
        h, w = m.shape
        blocks = np.ascontiguousarray(m.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)).reshape(-1, 8, 8)
        coef = dct(blocks, cv2.DCT_ROWS)
        levels = np.rint(coef / table) * table
        rebuilt = dct(levels, cv2.DCT_ROWS | cv2.DCT_INVERSE)
        step = float(table[0, 0])
        flat = ~levels.reshape(-1, 64)[:, 1:].any(axis=-1)
        dc = levels[:, 0, 0].copy()
        v = np.floor(coef[flat, 0, 0] / 8 + 0.5)
        lo, hi = np.ceil((v - 0.5) * 8 / step), np.ceil((v + 0.5) * 8 / step) - 1
        dc[flat] = np.where(hi >= lo, 0.5 * (lo + hi) * step, dc[flat])
        r = np.rint(blocks[~flat]) - rebuilt[~flat]
        d = np.float32(step / 8)
        first = np.clip(np.ceil((r - 0.5) / d), -3, 3)
        last = np.clip(np.ceil((r + 0.5) / d) - 1, -3, 3)
        shifts = np.arange(-2, 3)
        miss = np.stack([64 - np.count_nonzero((first <= s) & (last >= s), axis=(1, 2)) for s in shifts])
        ok = miss <= miss.min(axis=0) + 1
        dc[~flat] += step * (ok * shifts[:, None]).sum(axis=0) / ok.sum(axis=0)
        rebuilt += ((dc - levels[:, 0, 0]) / 8)[:, None, None]
        return np.ascontiguousarray(rebuilt.reshape(h // 8, w // 8, 8, 8).transpose(0, 2, 1, 3)).reshape(h, w)

    tables = [np.asarray(t, np.float32).reshape(8, 8) for t in (coding.cb_table, coding.cr_table)]
    exact = np.dstack([plane(c, tables[c].T if swap else tables[c]) for c in (0, 1)])
    clipped = cv2.inRange(patch, (1, 1, 1), (254, 254, 254)) == 0
    blocks = cv2.resize(clipped.view(np.uint8) * np.uint8(255), (ns[0] // 8, ns[1] // 8),
                        interpolation=cv2.INTER_AREA) > 0
    exact[np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)] = np.nan
    return exact, (x0, y0)


@pytest.mark.parametrize("quality, subsampling, orientation, size",
                         [(85, 2, 1, (157, 213)), (95, 2, 6, (157, 213)), (90, 0, 3, (157, 213)),
                          (92, 1, 8, (157, 213)), (90, 2, 1, (16, 16))])
def test_the_chroma_is_the_blockwise_reference_number_for_number(quality, subsampling, orientation, size,
                                                                 monkeypatch):
    """The banded, transposed, table-counted exact_chroma gives the samples of the
    plain block-by-block computation, and its reader the deltas of BLAS's."""
    monkeypatch.setattr("analyzer.jpegchroma._JACOBI_ROWS", 24)   # several bands
    rng = np.random.default_rng(quality)
    y, x = np.mgrid[0:size[0], 0:size[1]].astype(np.float32)
    rgb = np.dstack([120 + 40 * np.sin(x / 9), 80 + 0.3 * y, 60 + 20 * np.cos((x + y) / 13)])
    rgb = np.clip(np.round(rgb + rng.normal(0, 2.0, rgb.shape)), 0, 255).astype(np.uint8)
    rgb[20:60, 30:90] = (2, 2, 3)            # flat, and Cb exactly 1/2: the decode's rounding ties
    rgb[100:130, 150:200] = 255              # clipped
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling, exif=exif)
    photo = load_photo(buf.getvalue())
    h, w = photo.pixels.shape[:2]
    for box in [(0, 0, w, h), (37, 21, w - 45, h - 30)][:1 + (w > 100)]:
        got = exact_chroma(photo.pixels, box, photo.chroma)
        want, origin = _blockwise_reference(photo.pixels, box, photo.chroma)
        assert got.origin == origin
        assert np.array_equal(got.samples, want, equal_nan=True)
    ys, xs = rng.uniform(-5, h + 5, 5000), rng.uniform(-5, w + 5, 5000)
    values = photo.pixels[np.clip(ys, 0, h - 1).astype(int), np.clip(xs, 0, w - 1).astype(int)]
    (sx, sy), (ox, oy) = got.factor, got.origin
    u = ((xs.astype(np.float32) - ox + 0.5) / sx - 0.5).reshape(1, -1)
    v = ((ys.astype(np.float32) - oy + 0.5) / sy - 0.5).reshape(1, -1)
    file = cv2.remap(got.samples, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=(np.nan, np.nan)).reshape(-1, 2)
    blas = np.nan_to_num((file - values.astype(np.float32) @ _TO_CHROMA.T) @ _CHROMA_TO_RGB.T, nan=0.0)
    assert np.array_equal(got.rgb_delta_at(values, ys, xs), blas)
