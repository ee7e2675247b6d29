"""Redness metrics: hemoglobin density, erythema index, CIELAB a*, red area and red spots.

All on the colour-corrected image (never normalised against the skin).
"""
from __future__ import annotations

import numpy as np

from ..colour import SEPARATION_REFERENCE
from .image import SkinImage, area_cm2
from .registry import ALL_REGIONS, register

HB_RED_OD = 0.30              # absolute hemoglobin density above which skin counts as red
RED_BACKGROUND_MM = 8.0       # local skin background for red spots
RED_SPOT_MIN_OD = 0.05        # spot: hemoglobin above its local background by this
RED_SPOT_AREA_MM2 = (1.0, 200.0)


@register("hemoglobin_density", unit="OD", regions=ALL_REGIONS, direction="more redness",
          reference=SEPARATION_REFERENCE, family="redness")
def hemoglobin_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean hemoglobin optical density (−ln reflectance along the hemoglobin direction)."""
    return float(img.hemoglobin[mask].mean())


@register("hemoglobin_variation", unit="OD", regions=ALL_REGIONS, direction="more redness",
          reference=SEPARATION_REFERENCE, family="redness")
def hemoglobin_variation(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Standard deviation of hemoglobin density (blotchiness)."""
    return float(img.hemoglobin[mask].std())


@register("hemoglobin_relative_variation", unit="%", regions=ALL_REGIONS, direction="more redness",
          reference=SEPARATION_REFERENCE, family="redness")
def hemoglobin_relative_variation(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Coefficient of variation of hemoglobin density, 100 · std / mean."""
    v = img.hemoglobin[mask]
    return float(100.0 * v.std() / max(float(v.mean()), 1e-6))


@register("erythema_index", unit="EI", regions=ALL_REGIONS, direction="more redness",
          reference="Dawson et al., Phys. Med. Biol. 25, 1980; Diffey et al., Br. J. Dermatol. "
                    "111, 1984: EI = 100·(log10(1/G) − log10(1/R)).", family="redness")
def erythema_index(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean erythema index on illumination-corrected linear red and green reflectance."""
    return float(img.erythema[mask].mean())


@register("a_star", unit="CIELAB a*", regions=ALL_REGIONS, direction="more redness",
          reference="CIE 15:2004 CIELAB (D65) via skimage.color.rgb2lab.", family="redness")
def a_star(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean CIELAB a* (red–green axis) of the corrected image."""
    return float(img.lab[..., 1][mask].mean())


@register("red_area_fraction", unit="%", regions=ALL_REGIONS, direction="more redness",
          reference="Absolute threshold on hemoglobin density (0.30 OD), not a per-photo "
                    "percentile, so it is comparable between visits.", family="redness")
def red_area_fraction(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Share of the region whose hemoglobin density exceeds 0.30 OD."""
    return float(100.0 * (img.hemoglobin[mask] > HB_RED_OD).mean())


@register("red_spot_density", unit="1/cm²", regions=ALL_REGIONS, direction="more redness",
          reference="Connected components of hemoglobin density ≥ 0.05 OD above its local "
                    "(8 mm) skin background, ≥ 1 mm².", family="redness")
def red_spot_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Red spots/blotches per cm² (counted at their strongest pixel)."""
    _, _, peaks = img.blobs("red", img.excess("hemoglobin", RED_BACKGROUND_MM), RED_SPOT_MIN_OD,
                            *RED_SPOT_AREA_MM2)
    inside = mask[peaks[:, 0], peaks[:, 1]] if len(peaks) else np.zeros(0, bool)
    return float(inside.sum() / max(area_cm2(mask, scale), 1e-6))


@register("redness_index", unit="OD", regions=("whole_face",), direction="more redness",
          reference=SEPARATION_REFERENCE, family="redness")
def redness_index(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Summary redness index: mean hemoglobin density of the whole face.

    Diffuse and patchy redness both raise it; exposure and lighting gradients
    go to the neutral component and do not.
    """
    return float(img.hemoglobin[mask].mean())
