"""Pigmentation metrics: melanin density and index, ITA°, brown spots, evenness of tone."""
from __future__ import annotations

import cv2
import numpy as np

from ..colour import SEPARATION_REFERENCE
from .image import SkinImage, area_cm2, clipped_near, guided_filter, guided_slope, masked_smooth
from .registry import ALL_REGIONS, register

SPOT_BACKGROUND_MM = 8.0      # local skin background for brown spots
SPOT_MIN_OD = 0.04            # spot: melanin above its local background by this
SPOT_AREA_MM2 = (0.5, 100.0)
EVENNESS_TREND_MM = 10.0      # slow shading/tone trend removed before evenness
BURDEN_GUIDE_MM = 4.0         # pigment burden: window radius of the guided melanin map
BURDEN_GUIDE_EPS = 1e-4       # ... and its regularisation (texture density variance, OD²)
BURDEN_SMOOTH_MM = 1.0        # pigment burden: melanin pre-smoothing (below it, relief leaks in)
BURDEN_BACKGROUND_MM = 2.0    # pigment burden: local skin background (σ)
BURDEN_MIN_OD = 0.02          # pigment burden: excess counted above this
BURDEN_EDGE_MM = 1.0          # pigment burden: ignore skin this close to its edge


@register("melanin_density", unit="OD", regions=ALL_REGIONS, direction="more pigmentation",
          reference=SEPARATION_REFERENCE, family="pigmentation")
def melanin_density(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Mean melanin optical density (−ln reflectance along the melanin direction)."""
    return float(img.melanin[mask].mean())


@register("melanin_variation", unit="OD", regions=ALL_REGIONS, direction="less even tone",
          reference=SEPARATION_REFERENCE, family="pigmentation")
def melanin_variation(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Standard deviation of melanin density."""
    return float(img.melanin[mask].std())


@register("melanin_relative_variation", unit="%", regions=ALL_REGIONS, direction="less even tone",
          reference=SEPARATION_REFERENCE, family="pigmentation")
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
    return float(np.median(img.ita[mask]))


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
    if key not in img.local:
        img.local[key] = img.melanin - masked_smooth(img.melanin, img.support, img.px(EVENNESS_TREND_MM))
    return float(1000.0 * img.local[key][mask].std())


def _burden_skin(img: SkinImage) -> np.ndarray:
    """Skin the pigment burden reads: the measured skin without clipped highlights."""
    key = ("burden_skin",)
    if key not in img.local:
        ok = img.support.copy()
        if img.srgb is not None:
            ok &= ~clipped_near(img.srgb, img.px_per_mm)
        img.local[key] = ok
    return img.local[key]


def burden_slope(img: SkinImage) -> np.ndarray:
    """Slope of the guided melanin map (:func:`burden_map`): per window, how much melanin
    goes with a unit of texture density, i.e. how much of the local detail is
    pigment.  The photo's own fit, unless :func:`share_burden_slope` set another."""
    key = ("burden_slope",)
    if key not in img.local:
        img.local[key] = guided_slope(img.lum_density_denoised, img.melanin, _burden_skin(img),
                                      int(round(img.px(BURDEN_GUIDE_MM))), BURDEN_GUIDE_EPS)
    return img.local[key]


def share_burden_slope(baseline: SkinImage, followup: SkinImage, follow_to_base: np.ndarray) -> None:
    """Give both photos of a comparison the mean of their two burden slopes.

    The slope says where local detail is pigment; it rests on the melanin
    map's fine detail, which on dark skin is mostly JPEG error (4:2:0 colour,
    coarse chroma steps that a 4 % brighter exposure or another quality
    setting redraws).  Fitted per photo, that redraw alone moved the burden of
    unchanged dark skin by 1.6 % RMS (phantom, same pose, exposure 0.92–1.08,
    JPEG 90); with the mean slope of the two photos, 0.24 %.  The detail
    itself (the texture density, which JPEG keeps in fine steps) and the
    local melanin level stay each photo's own.  A shared slope reads a change
    of relief (neutral detail inside pigmented windows) as pigment, which
    smoothing the map by 1 mm instead of 0.5 mm mostly keeps out.  On the
    phantom harness's retakes (4.1 px/mm, the same 40 no-change pairs per
    tone) the two together took the burden's retake RMS from 1.02 / 1.31 /
    2.45 % to 0.55 / 0.76 / 0.93 % (light / brown / dark), while spots fading
    to 65 % read −12 to −14 % instead of −19 to −20 % (README, *Shared slope*).

    Parameters
    ----------
    baseline, followup : SkinImage
        The two views being measured (:meth:`SkinImage.measuring`), before any
        pigment burden is computed on them.
    follow_to_base : ndarray (3, 3)
        Follow-up work-frame pixel → baseline work-frame pixel.
    """
    a_b, a_f = burden_slope(baseline), burden_slope(followup)
    (hb, wb), (hf, wf) = a_b.shape, a_f.shape
    m = np.asarray(follow_to_base, np.float64)
    f_on_b = cv2.warpPerspective(a_f, m, (wb, hb), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    b_on_f = cv2.warpPerspective(a_b, m, (wf, hf), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
    for img, shared in ((baseline, 0.5 * (a_b + f_on_b)), (followup, 0.5 * (a_f + b_on_f))):
        img.local[("burden_slope",)] = shared
        img.local.pop(("pigment_burden",), None)


def burden_map(img: SkinImage) -> tuple[np.ndarray, np.ndarray]:
    """Melanin excess over the local skin background above the burden threshold, and its support.

    The melanin map rests on colour, which a JPEG keeps at half resolution
    (4:2:0) and quantises coarsely: its block errors changed the burden by
    several % between two photos of the same skin.  So the map is first
    refined by a guided filter (windows of 4 mm radius over unclipped skin)
    with the texture density (:attr:`SkinImage.lum_density_denoised`, whose
    detail is mostly brightness, which JPEG keeps at full resolution and in
    fine steps) as guide: where melanin and that density vary together (a
    spot is darker *and* browner) the map takes the density's detail; where
    they do not (relief, which is neutral) it keeps its local mean.  On 9
    no-change phantom pairs per tone (4.1 px/mm) this took the burden's
    retake RMS from 2.3 to 0.85 % (light skin) and 1.7 to 1.5 % (dark), while
    a 35 % fading of the spots read −19 % instead of −15 / −8 %.  In a
    comparison both photos use the mean of their two fits' slopes
    (:func:`share_burden_slope`).  The guide
    also carries hemoglobin, so redness that varies within a window leaks
    in: 0.3 OD of even redness raised the burden by ~4 % on the phantom,
    at the skin's edge where the redness fades.  The refined map is smoothed by 1 mm,
    its background is a Gaussian mean (σ = 2 mm), both normalised
    convolutions over unclipped skin, and the part of the excess above
    0.02 OD is kept.  Pixels within 0.5 mm of a clipped channel (sRGB ≥ 250,
    where the chromophore split fails: a brighter exposure otherwise raised
    the value by 6 %) count as zero excess; skin within 1 mm of its edge is
    left out.
    """
    key = ("pigment_burden",)
    if key not in img.local:
        ok = _burden_skin(img)
        guided = guided_filter(img.lum_density_denoised, img.melanin, ok,
                               int(round(img.px(BURDEN_GUIDE_MM))), BURDEN_GUIDE_EPS, slope=burden_slope(img))
        mel = masked_smooth(guided, ok, img.px(BURDEN_SMOOTH_MM))
        excess = mel - masked_smooth(mel, ok, img.px(BURDEN_BACKGROUND_MM))
        # clipped pixels count as skin without measurable excess (leaving them out of the
        # mean would raise it whenever a brighter exposure clips more of the highlights)
        burden = np.clip(excess - BURDEN_MIN_OD, 0, None)
        img.local[key] = np.where(ok, burden, 0.0).astype(np.float32)
    return img.local[key], img.inner(BURDEN_EDGE_MM)


@register("pigmentation_index", unit="mOD", regions=ALL_REGIONS, direction="more pigmentation",
          reference="This package: pigment burden, mean melanin excess (> 0.02 OD) over a 2 mm local "
                    "skin background of the melanin map refined by a guided filter (He et al., "
                    "TPAMI 2013; texture density as guide; in a comparison both photos share its "
                    "slope) and smoothed by 1 mm; tone (mean melanin) excluded.",
          family="pigmentation")
def pigmentation_index(img: SkinImage, mask: np.ndarray, scale: float) -> float:
    """Summary pigment burden: mean melanin excess over the local skin background (mOD;
    whole face: the summary; per region: where a single region changed).

    Spots, freckles, sun spots and patchy (uneven) pigment raise the local
    melanin above a smooth 2 mm background; the part of that excess above
    0.02 OD, averaged over the whole face (1 mm inside its edge, without
    clipped highlights), is the burden: more, larger or darker spots raise it,
    fading spots lower it.  Uniform skin tone does not enter (mean melanin
    density, melanin index and ITA° track tone), nor do exposure, white
    balance or smooth lighting gradients (they add a constant or a slow term
    to the density).  Retake noise in a comparison on the phantom (95th
    percentile; the two photos share the guided filter's slope) is 0.8–1.3 %
    of the value on light to brown skin and 1.4 % on dark skin at 8.2 px/mm,
    1.1–1.3 % and 2.0 % at 4.1 px/mm.
    """
    excess, support = burden_map(img)
    m = mask & support
    if not m.any():  # a small region with no skin 1 mm inside its edge: missing
        return float("nan")
    return float(1000.0 * excess[m].mean())
