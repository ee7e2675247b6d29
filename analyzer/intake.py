"""Photo intake: decode a file into an RGB ``uint8`` array plus capture metadata.

Handles JPEG, PNG, WebP, TIFF and HEIC/HEIF; applies EXIF orientation;
converts embedded colour profiles (Display P3, Adobe RGB, CMYK...) to sRGB;
flattens alpha; reduces 16-bit and grayscale images to 8-bit RGB.  Size limits
are checked before any pixel is decoded.  Location (GPS) and other personal
metadata are never read out: only capture time, camera make/model, ISO and the
orientation survive into :class:`CaptureInfo`.

Hostile input (OWASP file-upload guidance; README "Accounts and access"):

* the format is sniffed from the content by the decoders of the supported
  formats only (the file name and extension are never used); any other
  format is refused before a decoder for it could run;
* empty files, files over ``max_file_bytes`` and headers declaring more than
  ``max_pixels``, fewer than 16 px a side or an aspect ratio beyond
  ``MAX_ASPECT`` are refused before any pixel is decoded (decompression bombs);
  so are JPEGs with more than ``MAX_JPEG_SCANS`` scans (progressive-scan CPU bombs);
* polyglots are refused: a file that is also a ZIP archive (end-of-central-
  directory record, e.g. a JAR or DOCX appended), that carries HTML, SVG,
  script or PHP markup anywhere (e.g. in a comment, in EXIF or appended),
  or a PDF header in its first KiB.  Other bytes after the image (phone
  trailers, MPO second images) are accepted and never stored (the sanitizer
  drops them);
* animated PNG and WebP are refused (a photo is one still image); of
  multi-image MPO, TIFF and HEIF files the first (primary) image is used;
* damaged EXIF is ignored (orientation 1, no capture time or camera) with a
  log warning that carries no data from the file;
* any failure inside a decoder becomes an :class:`IntakeError`.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .config import Settings
from .errors import IntakeError
from .jpegchroma import ChromaCoding

try:  # HEIC/HEIF from phones; registering the opener is idempotent.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is pinned in requirements
    pillow_heif = None

EXIF_IFD = 0x8769
TAG_ORIENTATION = 0x0112
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
TAG_DATETIME = 0x0132
TAG_DATETIME_ORIGINAL = 0x9003
TAG_ISO = 0x8827   # PhotographicSensitivity (ISOSpeedRatings before EXIF 2.3), in the EXIF IFD
SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "HEIF", "MPO"}
_DECODERS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF")  # MPO is opened by the JPEG plugin
MAX_ASPECT = 10.0
MAX_JPEG_SCANS = 100
_MARKUP = re.compile(rb"<\s*(?:script|html|body|svg|iframe|object|embed|!doctype)\b|<\?php"
                     rb"|javascript:", re.IGNORECASE)
_ORIENT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
           6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
log = logging.getLogger(__name__)
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class CaptureInfo:
    """What intake keeps of a photo's metadata (never location).

    Attributes
    ----------
    sha256 : str
        Hash of the file bytes as received.
    format : str
        Container format reported by the decoder (``"JPEG"``, ``"HEIF"``...).
    width, height : int
        Size after orientation was applied, in pixels.
    captured_at : str or None
        EXIF DateTimeOriginal as ISO 8601 (local camera time), if present.
    camera : str or None
        Camera make and model, if present.
    iso : int or None
        EXIF ISO sensitivity (PhotographicSensitivity), if present: a higher ISO
        means more sensor noise, which reads as texture.
    orientation : int
        EXIF orientation that was applied (1 = none).
    colour_profile : str or None
        Description of the embedded ICC profile converted to sRGB.
    source_mode : str
        Pixel mode before conversion (``"RGB"``, ``"I;16"``, ``"CMYK"``...).
    """

    sha256: str
    format: str
    width: int
    height: int
    captured_at: str | None
    camera: str | None
    orientation: int
    colour_profile: str | None
    source_mode: str
    jpeg_quality: int | None = None         # IJG-equivalent quality of the luminance table (JPEG only)
    chroma_subsampling: str | None = None   # "4:4:4", "4:2:2" or "4:2:0" (JPEG only)
    jpeg_tables: str | None = None          # fingerprint of all quantisation tables (JPEG only)
    iso: int | None = None                  # EXIF ISO sensitivity

    def to_dict(self) -> dict:
        return asdict(self)


# Luminance quantisation table of the JPEG standard (ITU-T T.81 Annex K, natural order)
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)
_IJG_QUALITIES = np.arange(1, 101)
_IJG_TABLES = np.clip(np.floor((_STD_LUMA[None, :] * np.where(
    _IJG_QUALITIES < 50, 5000.0 / _IJG_QUALITIES, 200.0 - 2.0 * _IJG_QUALITIES)[:, None] + 50) / 100), 1, 255)
_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def jpeg_settings(img: Image.Image) -> tuple[int | None, str | None, str | None]:
    """``(quality, chroma subsampling, tables fingerprint)`` a JPEG was saved with,
    from its headers.

    The quality is the IJG (libjpeg) quality whose scaled standard luminance
    table is closest to the file's; for encoders with their own tables (many
    phones) it is the nearest equivalent, so two photos of the same nearest
    quality may still differ.  The fingerprint (16 hex digits of a SHA-256 of
    every quantisation table, in order) tells whether they were quantised
    identically.  ``(None, None, None)`` for other formats.
    """
    from PIL import JpegImagePlugin

    if img.format != "JPEG":
        return None, None, None
    tables = getattr(img, "quantization", None) or {}
    quality = None
    if 0 in tables and len(tables[0]) == 64:
        err = np.abs(_IJG_TABLES - np.asarray(tables[0], np.float64)[None, :]).sum(axis=1)
        quality = int(_IJG_QUALITIES[int(np.argmin(err))])
    return quality, _SUBSAMPLING.get(JpegImagePlugin.get_sampling(img)), _fingerprint(tables)


def _fingerprint(tables: dict) -> str | None:
    """16 hex digits of a SHA-256 of quantisation tables ``{slot: 64 values}``, in slot order."""
    if not tables:
        return None
    packed = b"".join(bytes([k]) + np.asarray(tables[k], np.uint16).tobytes() for k in sorted(tables))
    return hashlib.sha256(packed).hexdigest()[:16]


@dataclass(frozen=True)
class Photo:
    """A decoded photo: ``pixels`` is RGB ``uint8`` of shape (H, W, 3); ``chroma``: how
    its JPEG coded the chroma those pixels were decoded from (``None``: not a plain
    sRGB JPEG), so the metrics can read it without the decode's rounding
    (:mod:`analyzer.jpegchroma`)."""

    pixels: np.ndarray
    info: CaptureInfo
    chroma: ChromaCoding | None = None


def load_photo(source: str | Path | bytes, settings: Settings | None = None) -> Photo:
    """Decode a photo file or its bytes.

    Parameters
    ----------
    source : path or bytes
        The file to read, or its content (e.g. a browser upload).
    settings : Settings, optional
        Size limits; defaults to :class:`Settings()`.

    Returns
    -------
    Photo
        RGB ``uint8`` pixels, orientation applied, in sRGB, plus metadata.

    Raises
    ------
    IntakeError
        Missing file, too large, not an image, unsupported or damaged file.
    """
    settings = settings or Settings()
    data = _read_bytes(source, settings.max_file_bytes)
    _refuse_polyglot(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd EXIF, truncation...
            return _decode(data, settings)
    except IntakeError:
        raise
    except MemoryError:
        raise IntakeError("the image needs more memory to decode than is available; "
                          "export it at a smaller size") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise IntakeError(f"the image data is truncated or damaged ({_reason(exc)}); "
                          "export or copy the photo again") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on hostile input
        raise IntakeError(f"the image data is damaged ({exc.__class__.__name__}); "
                          "export or copy the photo again") from None


def _decode(data: bytes, settings: Settings) -> Photo:
    img = _open_checked(data, settings.max_pixels)
    orientation, captured_at, camera, iso = _read_exif(img)
    jpeg_quality, chroma, tables = jpeg_settings(img)
    source_mode = img.mode
    fmt = img.format
    pixels, profile = _decode_plain_jpeg(data, img, orientation)
    coding = None if pixels is None else ChromaCoding.of(img, orientation)
    if pixels is None:
        img.load()
        if orientation in _ORIENT:
            img = img.transpose(_ORIENT[orientation])
        img, profile = _to_srgb(img)
        pixels = _to_rgb8(img)
    info = CaptureInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        format=str(fmt or _format_of(data)),
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        captured_at=captured_at,
        camera=camera,
        iso=iso,
        orientation=orientation,
        colour_profile=profile,
        source_mode=source_mode,
        jpeg_quality=jpeg_quality,
        chroma_subsampling=chroma,
        jpeg_tables=tables,
    )
    return Photo(pixels=pixels, info=info, chroma=coding)


# EXIF orientation as OpenCV operations on an (H, W, 3) array, the same
# transforms as :data:`_ORIENT` (ROTATE_270 is 90° clockwise).
_ORIENT_CV = {2: lambda a: cv2.flip(a, 1), 3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
              4: lambda a: cv2.flip(a, 0), 5: cv2.transpose,
              6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
              7: lambda a: cv2.flip(cv2.transpose(a), -1),
              8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)}


def _decode_plain_jpeg(data: bytes, img: Image.Image,
                       orientation: int) -> tuple[np.ndarray | None, str | None]:
    """Pixels of an ordinary 3-channel sRGB JPEG decoded by OpenCV, or ``None``.

    Pillow decodes as fast as ``cv2.imdecode`` but handing its pixels to numpy
    (``tobytes``) costs as much again, so a 12 MP JPEG took 2× its decode
    time.  Both link libjpeg(-turbo) with the same defaults (ISLOW DCT, fancy
    upsampling) and give the same pixels.  Only the plain case takes this
    path: JPEG/MPO (first image), mode RGB, no colour profile or an sRGB one,
    and an end-of-image marker after the first scan (a truncated file is
    refused by Pillow; OpenCV 5 refuses it too, older versions pad it with
    grey).  Anything else, or a decode that fails or disagrees with the
    header's size, returns ``None`` and goes through Pillow, so refusals and
    their messages stay Pillow's.  One known difference: a damaged file that
    OpenCV's libjpeg decodes with warnings (e.g. a progressive JPEG whose
    frame marker was flipped to baseline) is accepted as damaged pixels where
    Pillow refused it; like other damaged pixels it then finds no face.

    Returns
    -------
    pixels : ndarray or None
        RGB ``uint8`` with the EXIF ``orientation`` applied.
    profile : str or None
        Description of an embedded sRGB ICC profile.
    """
    if img.format not in ("JPEG", "MPO") or img.mode != "RGB":
        return None, None
    profile = None
    if img.info.get("icc_profile"):
        _, profile = _icc_profile(img)
        if profile is not None and "srgb" not in profile.lower():
            return None, None  # needs a colour conversion: Pillow's ImageCms path
    scan = _first_scan(data)
    if scan < 0 or data.find(b"\xff\xd9", scan) < 0:
        return None, None
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8),
                          cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None or pixels.shape != (img.height, img.width, 3):
        return None, None
    if orientation in _ORIENT_CV:
        pixels = _ORIENT_CV[orientation](pixels)
    return pixels, profile


def _first_scan(data: bytes) -> int:
    """Offset of the first start-of-scan segment of a JPEG (``-1`` if none)."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xDA:
            return pos
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return -1


def _reason(exc: BaseException) -> str:
    """A short, printable reason (no file bytes echoed into messages or logs)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    text = "".join(c if c.isprintable() and ord(c) < 128 else "?" for c in text)
    return re.sub(r"b'[^']*'|b\"[^\"]*\"", "…", text)[:120]


_OTHER_MAGIC = ((b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"8BPS", "PSD"),
                (b"\x00\x00\x01\x00", "ICO"), (b"%!PS", "EPS"), (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
                (b"\xffO\xffQ", "JPEG 2000"), (b"\xff\x0a", "JPEG XL"), (b"qoif", "QOI"))


def _other_format(data: bytes) -> str | None:
    """Name of a known image format we do not decode (by its magic bytes)."""
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return name
    return None


def _markup_zones(data: bytes) -> list[bytes]:
    """The parts of a file where markup could hide: header, metadata and trailing bytes.

    Compressed pixel data (JPEG scans, PNG IDAT, WebP bitstreams) is left out:
    it is random-looking, so a short pattern such as ``<svg`` turns up in it by
    chance (about one 12 MP JPEG in 600), and no browser or interpreter reads
    markup from inside it.  For formats not parsed here the first and last 4 KiB
    are scanned.
    """
    zones = [data[:1024]]
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            length = int.from_bytes(data[pos + 2:pos + 4], "big")
            zones.append(data[pos + 4:pos + 2 + length])
            if marker == 0xDA:  # start of scan: entropy-coded data follows
                break
            pos += 2 + length
        end = data.rfind(b"\xff\xd9")
        zones.append(data[end + 2:] if end >= 0 else data[-4096:])
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        pos = 8
        while pos + 8 <= len(data):
            length = int.from_bytes(data[pos:pos + 4], "big")
            kind = data[pos + 4:pos + 8]
            if kind != b"IDAT":
                zones.append(data[pos + 8:pos + 8 + length])
            pos += 12 + length
            if kind == b"IEND":
                break
        zones.append(data[pos:])
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        pos, end = 12, min(len(data), 8 + int.from_bytes(data[4:8], "little"))
        while pos + 8 <= end:
            kind, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
            if kind not in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
                zones.append(data[pos + 8:pos + 8 + length])
            pos += 8 + length + (length & 1)
        zones.append(data[end:])
    else:
        zones.append(data[-4096:])
    return zones


def _refuse_polyglot(data: bytes) -> None:
    """Refuse files that are also another kind of document (see the module notes)."""
    if any(_MARKUP.search(zone) for zone in _markup_zones(data)):
        raise IntakeError("the file contains web page or script markup (HTML, SVG, "
                          "JavaScript, PHP), which a photo never does; it was refused")
    if b"%PDF-" in data[:1024]:
        raise IntakeError("the file is also a PDF document; it was refused")
    try:
        is_zip = zipfile.is_zipfile(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - a broken archive record is no archive
        is_zip = False
    if is_zip:
        raise IntakeError("the file is also a ZIP archive (something is appended to the "
                          "image); it was refused: export the photo again")


def _read_exif(img: Image.Image) -> tuple[int, str | None, str | None, int | None]:
    """Orientation, capture time, camera and ISO; damaged EXIF counts as none."""
    try:
        exif = img.getexif()
        orientation = exif.get(TAG_ORIENTATION, 1)
        orientation = int(orientation) if isinstance(orientation, int) else 1
        return (orientation if 1 <= orientation <= 8 else 1,
                _captured_at(exif), _camera(exif), _iso(exif))
    except Exception:  # noqa: BLE001 - any parser error in hostile metadata
        log.warning("unreadable EXIF metadata ignored (orientation 1, no capture time)")
        return 1, None, None, None


def _read_bytes(source: str | Path | bytes, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.exists():
            raise IntakeError(f"file not found: {path}")
        if path.is_dir():
            raise IntakeError(f"{path} is a folder, not a photo")
        size = path.stat().st_size
        if size > max_bytes:
            raise IntakeError(_too_big_bytes(size, max_bytes))
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise IntakeError(_too_big_bytes(len(data), max_bytes))
    if not data:
        raise IntakeError("the file is empty (0 bytes); copy the photo again")
    return data


def _too_big_bytes(size: int, limit: int) -> str:
    return (
        f"the file is too large ({size / 1e6:.1f} MB, limit {limit / 1e6:.1f} MB); "
        "export the photo as JPEG at a smaller size"
    )


def _format_of(data: bytes) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as probe:
            return str(probe.format)


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse what is not a supported photo or too big."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard is a global; we apply our limit below instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=_DECODERS)
    except Image.DecompressionBombError as exc:
        raise IntakeError(f"the image has too many pixels to decode safely ({exc})") from None
    except UnidentifiedImageError:
        other = _other_format(data)
        if other:
            raise IntakeError(f"{other} images are not supported; use JPEG, PNG, WebP, "
                              "TIFF or HEIC") from None
        raise IntakeError(
            "not an image this tool can read; use JPEG, PNG, WebP, TIFF or HEIC"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise IntakeError(f"the image header is damaged ({_reason(exc)})") from None
    if img.format not in SUPPORTED_FORMATS:
        raise IntakeError(
            f"{img.format} images are not supported; use JPEG, PNG, WebP, TIFF or HEIC"
        )
    width, height = img.size
    if width * height > max_pixels:
        raise IntakeError(
            f"the image is too large ({width}×{height} = {width * height / 1e6:.0f} MP, "
            f"limit {max_pixels / 1e6:.0f} MP); resize it before uploading"
        )
    if width < 16 or height < 16:
        raise IntakeError(f"the image is too small ({width}×{height} pixels)")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise IntakeError(f"the image is {width}×{height} pixels, not a photo of a face; "
                          "crop it to the face")
    if img.format in ("PNG", "WEBP") and getattr(img, "is_animated", False):
        raise IntakeError("animated images are not accepted; export one still photo")
    if img.format in ("JPEG", "MPO") and data.count(b"\xff\xda") > MAX_JPEG_SCANS:
        raise IntakeError("the JPEG has an abnormal number of scans (a decoding bomb); "
                          "export the photo again")
    return img


def _icc_profile(img: Image.Image) -> tuple[ImageCms.ImageCmsProfile | None, str | None]:
    """The embedded ICC profile and its description; ``(None, None)`` if absent or unreadable."""
    icc = img.info.get("icc_profile")
    if not icc:
        return None, None
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return src, ImageCms.getProfileDescription(src).strip()
    except (OSError, ImageCms.PyCMSError):
        return None, None


def _to_srgb(img: Image.Image) -> tuple[Image.Image, str | None]:
    """Convert pixels with an embedded ICC profile to sRGB (8-bit modes only)."""
    if img.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return img, None
    src, description = _icc_profile(img)
    if src is None:
        return img, None  # no or unreadable profile: keep pixels as they are
    if "srgb" in description.lower():
        return img, description
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    base = img.convert({"RGBA": "RGB", "LA": "L"}.get(img.mode, img.mode))
    try:
        out = ImageCms.profileToProfile(
            base, src, _SRGB, outputMode="RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except ImageCms.PyCMSError:
        return img, None
    if alpha is not None:
        out.putalpha(alpha)
    return out, description


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Reduce any Pillow mode to RGB uint8, flattening alpha onto white."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode != "I" or arr.max() > 255 else 255.0
        grey = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        grey = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "P":
        img = img.convert("RGBA")
    elif mode in ("L", "1"):
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img if img.mode == "RGB" else img.convert("RGB")  # convert() would copy RGB
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _captured_at(exif: Image.Exif) -> str | None:
    raw = exif.get_ifd(EXIF_IFD).get(TAG_DATETIME_ORIGINAL) or exif.get(TAG_DATETIME)
    if not raw or not isinstance(raw, (str, bytes)):
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    try:
        return datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _iso(exif: Image.Exif) -> int | None:
    """The ISO sensitivity (a camera may list several values: the first), if plausible."""
    value = exif.get_ifd(EXIF_IFD).get(TAG_ISO)
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    return int(value) if isinstance(value, int) and 1 <= value <= 10_000_000 else None


def _camera(exif: Image.Exif) -> str | None:
    parts = []
    for tag in (TAG_MAKE, TAG_MODEL):
        value = exif.get(tag, "")
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, str):
            parts.append("".join(c for c in value if c.isprintable()).strip("\x00 "))
    text = " ".join(p for p in parts if p)[:100]
    return text or None


def encode_jpeg(pixels: np.ndarray, quality: int = 92) -> bytes:
    """Encode RGB ``uint8`` pixels as a metadata-free JPEG."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode RGB ``uint8`` pixels (or a mask) as a metadata-free PNG."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
