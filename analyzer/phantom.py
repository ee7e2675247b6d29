"""Skin phantom: synthetic faces with known skin changes and known capture variance.

Real before/after photos with measured truth do not exist for us, so every
metric and the alignment are validated on faces whose changes we injected.

Model
-----
The base face is scikit-image's astronaut portrait (NASA, public domain,
shipped inside scikit-image), cropped and enlarged.  Skin is rendered in
optical density (OD = −ln linear reflectance, per sRGB channel)::

    reflectance = base · exp(−(T + m·V_mel + h·V_hb))

where ``T`` is a neutral texture density (roughness, pores, fine lines),
``m`` / ``h`` are added melanin / hemoglobin densities and ``V_mel`` / ``V_hb``
their absorption directions in linear sRGB (below).  The enlarged photo has no
skin detail at pore scale, so texture layers are synthesised.  Capture
variance (pose warp, exposure, white balance, a sideways lighting gradient,
noise, blur, JPEG) is applied last, in linear light for the photometric part.
Physical scale follows the assumption used everywhere in the package:
inter-ocular (iris-to-iris) distance = 63 mm.

Every rendered image comes with a JSON-serialisable sidecar: the exact 3×3
transform from image pixels to phantom-frame pixels, and each injected change
with region and dose.  Everything is deterministic from a seed.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .colour import linear_to_srgb, srgb_to_linear
from .face import INTEROCULAR_MM

# Crop of skimage.data.astronaut() holding the head: (y0, y1, x0, x1).
ASTRONAUT_HEAD = (20, 240, 120, 330)

# Absorption directions in linear-sRGB optical density (unit vectors, R, G, B).
# Melanin: eumelanin absorption falls as λ^-3.46 (Jacques, "Optical properties
# of biological tissues: a review", Phys. Med. Biol. 58, 2013), 1 : 1.48 : 2.56
# at 610 / 545 / 465 nm; blue light travels a shorter path in the epidermis, so
# the effective ratio in a photo is flatter: 1 : 1.3 : 1.75 (which reproduces
# L*, b* of dark skin, ITA° < -30, instead of an orange hue).  Hemoglobin: oxy-hemoglobin molar
# extinction (Prahl, OMLC compilation) at the same wavelengths, with the red
# band's overlap of the 575 nm peak giving red ~0.18 of green -> 0.18 : 1 : 0.72.
# The phantom owns these constants; the metrics estimate their own basis.
V_MELANIN = (np.array([1.0, 1.3, 1.75]) / np.linalg.norm([1.0, 1.3, 1.75])).astype(np.float32)
V_HEMOGLOBIN = (np.array([0.18, 1.0, 0.72]) / np.linalg.norm([0.18, 1.0, 0.72])).astype(np.float32)

# Change kinds and what their dose means.
CHANGE_KINDS = {
    "redness": "diffuse hemoglobin OD added (0.1 = mild, 0.3 = post-procedure)",
    "redness_patchy": "peak hemoglobin OD of blotches (~4 mm) added",
    "spots": "factor on brown-spot melanin, injected spots and the photo's own freckles "
             "(0.5 = spots fade by half; >1 darker)",
    "new_spots": "number of brown spots added per 10 cm² of skin",
    "tone": "melanin OD added evenly (skin tone; 0.5 ≈ one ITA category darker)",
    "roughness": "factor on the fine roughness layers (0.7 = 30 % smoother)",
    "pores": "factor on pore depth (0.6 = pores 40 % shallower)",
    "lines": "factor on fine-line depth (0.5 = lines half as deep)",
}
# Baseline strength of texture layers (neutral OD) and spots (melanin OD).
ROUGH_FINE_OD, ROUGH_COARSE_OD = 0.022, 0.018
PORE_OD, LINE_OD, SPOT_OD = 0.16, 0.10, 0.35
PORES_PER_CM2, SPOTS_PER_10CM2 = 25.0, 4.0


def smooth_noise(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float32)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), max(sigma_px, 0.3))
    return out / (out.std() + 1e-8)


def feather(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Soft version (0..1 float32) of a boolean mask."""
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(sigma_px, 0.5)), 0, 1)


def _dots(shape, candidates: np.ndarray, count: int, sigma_px: float, rng) -> np.ndarray:
    """``count`` Gaussian dots (peak 1) at random pixels of ``candidates``."""
    out = np.zeros(shape, np.float32)
    ys, xs = np.nonzero(candidates)
    if count <= 0 or len(ys) == 0:
        return out
    pick = rng.choice(len(ys), size=min(count, len(ys)), replace=False)
    out[ys[pick], xs[pick]] = 1.0
    out = cv2.GaussianBlur(out, (0, 0), sigma_px)
    return out * (2 * np.pi * sigma_px ** 2)  # isolated dot peaks at 1


@dataclass(frozen=True)
class Change:
    """One injected skin change: ``kind`` (see ``CHANGE_KINDS``), ``dose``, optional ``region``."""

    kind: str
    dose: float
    region: str | None = None  # None = whole facial skin

    def __post_init__(self):
        if self.kind not in CHANGE_KINDS:
            raise ValueError(f"unknown change kind {self.kind!r}; one of {sorted(CHANGE_KINDS)}")


@dataclass(frozen=True)
class Capture:
    """Capture variance of one photo, relative to the phantom frame.

    Geometry: the photo is the phantom frame rotated by ``angle_deg``
    (counter-clockwise, about the image centre), scaled by ``scale``, shifted by
    ``shift`` (fractions of width, height), with a small projective ``tilt``.
    Photometry (linear light): ``exposure`` factor, ``white_balance`` RGB gains,
    a left-to-right lighting gradient ``gradient`` (0.25 = right side 25 %
    brighter, left 25 % darker), Gaussian ``noise`` (sRGB 8-bit units),
    ``blur`` (sigma, px) and ``jpeg_quality`` (None = lossless).
    """

    angle_deg: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    tilt: tuple[float, float] = (0.0, 0.0)
    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gradient: float = 0.0
    noise: float = 0.0
    blur: float = 0.0
    jpeg_quality: int | None = None

    @classmethod
    def random(cls, rng: np.random.Generator, strength: float = 1.0) -> "Capture":
        """A realistic retake without head rest; ``strength`` 1 = the benchmark's range."""
        s = strength
        return cls(
            angle_deg=float(rng.uniform(-4, 4) * s),
            scale=float(np.exp(rng.uniform(-0.08, 0.08) * s)),
            shift=(float(rng.uniform(-0.04, 0.04) * s), float(rng.uniform(-0.04, 0.04) * s)),
            tilt=(float(rng.uniform(-2e-5, 2e-5) * s), float(rng.uniform(-2e-5, 2e-5) * s)),
            exposure=float(np.exp(rng.uniform(-0.12, 0.12) * s)),
            white_balance=tuple(float(np.exp(v)) for v in rng.uniform(-0.04, 0.04, 3) * s),
            gradient=float(rng.uniform(-0.12, 0.12) * s),
            noise=float(rng.uniform(0.5, 2.0)),
            blur=0.0,
            jpeg_quality=int(rng.integers(85, 96)),
        )


def capture_matrix(capture: Capture, shape: tuple[int, int]) -> np.ndarray:
    """3×3 matrix mapping *photo* pixel (x, y, 1) to *phantom-frame* pixel."""
    h, w = shape
    c = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]], np.float64)
    c_inv = np.linalg.inv(c)
    a = np.radians(capture.angle_deg)
    # photo = T · C · S · R · P · C⁻¹ · frame  (R rotates counter-clockwise on screen)
    rot = np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])
    scale = np.diag([capture.scale, capture.scale, 1.0])
    persp = np.array([[1, 0, 0], [0, 1, 0], [capture.tilt[0], capture.tilt[1], 1]])
    shift = np.array([[1, 0, capture.shift[0] * w], [0, 1, capture.shift[1] * h], [0, 0, 1]])
    frame_to_photo = shift @ c @ scale @ rot @ persp @ c_inv
    m = np.linalg.inv(frame_to_photo)
    return m / m[2, 2]


def warp_to_photo(frame_rgb: np.ndarray, matrix_photo_to_frame: np.ndarray) -> np.ndarray:
    """Resample a phantom-frame image into photo pixels (float32 in, float32 out)."""
    h, w = frame_rgb.shape[:2]
    return cv2.warpPerspective(frame_rgb, matrix_photo_to_frame, (w, h),
                               flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)


def _iso_exif(capture: Capture) -> Image.Exif:
    """EXIF carrying the ISO a camera would report for ``capture``'s sensor noise: the
    noise's standard deviation grows with the square root of the gain, so ISO =
    100 × noise² (noise 1 of 8 bits: ISO 100)."""
    exif = Image.Exif()
    if capture.noise > 0:
        exif.get_ifd(0x8769)[0x8827] = max(1, int(round(100 * capture.noise ** 2)))
    return exif


def capture_file(linear_rgb: np.ndarray, capture: Capture, rng: np.random.Generator) -> bytes:
    """Photograph a linear-light phantom-frame image: warp, light, noise, blur, then
    the file: JPEG at ``capture.jpeg_quality`` (4:2:0, as cameras and phones
    write; EXIF with the ISO the noise stands for), PNG when it is ``None``
    (lossless)."""
    h, w = linear_rgb.shape[:2]
    m = capture_matrix(capture, (h, w))
    img = warp_to_photo(linear_rgb, m)
    gain = capture.exposure * np.asarray(capture.white_balance, np.float32)
    ramp = 1.0 + capture.gradient * np.linspace(-1, 1, w, dtype=np.float32)
    img = img * gain[None, None, :] * ramp[None, :, None]
    if capture.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), capture.blur)
    srgb = linear_to_srgb(img) * 255.0
    if capture.noise > 0:
        srgb = srgb + rng.normal(0, capture.noise, srgb.shape).astype(np.float32)
    out = np.clip(np.round(srgb), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    if capture.jpeg_quality:
        Image.fromarray(out).save(buf, "JPEG", quality=int(capture.jpeg_quality), exif=_iso_exif(capture))
    else:
        Image.fromarray(out).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class PhantomFace:
    """A phantom subject: base face in linear light plus texture, spot and region layers.

    Build with :func:`make_face`.  All layers are in the phantom frame.
    """

    linear: np.ndarray            # (H, W, 3) float32 linear sRGB, no synthetic texture
    skin: np.ndarray              # (H, W) float32 0..1, feathered skin weight
    body_skin: np.ndarray         # (H, W) float32 0..1, all skin-coloured pixels (neck, ears)
    regions: dict                 # region name -> (H, W) float32 0..1 feathered weight
    layers: dict                  # texture/spot layers, (H, W) float32
    px_per_mm: float
    seed: int
    scale: float
    tone: float = 0.0             # melanin OD added to the base (skin type)
    landmarks: np.ndarray | None = None


@lru_cache(maxsize=8)
def _astronaut_head(scale: float) -> np.ndarray:
    from skimage import data

    y0, y1, x0, x1 = ASTRONAUT_HEAD
    head = data.astronaut()[y0:y1, x0:x1]
    return cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_LANCZOS4)


def make_face(scale: float = 4.0, seed: int = 0, tone: float = 0.0) -> PhantomFace:
    """Build a phantom subject.

    Parameters
    ----------
    scale : float
        Enlargement of the 210×220 px head crop (4: face ≈ 365 px wide; 8: ≈ 730 px).
    seed : int
        Seed of texture, pores, lines and spots.
    tone : float
        Melanin OD added evenly to all skin-coloured pixels: 0 = the original
        light skin; :data:`TONES` names the levels used for validation.
    """
    from .face import get_landmarker
    from .regions import REGIONS, SKIN_OUTLINE, feature_exclusion, polygon_mask

    big = _astronaut_head(float(scale))
    face = get_landmarker().detect(big)
    shape = big.shape[:2]
    px_per_mm = face.interocular_px / INTEROCULAR_MM
    skin_bool = polygon_mask(face.points, SKIN_OUTLINE, shape)
    skin_bool &= ~feature_exclusion(face.points, shape, 0.02 * face.interocular_px)
    skin = feather(skin_bool, 1.5 * px_per_mm)
    regions = {name: feather(polygon_mask(face.points, poly, shape) & skin_bool, 1.0 * px_per_mm)
               for name, poly in REGIONS.items()}
    rng = np.random.default_rng(seed)
    area_cm2 = skin_bool.sum() / (px_per_mm * 10) ** 2
    inner = cv2.erode(skin_bool.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    layers = {
        "rough_fine": smooth_noise(shape, 0.12 * px_per_mm, rng),
        "rough_coarse": smooth_noise(shape, 0.45 * px_per_mm, rng),
        "pores": _dots(shape, inner, int(PORES_PER_CM2 * area_cm2), 0.10 * px_per_mm, rng),
        "lines": _fine_lines(face, shape, px_per_mm, rng),
        "spots": _dots(shape, inner, int(SPOTS_PER_10CM2 * area_cm2 / 10), 1.2 * px_per_mm, rng),
        "patches": np.clip(smooth_noise(shape, 4.0 * px_per_mm, rng) - 0.8, 0, None),
    }
    layers["patches"] /= layers["patches"].max() + 1e-8
    linear = srgb_to_linear(big.astype(np.float32) / 255.0)
    layers["base_spots"] = _base_spots(linear, skin_bool, px_per_mm)
    return PhantomFace(linear=linear, skin=skin, body_skin=_skin_coloured(big, skin_bool, px_per_mm, face.points),
                       regions=regions, layers=layers,
                       px_per_mm=float(px_per_mm), seed=seed, scale=float(scale), tone=float(tone),
                       landmarks=face.points.copy())


def _base_spots(linear: np.ndarray, skin: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Melanin OD of the base photo's own freckles: excess over a 3 mm background.

    The base photo's optical density is split on (melanin, hemoglobin,
    neutral) with the phantom's vectors; its melanin above a smooth local
    background is what a "spots" change scales, together with the injected
    spots, so that a spot-fading dose acts on every spot of the face.
    """
    od = -np.log(np.clip(linear, 1e-4, 1.0))
    basis = np.stack([V_MELANIN, V_HEMOGLOBIN, np.full(3, 1 / np.sqrt(3), np.float32)], axis=1)
    melanin = (od.reshape(-1, 3) @ np.linalg.pinv(basis).T)[:, 0].reshape(skin.shape)
    inner = cv2.erode(skin.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    sigma = 2.0 * px_per_mm
    background = cv2.GaussianBlur(melanin * inner, (0, 0), sigma) / (
        cv2.GaussianBlur(inner, (0, 0), sigma) + 1e-6)
    excess = np.clip(melanin - background, 0, SPOT_OD) * inner
    return cv2.GaussianBlur(excess.astype(np.float32), (0, 0), 0.3 * px_per_mm)


def _skin_coloured(rgb: np.ndarray, skin: np.ndarray, px_per_mm: float,
                   points: np.ndarray) -> np.ndarray:
    """Soft mask of pixels coloured like the face skin below the hairline (neck, ears).

    Used only to recolour the whole visible skin for other skin tones; eyes,
    mouth (teeth) and everything above the top of the face oval are left out.
    """
    from .regions import LEFT_EYE, LIPS, RIGHT_EYE, polygon_mask

    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = np.median(lab[skin], axis=0)
    spread = np.std(lab[skin], axis=0) + 1.0
    d = np.hypot((lab[..., 1] - ref[1]) / spread[1], (lab[..., 2] - ref[2]) / spread[2])
    likely = (d < 2.5) & (lab[..., 0] > ref[0] - 3 * spread[0])
    likely[: int(points[10, 1])] = False  # hair above the forehead
    for poly in (LIPS, LEFT_EYE, RIGHT_EYE):
        likely &= ~polygon_mask(points, poly, skin.shape)
    likely = cv2.morphologyEx(likely.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return np.maximum(feather(likely > 0, 1.0 * px_per_mm), feather(skin, 1.5 * px_per_mm))


def _fine_lines(face, shape, px_per_mm: float, rng) -> np.ndarray:
    """Thin horizontal-ish furrows on forehead, under the eyes and around the mouth."""
    from .regions import REGIONS, polygon_mask

    out = np.zeros(shape, np.float32)
    width = max(1, int(round(0.25 * px_per_mm)))
    for name in ("forehead", "right_under_eye", "left_under_eye", "perioral"):
        m = polygon_mask(face.points, REGIONS[name], shape)
        ys, xs = np.nonzero(m)
        if len(ys) == 0:
            continue
        n_lines = 6 if name == "forehead" else 3
        for _ in range(n_lines):
            y = rng.uniform(ys.min(), ys.max())
            x0, x1 = xs.min(), xs.max()
            xx = np.linspace(x0, x1, 40)
            yy = y + rng.uniform(-1, 1) * 0.05 * (x1 - x0) * np.sin(np.linspace(0, np.pi, 40))
            yy += rng.uniform(-0.08, 0.08) * (xx - xx.mean())
            pts = np.round(np.stack([xx, yy], 1) * 16).astype(np.int32)
            line = np.zeros(shape, np.uint8)
            cv2.polylines(line, [pts], False, 1, thickness=width, lineType=cv2.LINE_AA, shift=4)
            out = np.maximum(out, line.astype(np.float32) * m)
    return cv2.GaussianBlur(out, (0, 0), 0.15 * px_per_mm)


def _weight(face: PhantomFace, region: str | None) -> np.ndarray:
    if region is None:
        return face.skin
    if region not in face.regions:
        raise ValueError(f"unknown region {region!r}; one of {sorted(face.regions)}")
    return face.regions[region]


def render_skin(face: PhantomFace, changes: list[Change] = (), seed: int = 0) -> np.ndarray:
    """The subject's skin in the phantom frame with ``changes``, linear RGB float32."""
    factors = {k: np.ones(face.skin.shape, np.float32) for k in ("roughness", "pores", "lines", "spots")}
    hb = np.zeros(face.skin.shape, np.float32)
    mel = face.body_skin * face.tone
    rng = np.random.default_rng(10_000 + seed)
    for ch in changes:
        w = _weight(face, ch.region)
        if ch.kind in factors:
            factors[ch.kind] = factors[ch.kind] * (1 + (ch.dose - 1) * w)
        elif ch.kind == "redness":
            hb = hb + ch.dose * w
        elif ch.kind == "redness_patchy":
            hb = hb + ch.dose * face.layers["patches"] * w
        elif ch.kind == "tone":
            mel = mel + ch.dose * w
        elif ch.kind == "new_spots":
            area_cm2 = (w > 0.5).sum() / (face.px_per_mm * 10) ** 2
            extra = _dots(w.shape, w > 0.9, int(round(ch.dose * area_cm2 / 10)), 1.2 * face.px_per_mm, rng)
            mel = mel + SPOT_OD * extra * w
    L = face.layers
    texture = face.skin * (
        factors["roughness"] * (ROUGH_FINE_OD * L["rough_fine"] + ROUGH_COARSE_OD * L["rough_coarse"])
        + factors["pores"] * PORE_OD * L["pores"]
        + factors["lines"] * LINE_OD * L["lines"])
    mel = mel + face.skin * factors["spots"] * SPOT_OD * L["spots"]
    # the photo's own freckles fade or darken with the same factor as injected spots
    mel = mel + face.skin * (factors["spots"] - 1) * L["base_spots"]
    od = texture[..., None] + mel[..., None] * V_MELANIN + hb[..., None] * V_HEMOGLOBIN
    return face.linear * np.exp(-od)


def draw_chart(img: np.ndarray, x0: int, y0: int, patch: int, angle: float = 4.0) -> None:
    """Draw an X-Rite ColorChecker Classic (24 patches on a dark frame) into ``img`` in place.

    ``img`` is sRGB ``uint8`` (a chart pasted onto a photo) or linear float (a
    chart in the scene, lit and photographed like the face by :func:`photograph`);
    ``(x0, y0)`` is its top-left corner before the rotation by ``angle`` degrees
    about its centre, ``patch`` the patch side in pixels.
    """
    from .colour import COLORCHECKER_SRGB

    gap = max(2, round(0.25 * patch))
    chart = np.full((4 * patch + 5 * gap, 6 * patch + 7 * gap, 3), 20, np.uint8)
    for i, colour in enumerate(COLORCHECKER_SRGB.astype(np.uint8)):
        r, c = divmod(i, 6)
        chart[gap + r * (patch + gap):][:patch, gap + c * (patch + gap):][:, :patch] = colour
    h, w = chart.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (x0, y0)
    size = (img.shape[1], img.shape[0])
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), m, size) > 127
    drawn = cv2.warpAffine(chart, m, size, flags=cv2.INTER_AREA)[inside]
    img[inside] = drawn if img.dtype == np.uint8 else srgb_to_linear(drawn)


def photograph(face: PhantomFace, changes: list[Change] = (), capture: Capture = Capture(),
               seed: int = 0, chart: tuple | None = None) -> tuple[np.ndarray, dict]:
    """Render and photograph the subject.

    ``chart``: ``(x0, y0, patch, angle)`` of a ColorChecker Classic placed in
    the scene (:func:`draw_chart`), so it is lit, warped and compressed like
    the face.

    Returns
    -------
    rgb : ndarray, RGB uint8
    sidecar : dict
        ``matrix_to_frame`` (3×3, photo pixel → phantom-frame pixel), the
        changes, the capture settings, the seed and the scale.
    """
    data, sidecar = photograph_file(face, changes, capture, seed, chart)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), sidecar


def photograph_file(face: PhantomFace, changes: list[Change] = (), capture: Capture = Capture(),
                    seed: int = 0, chart: tuple | None = None) -> tuple[bytes, dict]:
    """As :func:`photograph`, the photo as its file (:func:`capture_file`): what a
    camera hands over, with the JPEG tables ``compare`` reads the capture settings from."""
    skin = render_skin(face, changes, seed)
    if chart is not None:
        skin = skin.copy()
        draw_chart(skin, *chart)
    rng = np.random.default_rng(20_000 + seed)
    data = capture_file(skin, capture, rng)
    sidecar = {
        "phantom": {"base": "skimage.data.astronaut", "scale": face.scale, "face_seed": face.seed,
                    "tone_od": face.tone, "px_per_mm": round(face.px_per_mm, 4)},
        "seed": seed,
        "matrix_to_frame": capture_matrix(capture, skin.shape[:2]).tolist(),
        "changes": [asdict(c) for c in changes],
        "capture": asdict(capture),
        "chart": None if chart is None else list(chart),
    }
    return data, json.loads(json.dumps(sidecar))  # plain JSON types (tuples -> lists)


def true_transform(sidecar_followup: dict, sidecar_baseline: dict) -> np.ndarray:
    """3×3 matrix mapping follow-up pixels to baseline pixels, from two sidecars."""
    to_frame_f = np.asarray(sidecar_followup["matrix_to_frame"], np.float64)
    to_frame_b = np.asarray(sidecar_baseline["matrix_to_frame"], np.float64)
    m = np.linalg.inv(to_frame_b) @ to_frame_f
    return m / m[2, 2]


def base_face(scale: float = 4.0, seed: int = 0) -> np.ndarray:
    """The phantom base face as RGB ``uint8``: no changes, no capture variance."""
    rgb, _ = photograph(make_face(scale, seed))
    return rgb


# Skin tones for per-tone validation: melanin OD added to the base (light) face,
# with the ITA° each gives on the phantom (median over the face, no capture variance).
TONES = {"light": 0.0, "intermediate": 0.6, "tan": 1.2, "brown": 2.0, "dark": 3.6}
TONE_ITA = {"light": 54.6, "intermediate": 38.9, "tan": 21.2, "brown": -2.0, "dark": -34.2}


@dataclass
class Visit:
    """One visit of a demo course."""

    name: str
    day: int
    changes: list = field(default_factory=list)
    note: str = ""


def demo_course() -> list[Visit]:
    """A micro-needling course: baseline, 2 days post, 6, 12 and 18 weeks."""
    return [
        Visit("baseline", 0, [], "before the first session"),
        Visit("day02", 2, [Change("redness", 0.30), Change("redness_patchy", 0.25)],
              "2 days after session 1: procedure redness"),
        Visit("week06", 42, [Change("roughness", 0.9), Change("pores", 0.9), Change("lines", 0.9),
                             Change("spots", 0.9)], "6 weeks, before session 2"),
        Visit("week12", 84, [Change("roughness", 0.8), Change("pores", 0.8), Change("lines", 0.75),
                             Change("spots", 0.75)], "12 weeks"),
        Visit("week18", 126, [Change("roughness", 0.7), Change("pores", 0.7), Change("lines", 0.6),
                              Change("spots", 0.6)], "18 weeks: end of course"),
    ]


def write_series(out_dir: Path, face: PhantomFace, visits: list[Visit], seed: int,
                 capture_strength: float = 0.5, start_date: str = "2026-03-02",
                 jpeg_quality: int = 90) -> list[Path]:
    """Photograph each visit with random capture variance; write JPEG + JSON sidecar.

    The baseline visit is photographed with its own variance too; every visit
    is saved once, at ``jpeg_quality`` (one camera at one setting, so the
    photos are saved alike: ``analyzer.compare.same_capture_settings``).
    Files are ``<YYYY-MM-DD>_<visit>.jpg`` and ``.json``.
    """
    from dataclasses import replace
    from datetime import date, timedelta

    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    start = date.fromisoformat(start_date)
    for i, visit in enumerate(visits):
        capture = replace(Capture.random(rng, capture_strength), jpeg_quality=jpeg_quality)
        data, sidecar = photograph_file(face, visit.changes, capture, seed=seed * 100 + i)
        day = (start + timedelta(days=visit.day)).isoformat()
        sidecar.update({"visit": visit.name, "date": day, "note": visit.note})
        stem = out_dir / f"{day}_{visit.name}"
        stem.with_suffix(".jpg").write_bytes(data)
        stem.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))
        written.append(stem.with_suffix(".jpg"))
    return written
