"""Sanitized copies: JPEG image data kept bit for bit, personal metadata gone."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from analyzer.errors import IntakeError
from analyzer.intake import load_photo
from analyzer.sanitize import sanitize_jpeg, sanitize_photo
from test_store_support import FACE, exif_with, jpeg_bytes

SECRETS = (b"GPSSECRET", b"XMP-SECRET", b"COMMENT-SECRET", b"DESC-SECRET", b"IPTC-SECRET")


def _scan_data(jpeg: bytes) -> bytes:
    """From the first SOS marker to EOI: the compressed image."""
    start = jpeg.index(b"\xff\xda")
    return jpeg[start:jpeg.rindex(b"\xff\xd9") + 2]


def _with_app13(jpeg: bytes) -> bytes:
    payload = b"Photoshop 3.0\x00IPTC-SECRET"
    seg = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + seg + jpeg[2:]


def test_jpeg_drops_gps_xmp_comments_keeps_pixels_orientation_time():
    data = jpeg_bytes(7, size=96, exif=exif_with("2026:03:14 10:20:30", gps=True,
                                                 orientation=6, secret="DESC-SECRET", iso=400),
                      comment=b"COMMENT-SECRET", xmp=b"<x:xmpmeta>XMP-SECRET</x:xmpmeta>")
    data = _with_app13(data) + b"TRAILER GPSSECRET"  # vendor trailer after EOI
    before = load_photo(data)
    out = sanitize_photo(data, before.info, before.pixels)
    assert out.method == "jpeg-segments" and out.media_type == "image/jpeg"
    for secret in SECRETS:
        assert secret in data and secret not in out.data, secret
    assert any(d.startswith("APP1") for d in out.dropped) and "COM" in out.dropped
    assert _scan_data(out.data) == _scan_data(data[:data.rindex(b"\xff\xd9") + 2])
    after = load_photo(out.data)
    assert np.array_equal(before.pixels, after.pixels)
    assert (after.info.orientation, after.info.captured_at, after.info.camera, after.info.iso) == (
        6, "2026-03-14T10:20:30", "TestMake TestCam", 400)
    exif = Image.open(io.BytesIO(out.data)).getexif()
    assert 0x8825 not in exif and not exif.get_ifd(0x8825)


def test_icc_profile_is_kept():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = jpeg_bytes(3, icc_profile=icc, exif=exif_with(gps=True))
    before = load_photo(data)
    out = sanitize_photo(data, before.info, before.pixels)
    assert Image.open(io.BytesIO(out.data)).info.get("icc_profile") == icc
    assert b"GPSSECRET" not in out.data


def test_real_photo_progressive_and_restart_markers():
    src = Image.open(FACE)
    for kw in ({"progressive": True}, {"restart_marker_blocks": 2}):
        buf = io.BytesIO()
        src.save(buf, format="JPEG", quality=85, exif=exif_with(gps=True), **kw)
        data = buf.getvalue()
        before = load_photo(data)
        out = sanitize_photo(data, before.info, before.pixels)
        assert b"GPSSECRET" not in out.data
        assert np.array_equal(before.pixels, load_photo(out.data).pixels)


def test_other_formats_become_lossless_png_without_metadata():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "COMMENT-SECRET")
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=meta, exif=exif_with("2026:01:02 03:04:05", gps=True))
    data = buf.getvalue()
    before = load_photo(data)
    out = sanitize_photo(data, before.info, before.pixels)
    assert out.media_type == "image/png" and out.method == "png-lossless"
    assert b"COMMENT-SECRET" not in out.data and b"GPSSECRET" not in out.data
    after = load_photo(out.data)
    assert np.array_equal(before.pixels, after.pixels)
    assert after.info.captured_at == "2026-01-02T03:04:05"


def test_damaged_jpeg_is_refused():
    data = jpeg_bytes(1)
    with pytest.raises(IntakeError, match="truncated"):
        sanitize_jpeg(data[: len(data) // 2])
    with pytest.raises(IntakeError):
        sanitize_jpeg(b"\xff\xd8\xff\xe1\x00")
