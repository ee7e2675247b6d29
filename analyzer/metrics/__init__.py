"""Skin metrics: registry and the function that measures every metric on a photo."""
from __future__ import annotations

import math

import cv2
import numpy as np

from .. import colour
from ..face import INTEROCULAR_MM, FaceLandmarks
from ..regions import RegionMasks
from . import texture  # noqa: F401, I001  (import order = README table order)
from . import redness  # noqa: F401
from . import pigmentation  # noqa: F401
from .image import SkinImage
from .registry import ALL_REGIONS, REGISTRY, Metric, markdown_table, register

__all__ = ["measure_all", "REGISTRY", "Metric", "register", "markdown_table", "ALL_REGIONS",
           "SUMMARY_METRICS", "INTEROCULAR_MM"]

CROP_MARGIN_MM = 8.0           # context around the face box for filters and local backgrounds
MIN_REGION_MM2 = 20.0          # smaller regions are reported missing
# Working scale: the face crop is resampled (area average) to at most this many
# pixels per millimetre before any metric runs, so the filters cost the same
# whatever the camera resolution and distance, and the numbers do not depend on
# them.  4 px/mm still resolves the finest band measured (0.1–0.3 mm: σ 0.6 px)
# and the 0.15 mm Sato scale; photos below it are measured at their own scale.
WORK_PX_PER_MM = 4.0
SUMMARY_METRICS = {"texture": "texture_index", "redness": "redness_index",
                   "pigmentation": "pigmentation_index"}


def _crop_box(face: FaceLandmarks, shape: tuple[int, int], px_per_mm: float) -> tuple[slice, slice]:
    x, y, w, h = face.box
    m = int(round(CROP_MARGIN_MM * px_per_mm))
    return (slice(max(0, y - m), min(shape[0], y + h + m)),
            slice(max(0, x - m), min(shape[1], x + w + m)))


def _number(value) -> float | None:
    if value is None:
        return None
    v = float(value)
    return round(v, 6) if math.isfinite(v) else None


def measure_all(rgb: np.ndarray, regions: RegionMasks, face: FaceLandmarks, *,
                illuminant=None, correction: colour.ColourCorrection | None = None,
                use_checker: bool = True):
    """Measure every registered metric on every region it is registered for.

    Parameters
    ----------
    rgb : ndarray, RGB uint8
    regions : RegionMasks
        Boolean masks at image resolution.
    face : FaceLandmarks
    illuminant : array-like of 3 floats, optional (keyword-only)
        Reference background illuminant (linear RGB), e.g. the baseline's
        ``summary["colour"]["illuminant"]``: this photo's background is mapped
        onto it, which also equalises exposure between the two photos.
    correction : ColourCorrection, optional (keyword-only)
        Use this colour correction as is (skips detection and estimation).
    use_checker : bool
        Look for an X-Rite ColorChecker Classic first.

    Returns
    -------
    metrics : list of dict
        One entry per (metric, region): ``name``, ``region``, ``value`` (float or
        ``None`` when it could not be measured), ``unit``, ``direction``.
    summary : dict
        ``texture``, ``redness``, ``pigmentation`` indices (absolute; larger =
        more of the concern), ``ita_deg``, ``ita_category``,
        ``colour_calibrated``, ``px_per_mm`` (of the photo), ``work_px_per_mm`` (where the
        metrics ran) and the colour correction used.
    warnings : list of str
    """
    warnings: list[str] = []
    px_per_mm = face.interocular_px / INTEROCULAR_MM
    if correction is None:
        correction = colour.colour_correction(rgb, face, illuminant=illuminant, use_checker=use_checker)
    warnings.extend(correction.warnings)
    rows, cols = _crop_box(face, rgb.shape[:2], px_per_mm)
    srgb = rgb[rows, cols]
    linear = colour.srgb_to_linear(srgb)
    masks = {name: regions[name][rows, cols] for name in regions.names()}
    f = WORK_PX_PER_MM / px_per_mm
    if f < 1.0:  # resample once to the working scale (area average of linear light)
        h, w = srgb.shape[:2]
        size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
        linear = cv2.resize(linear, size, interpolation=cv2.INTER_AREA)
        srgb = cv2.resize(srgb, size, interpolation=cv2.INTER_AREA)
        masks = {name: cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
                 for name, m in masks.items()}
        px_per_mm = px_per_mm * 0.5 * (size[0] / w + size[1] / h)
    linear = correction.apply(linear)
    skin = masks["whole_face"]
    img = SkinImage(linear, px_per_mm, skin, srgb=srgb, correction=correction.matrix)
    min_px = MIN_REGION_MM2 * px_per_mm ** 2

    metrics: list[dict] = []
    values: dict[tuple[str, str], float | None] = {}
    failed: set[str] = set()
    for metric in REGISTRY.values():
        for region in metric.regions:
            mask = masks.get(region)
            value = None
            if mask is None or mask.sum() < min_px:
                warnings.append(f"{metric.name}/{region}: region too small or not visible; not measured")
            elif metric.name not in failed:
                try:
                    value = _number(metric.func(img, mask, px_per_mm))
                except Exception as exc:  # one failing metric must not stop the analysis
                    failed.add(metric.name)
                    warnings.append(f"{metric.name}: not measured ({type(exc).__name__}: {exc})")
            values[(metric.name, region)] = value
            metrics.append({"name": metric.name, "region": region, "value": value,
                            "unit": metric.unit, "direction": metric.direction})

    ita = values.get(("ita", "whole_face"))
    summary = {key: values.get((name, "whole_face")) for key, name in SUMMARY_METRICS.items()}
    summary.update({
        "units": {key: REGISTRY[name].unit for key, name in SUMMARY_METRICS.items()},
        "ita_deg": ita,
        "ita_category": colour.ita_category(ita) if ita is not None else None,
        "colour_calibrated": bool(correction.calibrated),
        "colour": correction.to_dict(),
        "px_per_mm": round(face.interocular_px / INTEROCULAR_MM, 4),
        "work_px_per_mm": round(px_per_mm, 4),
    })
    return metrics, summary, warnings
