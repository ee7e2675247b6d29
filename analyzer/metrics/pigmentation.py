"""Pigmentation metrics: melanin density and index, ITA°, brown spots, evenness of tone."""
from __future__ import annotations

import numpy as np

from .. import colour
from .image import SkinImage, area_cm2, masked_smooth
from .registry import ALL_REGIONS, register

SPOT_BACKGROUND_MM = 8.0      # local skin background for brown spots
SPOT_MIN_OD = 0.04            # spot: melanin above its local background by this
SPOT_AREA_MM2 = (0.5, 100.0)
EVENNESS_TREND_MM = 10.0      # slow shading/tone trend removed before evenness
SPOT_WEIGHT = 2.0             # weight of spot melanin excess in the summary index

MEL_REF = ("Optical-density separation into melanin / hemoglobin / neutral "
           "(skimage.color.separate_stains; basis: Jacques 2013, Prahl 1999; cf. Tsumura et al., "
           "SIGGRAPH 2003).")


@register("melanin_density", unit="OD", regions=ALL_REGIONS, direction="more pigmentation",
          reference=MEL_REF, family="pigmentation")
def melanin_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean melanin optical density (−ln reflectance along the melanin direction)."""
    return float(img.melanin[mask].mean())


@register("melanin_variation", unit="OD", regions=ALL_REGIONS, direction="less even tone",
          reference=MEL_REF, family="pigmentation")
def melanin_variation(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Standard deviation of melanin density."""
    return float(img.melanin[mask].std())


@register("melanin_relative_variation", unit="%", regions=ALL_REGIONS, direction="less even tone",
          reference=MEL_REF, family="pigmentation")
def melanin_relative_variation(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Coefficient of variation of melanin density, 100 · std / mean."""
    v = img.melanin[mask]
    return float(100.0 * v.std() / max(float(v.mean()), 1e-6))


@register("melanin_index", unit="MI", regions=ALL_REGIONS, direction="more pigmentation",
          reference="Dawson et al., Phys. Med. Biol. 25, 1980: MI = 100·log10(1/R).",
          family="pigmentation")
def melanin_index(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean melanin index on corrected linear red reflectance (depends on exposure when uncalibrated)."""
    return float(img.melanin_idx[mask].mean())


@register("ita", unit="degrees", regions=ALL_REGIONS, direction="lighter tone",
          reference="Chardon et al., Int. J. Cosmet. Sci. 13, 1991: ITA° = atan((L*−50)/b*).",
          family="pigmentation")
def ita(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Median individual typology angle (tracks tone; not a phototype)."""
    return float(np.median(colour.ita_degrees(img.lab[mask])))


def _spots(img: SkinImage):
    return img.blobs("brown", img.excess("melanin", SPOT_BACKGROUND_MM), SPOT_MIN_OD, *SPOT_AREA_MM2)


@register("brown_spot_density", unit="1/cm²", regions=ALL_REGIONS, direction="more pigmentation",
          reference="Connected components of melanin density ≥ 0.04 OD above its local (8 mm) "
                    "skin background, ≥ 0.5 mm².", family="pigmentation")
def brown_spot_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Brown spots per cm² (counted at their strongest pixel)."""
    _, _, peaks = _spots(img)
    inside = mask[peaks[:, 0], peaks[:, 1]] if len(peaks) else np.zeros(0, bool)
    return float(inside.sum() / max(area_cm2(mask, scale), 1e-6))


@register("brown_spot_area", unit="%", regions=ALL_REGIONS, direction="more pigmentation",
          reference="As brown_spot_density; share of the region covered by spots.",
          family="pigmentation")
def brown_spot_area(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Share of the region covered by brown spots."""
    labels, _, peaks = _spots(img)
    if not len(peaks):
        return 0.0
    kept = labels[peaks[:, 0], peaks[:, 1]]
    return float(100.0 * np.isin(labels[mask], kept).mean())


@register("tone_unevenness", unit="mOD", regions=ALL_REGIONS, direction="less even tone",
          reference="Std of melanin density after removing a 10 mm Gaussian trend "
                    "(normalised convolution over skin).", family="pigmentation")
def tone_unevenness(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Evenness of tone: spread of melanin density around its slow local trend (smaller = more even)."""
    key = ("detrended_melanin",)
    if key not in img.cache:
        img.cache[key] = img.melanin - masked_smooth(img.melanin, img.skin, img.px(EVENNESS_TREND_MM))
    return float(1000.0 * img.cache[key][mask].std())


@register("pigmentation_index", unit="OD", regions=("whole_face",), direction="more pigmentation",
          reference="This package: mean melanin density + 2 × mean melanin excess of spots.",
          family="pigmentation")
def pigmentation_index(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Summary pigmentation index: mean melanin density + 2 × mean spot excess (OD).

    The spot excess is melanin above the local 8 mm skin background by more
    than 0.04 OD (the part above that), averaged over the face; darker tone
    and more or darker spots both raise the index.
    """
    ex = np.clip(img.excess("melanin", SPOT_BACKGROUND_MM)[mask] - SPOT_MIN_OD, 0, None)
    return float(img.melanin[mask].mean() + SPOT_WEIGHT * ex.mean())
