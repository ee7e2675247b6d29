import io
import struct

import numpy as np
import pytest
from PIL import Image

from analyzer.config import Settings
from analyzer.errors import IntakeError
from analyzer.intake import load_photo


def marker_image(w=60, h=40) -> np.ndarray:
    """An asymmetric image: red block at top-left, so orientation is visible."""
    img = np.full((h, w, 3), 200, np.uint8)
    img[:10, :20] = (255, 0, 0)
    return img


def encode(arr, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "HEIF"])
def test_formats_decode_to_rgb_uint8(fmt):
    arr = marker_image()
    photo = load_photo(encode(arr, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP", "HEIF") else {})))
    assert photo.pixels.dtype == np.uint8 and photo.pixels.shape == (40, 60, 3)
    assert photo.info.format in (fmt, "HEIF")
    assert np.abs(photo.pixels.astype(int) - arr).mean() < 6


# EXIF orientation -> numpy operation that undoes it (PIL's exif_transpose semantics)
ORIENTATIONS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.transpose(a, (1, 0, 2))[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_applied(orientation):
    arr = marker_image()
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = load_photo(encode(arr, "PNG", exif=exif.tobytes()))
    expected = ORIENTATIONS[orientation](arr)
    assert photo.pixels.shape == expected.shape
    np.testing.assert_array_equal(photo.pixels, expected)
    assert photo.info.orientation == orientation


def _pillow_reference(data: bytes) -> np.ndarray:
    from PIL import ImageOps

    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_jpeg_fast_path_matches_pillow_with_orientation(orientation):
    """Plain JPEGs are decoded by OpenCV: same pixels as Pillow, orientation applied."""
    rng = np.random.default_rng(orientation)
    arr = np.clip(marker_image(90, 50).astype(int) + rng.normal(0, 25, (50, 90, 3)), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(arr, "JPEG", quality=90, exif=exif.tobytes())
    photo = load_photo(data)
    assert photo.pixels.flags.c_contiguous and photo.info.orientation == orientation
    np.testing.assert_array_equal(photo.pixels, _pillow_reference(data))


@pytest.mark.parametrize("options", [{"subsampling": 0}, {"subsampling": 1}, {"subsampling": 2},
                                     {"progressive": True}, {"quality": 60, "optimize": True}])
def test_jpeg_fast_path_matches_pillow_encodings(options):
    from PIL import ImageCms

    rng = np.random.default_rng(7)
    arr = np.clip(rng.normal(128, 60, (64, 96, 3)), 0, 255).astype(np.uint8)
    for extra in ({}, {"icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()}):
        data = encode(arr, "JPEG", **options, **extra)
        photo = load_photo(data)
        np.testing.assert_array_equal(photo.pixels, _pillow_reference(data))
        assert (photo.info.colour_profile is not None) == bool(extra)


def test_truncated_jpeg_with_end_marker_before_the_scan_is_refused():
    """An end-of-image marker inside metadata (e.g. an EXIF thumbnail) does not make a cut file whole."""
    data = encode(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8), "JPEG")
    comment = b"thumbnail \xff\xd8 ... \xff\xd9"
    data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]
    with pytest.raises(IntakeError, match="truncated or damaged"):
        load_photo(data[: len(data) // 2])


def test_capture_time_and_camera_kept_location_dropped():
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS R6"
    exif.get_ifd(0x8769)[0x9003] = "2026:03:14 09:26:53"
    exif.get_ifd(0x8769)[0x8827] = 640                # ISO
    exif.get_ifd(0x8825)[2] = (52.0, 22.0, 1.5)  # GPSLatitude
    exif.get_ifd(0x8825)[1] = "N"
    data = encode(marker_image(), "JPEG", exif=exif.tobytes())
    assert b"EOS R6" in data
    photo = load_photo(data)
    assert photo.info.captured_at == "2026-03-14T09:26:53"
    assert photo.info.camera == "Canon EOS R6"
    assert photo.info.iso == 640
    text = repr(photo.info.to_dict()).lower()
    assert "gps" not in text and "52.0" not in text


def test_sixteen_bit_grey_png():
    grey = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    photo = load_photo(encode(grey, "PNG"))
    assert photo.pixels.shape == (32, 64, 3) and photo.pixels.dtype == np.uint8
    assert photo.pixels[0, 0, 0] == 0 and photo.pixels[-1, -1, 0] == 255
    assert photo.info.source_mode.startswith("I")


def test_grayscale_cmyk_palette_and_alpha():
    grey = load_photo(encode(np.full((20, 20), 90, np.uint8), "PNG"))
    assert (grey.pixels == 90).all()
    cmyk_img = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # pure red in CMYK
    buf = io.BytesIO()
    cmyk_img.save(buf, "JPEG", quality=95)
    red = load_photo(buf.getvalue()).pixels
    assert red[..., 0].mean() > 200 and red[..., 1].mean() < 60
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent -> white background
    flat = load_photo(encode(rgba, "PNG")).pixels
    assert (flat == 255).all()
    pal = Image.fromarray(marker_image()).convert("P", palette=Image.Palette.ADAPTIVE)
    buf = io.BytesIO()
    pal.save(buf, "PNG")
    assert load_photo(buf.getvalue()).pixels.shape == (40, 60, 3)


def test_missing_file(tmp_path):
    with pytest.raises(IntakeError, match="file not found"):
        load_photo(tmp_path / "nope.jpg")


def test_folder_is_not_a_photo(tmp_path):
    with pytest.raises(IntakeError, match="is a folder"):
        load_photo(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(IntakeError, match="empty"):
        load_photo(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("patient notes, not a photo\n" * 20)
    with pytest.raises(IntakeError, match="not an image"):
        load_photo(p)


def test_truncated_jpeg():
    data = encode(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8), "JPEG")
    with pytest.raises(IntakeError, match="truncated or damaged"):
        load_photo(data[: len(data) // 2])


def test_file_too_large(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(encode(marker_image(), "PNG"))
    with pytest.raises(IntakeError, match="file is too large"):
        load_photo(p, Settings(max_file_bytes=100))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb's first bytes)."""
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding():
    with pytest.raises(IntakeError, match="too large|too many pixels"):
        load_photo(png_header_only(50_000, 50_000))
    with pytest.raises(IntakeError, match="too large"):
        load_photo(png_header_only(3000, 3000), Settings(max_pixels=1_000_000))


def test_unsupported_format():
    buf = io.BytesIO()
    Image.fromarray(marker_image()).save(buf, "GIF")
    with pytest.raises(IntakeError, match="not supported"):
        load_photo(buf.getvalue())


def test_display_p3_profile_converted_to_srgb():
    """A P3-tagged colour lands where the P3 → sRGB matrix puts it (not left as is)."""
    from icc_profiles import display_p3_like

    p3 = np.array([200, 100, 50], np.uint8)
    data = encode(np.tile(p3, (32, 32, 1)), "PNG", icc_profile=display_p3_like(2.2))
    photo = load_photo(data)
    assert photo.info.colour_profile == "Display P3 (test)"
    got = photo.pixels[16, 16].astype(float)
    # expected: gamma 2.2 decode, P3-D65 -> sRGB-linear matrix, sRGB encode
    lin = (p3 / 255.0) ** 2.2
    m = np.array([[1.2249, -0.2247, 0.0], [-0.0420, 1.0419, 0.0], [-0.0197, -0.0786, 1.0979]])
    srgb_lin = np.clip(m @ lin, 0, 1)
    expected = 255 * np.where(srgb_lin <= 0.0031308, 12.92 * srgb_lin,
                              1.055 * srgb_lin ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(got, expected, atol=4)
    assert np.abs(got - p3).max() > 8  # the conversion did something


@pytest.mark.parametrize("quality,subsampling,expected", [
    (95, 2, "4:2:0"), (85, 2, "4:2:0"), (90, 0, "4:4:4"), (50, 1, "4:2:2"), (30, 2, "4:2:0")])
def test_jpeg_quality_and_colour_resolution_are_read_from_the_headers(quality, subsampling, expected):
    rng = np.random.default_rng(quality)
    rgb = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    info = load_photo(buf.getvalue()).info
    assert (info.jpeg_quality, info.chroma_subsampling) == (quality, expected)
    again = io.BytesIO()
    Image.fromarray(255 - rgb).save(again, "JPEG", quality=quality, subsampling=subsampling)
    assert load_photo(again.getvalue()).info.jpeg_tables == info.jpeg_tables   # same tables, other pixels
    other = io.BytesIO()
    Image.fromarray(rgb).save(other, "JPEG", quality=quality - 1, subsampling=subsampling)
    assert load_photo(other.getvalue()).info.jpeg_tables not in (None, info.jpeg_tables)
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    info = load_photo(png.getvalue()).info
    assert (info.jpeg_quality, info.chroma_subsampling, info.jpeg_tables) == (None, None, None)
