"""Skin metrics: registry and the function that measures every metric on a photo."""
from __future__ import annotations

import math
from dataclasses import dataclass

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

__all__ = ["measure_all", "skin_image", "corrected_skin_image", "work_masks", "WorkFrame", "REGISTRY", "Metric", "register",
           "markdown_table", "ALL_REGIONS", "SUMMARY_METRICS", "INTEROCULAR_MM"]

CROP_MARGIN_MM = 8.0           # context around the face box for filters and local backgrounds
MIN_REGION_MM2 = 20.0          # smaller regions are reported missing
# Working scale: the face crop is resampled to this many pixels per millimetre
# before any metric runs (area average when shrinking, linear interpolation
# when enlarging), so the filters cost the same whatever the camera resolution
# and distance, and the numbers do not depend on them.  4 px/mm still resolves
# the finest band measured (0.1–0.3 mm: σ 0.6 px) and the 0.15 mm Sato scale.
# Every photo is resampled, also one that is already at 4 px/mm or below:
# resampling by a factor near 1 blurs by about 1/6 px² (the interpolation
# weights of a pixel's two neighbours), which a photo used as it is would skip;
# on the phantom at 4.1 px/mm a retake 3–6 % farther away (used as is) read
# +2–4 % texture against a baseline resampled from 4.07 px/mm.
WORK_PX_PER_MM = 4.0
SUMMARY_METRICS = {"texture": "texture_index", "redness": "redness_index",
                   "pigmentation": "pigmentation_index"}


@dataclass(frozen=True)
class WorkFrame:
    """Where the metrics of one photo run: a crop of it, resampled to the working scale.

    ``rows``, ``cols`` is the crop in photo pixels (the face box plus 8 mm);
    ``size`` is the crop's ``(width, height)`` at the working scale (``None``:
    the crop is used as it is; only frames built by hand); ``px_per_mm`` is
    the working scale.
    """

    rows: slice
    cols: slice
    size: tuple[int, int] | None
    px_per_mm: float
    photo_px_per_mm: float | None = None   # the photo's own scale (what it resolves)

    @classmethod
    def of(cls, face: FaceLandmarks, shape: tuple[int, int], px_per_mm: float | None = None) -> "WorkFrame":
        """The frame of a photo of ``shape`` around ``face``, whose scale is ``px_per_mm``
        (default: from the face's inter-ocular distance)."""
        px_per_mm = face.interocular_px / INTEROCULAR_MM if px_per_mm is None else float(px_per_mm)
        x, y, w, h = face.box
        m = int(round(CROP_MARGIN_MM * px_per_mm))
        rows = slice(max(0, y - m), min(shape[0], y + h + m))
        cols = slice(max(0, x - m), min(shape[1], x + w + m))
        f = WORK_PX_PER_MM / px_per_mm
        ch, cw = rows.stop - rows.start, cols.stop - cols.start
        size = (max(1, int(round(cw * f))), max(1, int(round(ch * f))))
        return cls(rows, cols, size, px_per_mm * 0.5 * (size[0] / cw + size[1] / ch), px_per_mm)

    @property
    def matrix(self) -> np.ndarray:
        """3×3 matrix: photo pixel → working pixel (cv2 pixel-centre convention)."""
        sx = sy = 1.0
        if self.size is not None:
            sx = self.size[0] / (self.cols.stop - self.cols.start)
            sy = self.size[1] / (self.rows.stop - self.rows.start)
        return np.array([[sx, 0, (0.5 - self.cols.start) * sx - 0.5],
                         [0, sy, (0.5 - self.rows.start) * sy - 0.5], [0, 0, 1.0]])

    def resample(self, crop: np.ndarray) -> np.ndarray:
        """A crop (photo pixels) at the working scale: area average when shrinking,
        linear interpolation when enlarging (``INTER_AREA`` would repeat pixels)."""
        if self.size is None:
            return crop
        shrink = self.size[0] <= crop.shape[1]
        return cv2.resize(crop, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def work_masks(regions: RegionMasks, frame: WorkFrame) -> dict[str, np.ndarray]:
    """Every region of ``regions`` as a bool mask of the work frame.

    Pasted from the regions' face-box crops (no full-size mask is built).  At
    a reduced working scale a working pixel is in a region when more than half
    of its footprint is: a box mean of the footprint's width, sampled
    bilinearly at the working pixel's centre (within a pixel or so of
    ``cv2.INTER_AREA`` on the outline, ~6× faster on 12 MP photos).
    """
    brows, bcols = regions.box
    r0, r1 = max(brows.start, frame.rows.start), min(brows.stop, frame.rows.stop)
    c0, c1 = max(bcols.start, frame.cols.start), min(bcols.stop, frame.cols.stop)
    shape = (frame.rows.stop - frame.rows.start, frame.cols.stop - frame.cols.start)
    if frame.size is not None:
        k = 2 * int(0.5 * shape[1] / frame.size[0]) + 1  # odd box ≈ footprint width
    out = {}
    for name in regions.names():
        m = np.zeros(shape, np.uint8)
        if r1 > r0 and c1 > c0:
            m[r0 - frame.rows.start:r1 - frame.rows.start, c0 - frame.cols.start:c1 - frame.cols.start] = \
                regions.crop(name)[r0 - brows.start:r1 - brows.start, c0 - bcols.start:c1 - bcols.start]
        if frame.size is not None:
            m = cv2.resize(cv2.blur(m * np.uint8(255), (k, k)), frame.size,
                           interpolation=cv2.INTER_LINEAR) >= 128
        out[name] = m.astype(bool)
    return out


def skin_image(rgb: np.ndarray, face: FaceLandmarks, regions: RegionMasks,
               correction: colour.ColourCorrection, px_per_mm: float | None = None,
               exact=None) -> SkinImage:
    """The colour-corrected work frame of a photo and the maps every metric reads.

    Built once per photo: ``compare`` reuses it with other region masks, so a
    photo's filters and local skin backgrounds are the same in its analysis
    and in every comparison (its own whole-face skin is their support).
    ``px_per_mm`` is the photo's scale when known better than from its own
    face (:class:`WorkFrame`).  ``exact``: the chroma the photo's JPEG holds
    (:class:`analyzer.jpegchroma.ExactChroma`), read instead of the decode's
    rounded chroma.
    """
    frame = WorkFrame.of(face, rgb.shape[:2], px_per_mm)
    masks = work_masks(regions, frame)
    at = None
    if exact is not None:
        def at(srgb):   # the work pixels' centres in the photo, and what the decode rounded there
            v, u = np.mgrid[0:srgb.shape[0], 0:srgb.shape[1]].astype(np.float32)
            to_photo = np.linalg.inv(frame.matrix)
            return exact.rgb_delta_at(srgb, to_photo[1, 1] * v + to_photo[1, 2], to_photo[0, 0] * u + to_photo[0, 2])
    return corrected_skin_image(rgb[frame.rows, frame.cols], frame.resample, correction, frame.px_per_mm,
                                masks["whole_face"], frame=frame, own_masks=(regions, masks), rounded_away=at)


def corrected_skin_image(srgb: np.ndarray, resample, correction: colour.ColourCorrection,
                         px_per_mm: float, skin: np.ndarray, rounded_away=None, **fields) -> SkinImage:
    """A :class:`SkinImage` of an sRGB crop: resampled, then colour-corrected.

    Parameters
    ----------
    srgb : ndarray (H, W, 3) uint8
        The crop, in photo pixels.
    resample : callable
        Array in photo pixels → array at ``px_per_mm`` (e.g. :meth:`WorkFrame.resample`).
        Linear light is resampled, not the encoded values, through 16-bit
        linear light, which cv2 converts and resamples several times faster.
    correction : ColourCorrection
        Its ``matrix`` is applied to the resampled linear light.
    px_per_mm : float
    skin : ndarray (h, w) bool
        Skin mask, already at ``px_per_mm``.
    rounded_away : callable, optional
        sRGB ``uint8`` at ``px_per_mm`` → the code values (float32, RGB) the JPEG
        decode rounded away there (:meth:`analyzer.jpegchroma.ExactChroma.rgb_delta_at`),
        added to first order in linear light (they are below a level).
    **fields
        Further :class:`SkinImage` fields (``frame``, ``own_masks``).
    """
    linear = resample(colour.srgb_to_linear_u16(srgb)).astype(np.float32) * np.float32(1 / 65535)
    small = resample(srgb)
    if rounded_away is not None:
        linear += colour.linear_change(small, rounded_away(small))
    linear = cv2.transform(linear, np.asarray(correction.matrix, np.float32))
    return SkinImage(linear, px_per_mm, skin, srgb=small, colour=correction, **fields)


def _number(value) -> float | None:
    if value is None:
        return None
    v = float(value)
    return round(v, 6) if math.isfinite(v) else None


def measure_all(rgb: np.ndarray, regions: RegionMasks, face: FaceLandmarks, *,
                illuminant=None, correction: colour.ColourCorrection | None = None,
                use_checker: bool = True, image: SkinImage | None = None,
                masks: dict[str, np.ndarray] | None = None):
    """Measure every registered metric on every region it is registered for.

    Parameters
    ----------
    rgb : ndarray, RGB uint8
    regions : RegionMasks
        Where to measure (image resolution).  Without ``image`` its
        ``whole_face`` is also the skin support of the filters.
    face : FaceLandmarks
    illuminant : array-like of 3 floats, optional (keyword-only)
        Reference background illuminant (linear RGB), e.g. the baseline's
        ``summary["colour"]["illuminant"]``: this photo's background is mapped
        onto it, which also equalises exposure between the two photos.
    correction : ColourCorrection, optional (keyword-only)
        Use this colour correction as is (skips detection and estimation).
    use_checker : bool
        Look for an X-Rite ColorChecker Classic first.
    image : SkinImage, optional (keyword-only)
        This photo's :func:`skin_image` (e.g. from its analysis): its maps are
        reused and only the aggregation over ``regions`` runs.  ``illuminant``,
        ``correction`` and ``use_checker`` are then ignored.
    masks : dict of name → bool ndarray, optional (keyword-only)
        With ``image``: the regions already on its work frame (``regions`` is
        then only used for its names).

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
    if image is None:
        if correction is None:
            correction = colour.colour_correction(rgb, face, illuminant=illuminant,
                                                  use_checker=use_checker)
        image = skin_image(rgb, face, regions, correction)
    correction = image.colour
    warnings: list[str] = list(correction.warnings)
    own_regions, own_masks = image.own_masks or (None, None)
    if masks is None:
        masks = own_masks if regions is own_regions else work_masks(regions, image.frame)
    view = image.measuring(masks["whole_face"])
    px_per_mm = image.px_per_mm
    min_px = MIN_REGION_MM2 * px_per_mm ** 2

    metrics: list[dict] = []
    values: dict[tuple[str, str], float | None] = {}
    failed: set[str] = set()
    too_small = {region for region in {r for m in REGISTRY.values() for r in m.regions}
                 if masks.get(region) is None or np.count_nonzero(masks[region]) < min_px}
    warnings += [f"{region}: region too small or not visible ({MIN_REGION_MM2:g} mm² at least); "
                 "its metrics are not measured" for region in sorted(too_small)]
    for metric in REGISTRY.values():
        for region in metric.regions:
            value = None
            if region not in too_small and metric.name not in failed:
                try:
                    value = _number(metric.func(view, masks[region], px_per_mm))
                except Exception as exc:  # one failing metric must not stop the analysis
                    failed.add(metric.name)
                    warnings.append(f"{metric.name}: not measured ({type(exc).__name__}: {exc})")
            values[(metric.name, region)] = value
            metrics.append({"name": metric.name, "region": region, "value": value,
                            "unit": metric.unit, "direction": metric.direction})

    image.keep_maps_of(view)
    ita = values.get(("ita", "whole_face"))
    summary = {key: values.get((name, "whole_face")) for key, name in SUMMARY_METRICS.items()}
    summary.update({
        "units": {key: REGISTRY[name].unit for key, name in SUMMARY_METRICS.items()},
        "ita_deg": ita,
        "ita_category": colour.ita_category(ita) if ita is not None else None,
        "colour_calibrated": bool(correction.calibrated),
        "colour": correction.to_dict(),
        "px_per_mm": round(getattr(image.frame, "photo_px_per_mm", None)
                           or face.interocular_px / INTEROCULAR_MM, 4),
        "work_px_per_mm": round(px_per_mm, 4),
    })
    return metrics, summary, warnings
