"""Sanitized copy of an uploaded photo: what the store keeps as "the original".

Photos are personal health data; the metadata cameras and phones add (GPS
position, XMP, maker notes, comments, thumbnails, IPTC) is not needed to
measure skin and must not reach the disk.

Choice (documented in README "Data storage"):

* **JPEG** — a segment-level rewrite.  The compressed image data (quantisation
  and Huffman tables, frame and scan headers, entropy-coded scans) is copied
  bit for bit, so decoding gives exactly the same pixels.  Kept: JFIF APP0,
  ICC profile APP2 (colour), Adobe APP14 (colour transform).  Dropped: every
  other APPn (EXIF with GPS and maker notes, XMP, MPF, IPTC/APP13, ...), COM
  comments and anything after the end-of-image marker (MPO second images,
  vendor trailers).  A new minimal EXIF APP1 is written with only the
  orientation, DateTimeOriginal, camera make/model and ISO, so re-reading
  the stored copy gives the same upright pixels and capture information.
* **Other formats** (PNG, WebP, TIFF, HEIC) — a lossless PNG of the decoded
  pixels (orientation applied, sRGB, 8-bit RGB, as :mod:`analyzer.intake`
  produces them) with the same minimal EXIF (orientation 1).

The stored copy is never modified afterwards.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image

from .errors import IntakeError
from .intake import (EXIF_IFD, TAG_DATETIME_ORIGINAL, TAG_ISO, TAG_MODEL, TAG_ORIENTATION,
                     CaptureInfo)

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
_KEEP_APP = {
    0xE0: (b"JFIF\x00",),
    0xE2: (b"ICC_PROFILE\x00",),
    0xEE: (b"Adobe",),
}


@dataclass(frozen=True)
class SanitizedPhoto:
    """The bytes to store and what was done to them.

    Attributes
    ----------
    data : bytes
        The sanitized file.
    media_type : str
        ``"image/jpeg"`` or ``"image/png"``.
    extension : str
        ``".jpg"`` or ``".png"``.
    method : str
        ``"jpeg-segments"`` (compressed data kept) or ``"png-lossless"``.
    dropped : list of str
        Names of the removed segments (e.g. ``"APP1 Exif"``, ``"COM"``).
    """

    data: bytes
    media_type: str
    extension: str
    method: str
    dropped: list[str] = field(default_factory=list)


def sanitize_photo(data: bytes, info: CaptureInfo, pixels=None) -> SanitizedPhoto:
    """Make the copy of an upload that may be stored.

    Parameters
    ----------
    data : bytes
        The upload as received (already accepted by :func:`intake.load_photo`).
    info : CaptureInfo
        Its capture metadata from intake (orientation, capture time, camera).
    pixels : numpy.ndarray, optional
        Decoded RGB pixels from intake; needed for non-JPEG input.

    Raises
    ------
    IntakeError
        The JPEG structure is damaged, or pixels are missing for non-JPEG input.
    """
    if data[:3] == b"\xff\xd8\xff":
        out, dropped = sanitize_jpeg(data, minimal_exif(info, info.orientation))
        return SanitizedPhoto(out, "image/jpeg", ".jpg", "jpeg-segments", dropped)
    if pixels is None:
        raise IntakeError("internal: decoded pixels are needed to store a non-JPEG photo")
    img = Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=_exif_object(info, orientation=1))
    return SanitizedPhoto(buf.getvalue(), "image/png", ".png", "png-lossless",
                          [f"all {info.format} metadata"])


def sanitize_jpeg(data: bytes, exif_app1: bytes | None = None) -> tuple[bytes, list[str]]:
    """Rewrite a JPEG keeping its image data and only harmless segments.

    Parameters
    ----------
    data : bytes
        A JPEG file.
    exif_app1 : bytes, optional
        Payload of a new APP1 segment (``b"Exif\\0\\0" + TIFF``) to insert.

    Returns
    -------
    bytes, list of str
        The new file and the names of the dropped segments.
    """
    if data[:2] != b"\xff\xd8":
        raise IntakeError("not a JPEG file")
    out = bytearray(b"\xff\xd8")
    dropped: list[str] = []
    pos, n = 2, len(data)
    exif_written = exif_app1 is None
    in_scan = False
    while pos < n:
        if in_scan:
            # Entropy-coded data: copy up to the next real marker.
            start = pos
            while True:
                ff = data.find(b"\xff", pos)
                if ff < 0 or ff + 1 >= n:
                    raise IntakeError("the JPEG is truncated (no end-of-image marker)")
                nxt = data[ff + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    pos = ff + 2
                    continue
                if nxt == 0xFF:  # fill byte before a marker
                    pos = ff + 1
                    continue
                break
            out += data[start:ff]
            pos = ff
            in_scan = False
        if data[pos] != 0xFF:
            raise IntakeError("the JPEG structure is damaged (expected a marker)")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise IntakeError("the JPEG is truncated")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out += b"\xff\xd9"
            if pos < n:
                dropped.append(f"{n - pos} bytes after end of image")
            return bytes(out), dropped
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > n:
            raise IntakeError("the JPEG is truncated")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2 or pos + length > n:
            raise IntakeError("the JPEG is truncated or a segment length is damaged")
        segment = data[pos - 2:pos + length]
        payload = data[pos + 2:pos + length]
        pos += length
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            if _keep_app(marker, payload):
                out += segment
            else:
                dropped.append(_segment_name(marker, payload))
            continue
        if not exif_written:
            out += _app1(exif_app1)
            exif_written = True
        out += segment
        if marker == _SOS:
            in_scan = True
    raise IntakeError("the JPEG is truncated (no end-of-image marker)")


def minimal_exif(info: CaptureInfo, orientation: int) -> bytes:
    """APP1 payload with only orientation, DateTimeOriginal, camera and ISO."""
    return _exif_object(info, orientation).tobytes()


def _exif_object(info: CaptureInfo, orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[TAG_ORIENTATION] = int(orientation)
    if info.camera:
        exif[TAG_MODEL] = info.camera  # model field carries "make model"
    if info.captured_at:
        stamp = datetime.fromisoformat(info.captured_at).strftime("%Y:%m:%d %H:%M:%S")
        exif.get_ifd(EXIF_IFD)[TAG_DATETIME_ORIGINAL] = stamp
    if info.iso:
        exif.get_ifd(EXIF_IFD)[TAG_ISO] = int(info.iso)
    return exif


def _app1(payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise IntakeError("internal: minimal EXIF too large")
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _keep_app(marker: int, payload: bytes) -> bool:
    return any(payload.startswith(p) for p in _KEEP_APP.get(marker, ()))


def _segment_name(marker: int, payload: bytes) -> str:
    if marker == 0xFE:
        return "COM"
    ident = payload[:12].split(b"\x00", 1)[0].decode("latin-1", "replace")
    ident = "".join(c for c in ident if c.isprintable())[:30]
    return f"APP{marker - 0xE0} {ident}".strip()
