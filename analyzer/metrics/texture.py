"""Texture metrics on luminance density (−ln luminance of the corrected image).

Working in log luminance makes texture invariant to exposure and white
balance (a gain adds a constant) and, after band-pass filtering, to smooth
lighting gradients.  Sizes are physical (mm) via the inter-ocular distance.
"""
from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize
from scipy import ndimage

from .image import SkinImage, area_cm2, sato_ridges
from .registry import ALL_REGIONS, LINE_REGIONS, PORE_REGIONS, register

# Roughness bands: structure sizes in mm (DoG with σ = size / 2).
BANDS_MM = {"fine": (0.1, 0.3), "mid": (0.3, 1.0), "coarse": (1.0, 3.0)}
EDGE_MARGIN_MM = 2.0         # texture ignores skin closer than this to eyes, lips, hair
PORE_SIZE_MM = (0.1, 0.5)    # DoG band for pores
PORE_MIN_OD = 0.02           # darker than surroundings by at least this (luminance density)
PORE_AREA_MM2 = (0.005, 0.8)
SCAR_SIZE_MM = (1.0, 4.0)    # DoG band for depressions
SCAR_MIN_OD = 0.03
SCAR_AREA_MM2 = (0.8, 12.0)
LINE_SIGMAS_MM = (0.15, 0.25, 0.4)
LINE_MIN_RESPONSE = 0.02     # Sato ridge response (OD) on the line's centre
LINE_MIN_LENGTH_MM = 3.0

ROUGHNESS_REF = ("Band-pass (difference of Gaussians) RMS of log luminance; cf. Lindeberg, "
                 "scale-space, Int. J. Comput. Vis. 30, 1998.")


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values, dtype=np.float64)))) if values.size else float("nan")


def _texture_mask(img: SkinImage, mask: np.ndarray) -> np.ndarray:
    return mask & img.inner(EDGE_MARGIN_MM)


def _roughness(img: SkinImage, mask: np.ndarray, band: str) -> float | None:
    resp = img.bandpass(*BANDS_MM[band])
    if resp is None:
        raise ValueError(f"{band} roughness band {BANDS_MM[band]} mm is not resolved at "
                         f"{img.resolved_px_per_mm:.1f} px/mm: photograph the face larger")
    return 1000.0 * _rms(resp[_texture_mask(img, mask)])


@register("roughness_fine", unit="mOD", regions=ALL_REGIONS, direction="more texture",
          reference=ROUGHNESS_REF, family="texture")
def roughness_fine(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """RMS of luminance density in the 0.1–0.3 mm band (micro-relief).

    Needs ≥ 3.3 px/mm (σ ≥ 0.5 px); otherwise missing with a warning.
    """
    return _roughness(img, mask, "fine")


@register("roughness_mid", unit="mOD", regions=ALL_REGIONS, direction="more texture",
          reference=ROUGHNESS_REF, family="texture")
def roughness_mid(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """RMS of luminance density in the 0.3–1 mm band (pores, fine lines, relief)."""
    return _roughness(img, mask, "mid")


@register("roughness_coarse", unit="mOD", regions=ALL_REGIONS, direction="more texture",
          reference=ROUGHNESS_REF, family="texture")
def roughness_coarse(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """RMS of luminance density in the 1–3 mm band (coarse relief, wrinkles, scars)."""
    return _roughness(img, mask, "coarse")


def _pore_blobs(img: SkinImage):
    lo, hi = PORE_SIZE_MM
    resp = img.bandpass(lo, hi)
    if resp is None:
        raise ValueError("pores are not resolved at this camera distance")
    return img.blobs("pores", resp, PORE_MIN_OD, *PORE_AREA_MM2)


def _count_in(mask: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    if len(peaks) == 0:
        return np.zeros(0, bool)
    return mask[peaks[:, 0], peaks[:, 1]]


@register("pore_density", unit="1/cm²", regions=PORE_REGIONS, direction="more texture",
          reference="Dark blobs of a difference-of-Gaussians (0.1–0.5 mm) above an absolute "
                    "contrast; cf. Lindeberg 1998 blob detection.", family="texture")
def pore_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Pores per cm²: dark blobs 0.1–0.5 mm wide, ≥ 0.02 OD darker than their surroundings."""
    _, _, peaks = _pore_blobs(img)
    m = _texture_mask(img, mask)
    return float(_count_in(m, peaks).sum() / max(area_cm2(m, scale), 1e-6))


@register("pore_area", unit="mm²", regions=PORE_REGIONS, direction="more texture",
          reference="As pore_density; area of the thresholded blob.", family="texture")
def pore_area(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean area of the detected pores (0 when none)."""
    _, areas, peaks = _pore_blobs(img)
    sel = _count_in(_texture_mask(img, mask), peaks)
    return float(areas[sel].mean()) if sel.any() else 0.0


def _ridges(img: SkinImage) -> np.ndarray:
    if "ridges" not in img.cache:
        sigmas = [max(0.5, img.px(s)) for s in LINE_SIGMAS_MM]
        img.cache["ridges"] = sato_ridges(img.lum_density, sigmas)
    return img.cache["ridges"]


def _line_skeleton(img: SkinImage, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Skeleton of ridge pixels inside ``mask`` and the number of lines long enough.

    Computed once per region mask (the three line metrics share it), within
    the mask's bounding box.
    """
    cached = img.local.get(("lines", id(mask)))
    if cached is not None and cached[0] is mask:
        return cached[1]
    m = _texture_mask(img, mask)
    keep = np.zeros(m.shape, bool)
    n_long = 0
    rows, cols = np.nonzero(m)
    if rows.size:
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        skel = skeletonize((_ridges(img)[box] > LINE_MIN_RESPONSE) & m[box])
        labels, n = ndimage.label(skel, structure=np.ones((3, 3)))
        if n:
            lengths = ndimage.sum_labels(skel, labels, np.arange(1, n + 1)) / img.px_per_mm
            keep[box] = np.isin(labels, np.flatnonzero(lengths >= LINE_MIN_LENGTH_MM) + 1)
            n_long = int((lengths >= LINE_MIN_LENGTH_MM).sum())
    img.local[("lines", id(mask))] = (mask, (keep, n_long))
    return keep, n_long


LINE_REF = ("Multi-scale Sato tubeness (Sato et al., Med. Image Anal. 2, 1998; "
            "skimage.filters.sato) on luminance density, skeletonised.")


@register("line_density", unit="mm/cm²", regions=LINE_REGIONS, direction="more texture",
          reference=LINE_REF, family="texture")
def line_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Total length of fine lines/wrinkles per cm² of skin (lines ≥ 3 mm, ridge ≥ 0.02 OD)."""
    skel, _ = _line_skeleton(img, mask)
    m = _texture_mask(img, mask)
    return float(skel.sum() / scale / max(area_cm2(m, scale), 1e-6))


@register("line_length", unit="mm", regions=LINE_REGIONS, direction="more texture",
          reference=LINE_REF, family="texture")
def line_length(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean length of the fine lines/wrinkles found (0 when none)."""
    skel, n = _line_skeleton(img, mask)
    return float(skel.sum() / scale / n) if n else 0.0


@register("line_depth", unit="mOD", regions=LINE_REGIONS, direction="more texture",
          reference=LINE_REF, family="texture")
def line_depth(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean Sato ridge response along the detected lines (how dark/deep; 0 when none)."""
    skel, _ = _line_skeleton(img, mask)
    return float(1000.0 * _ridges(img)[skel].mean()) if skel.any() else 0.0


def _scar_blobs(img: SkinImage):
    resp = img.bandpass(*SCAR_SIZE_MM)
    return img.blobs("scars", resp, SCAR_MIN_OD, *SCAR_AREA_MM2)


@register("depression_density", unit="1/cm²", regions=ALL_REGIONS, direction="more texture",
          reference="Difference-of-Gaussians (1–4 mm) blobs of luminance density above an "
                    "absolute contrast (shadowed depressions, e.g. atrophic scars).",
          family="texture")
def depression_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Scar-like depressions per cm²: shadowed blobs 1–4 mm, ≥ 0.03 OD darker than around.

    A photo sees only the shadow of a depression, so brown spots that are
    dark in luminance also count; compare with ``brown_spot_density``.
    """
    _, _, peaks = _scar_blobs(img)
    m = _texture_mask(img, mask)
    return float(_count_in(m, peaks).sum() / max(area_cm2(m, scale), 1e-6))


TEXTURE_INDEX_BAND_MM = (0.5, 1.5)   # summary band: pores, fine lines, relief; above the noise floor


@register("texture_index", unit="mOD", regions=ALL_REGIONS, direction="more texture",
          reference="This package: DoG band RMS (0.5–1.5 mm) of optical density (R, G, B weighted "
                    "0.6/0.3/0.1) after 0.15 mm smoothing in sRGB, on skin 2 mm from its edges.",
          family="texture")
def texture_index(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Summary texture index: RMS density in the 0.5–1.5 mm band (whole face: the summary;
    per region: where a single region changed).

    Pores, fine lines and relief all add energy to this band.  The band starts
    at 0.5 mm (not 0.3 mm as ``roughness_mid``) and the photo is first smoothed
    by 0.15 mm in sRGB (before linearising and taking logs), because below
    that sensor noise and JPEG dominate on dark skin: with the 0.3–1 mm band
    the retake noise on the phantom was 18 % of the value on dark skin, with
    this band 4–5 %.  The density is per-channel OD with fixed weights
    (0.6 / 0.3 / 0.1), so added redness or tone does not change the contrast
    of the existing structure.  The coarse band is dominated by facial shape
    and shading.
    """
    resp = img.bandpass_denoised(*TEXTURE_INDEX_BAND_MM)
    return float(1000.0 * _rms(resp[_texture_mask(img, mask)]))
