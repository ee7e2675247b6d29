"""Photo intake: decode a file into an RGB ``uint8`` array plus capture metadata.

Handles JPEG, PNG, WebP, TIFF and HEIC/HEIF; applies EXIF orientation;
converts embedded colour profiles (Display P3, Adobe RGB, CMYK...) to sRGB;
flattens alpha; reduces 16-bit and grayscale images to 8-bit RGB.  Size limits
are checked before any pixel is decoded.  Location (GPS) and other personal
metadata are never read out: only capture time, camera make/model and the
orientation survive into :class:`CaptureInfo`.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .config import Settings
from .errors import IntakeError

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
SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "HEIF", "MPO"}
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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Photo:
    """A decoded photo: ``pixels`` is RGB ``uint8`` of shape (H, W, 3)."""

    pixels: np.ndarray
    info: CaptureInfo


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
    img = _open_checked(data, settings.max_pixels)
    exif = img.getexif()
    orientation = int(exif.get(TAG_ORIENTATION, 1) or 1)
    source_mode = img.mode
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        img, profile = _to_srgb(img)
        pixels = _to_rgb8(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise IntakeError(
            f"the image data is truncated or damaged ({exc}); export or copy the photo again"
        ) from None
    info = CaptureInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        format=str(img.format or _format_of(data)),
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        captured_at=_captured_at(exif),
        camera=_camera(exif),
        orientation=orientation if 1 <= orientation <= 8 else 1,
        colour_profile=profile,
        source_mode=source_mode,
    )
    return Photo(pixels=pixels, info=info)


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
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise IntakeError(f"the image has too many pixels to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise IntakeError(
            "not an image this tool can read; use JPEG, PNG, WebP, TIFF or HEIC"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise IntakeError(f"the image header is damaged ({exc})") from None
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
    return img


def _to_srgb(img: Image.Image) -> tuple[Image.Image, str | None]:
    """Convert pixels with an embedded ICC profile to sRGB (8-bit modes only)."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return img, None
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(src).strip()
    except (OSError, ImageCms.PyCMSError):
        return img, None  # unreadable profile: keep pixels as they are
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
    rgb = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _captured_at(exif: Image.Exif) -> str | None:
    raw = exif.get_ifd(EXIF_IFD).get(TAG_DATETIME_ORIGINAL) or exif.get(TAG_DATETIME)
    if not raw:
        return None
    try:
        return datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _camera(exif: Image.Exif) -> str | None:
    parts = [str(exif.get(t, "")).strip("\x00 ") for t in (TAG_MAKE, TAG_MODEL)]
    text = " ".join(p for p in parts if p)
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
