"""What changed between two visits, and whether it is larger than retake noise.

Pitfall avoided here: warping a photo into the baseline frame resamples (blurs)
it, which by itself reads as smoother texture and fewer spots.  So each photo
is measured *in its own pixels*: the baseline's region masks, restricted to
skin present in both photos, are mapped through the alignment transform into
the follow-up's pixels, and the same metric functions run on both photos.

A delta is ``significant`` when its size exceeds the minimal detectable change
(MDC: the larger of 1.96 × the RMS and the 95th percentile of |delta| over
phantom no-change retake pairs, measured by ``benchmarks/accuracy.py`` and
stored in ``analyzer/data/mdc.json`` with its provenance, one calibration per
photo resolution; see :func:`load_mdc`).  Status is ``improved`` / ``worse`` /
``no detectable change``, or ``not comparable`` when the alignment is not
trusted; every metric's direction says whether more is worse.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .face import INTEROCULAR_MM
from .regions import RegionMasks
from .version import ALGORITHM_VERSION

MDC_PATH = Path(__file__).with_name("data") / "mdc.json"
SUMMARY_KEYS = ("texture", "redness", "pigmentation")
# Redness is expected for a few days after micro-needling and similar procedures.
POST_PROCEDURE_DAYS = 7


# A calibration serves photos down to this factor below its own resolution.
MDC_RESOLUTION_TOLERANCE = 1.1


def read_calibrations(path: Path = MDC_PATH) -> list[dict]:
    """The MDC calibrations stored in ``path`` (none when it does not exist), as stored.

    Each is ``{"summary": {key: mdc}, "summary_by_tone": {ita_category: {key: mdc}},
    "metrics": {"name@region": mdc}, "same_settings": {the same three, "pairs": n},
    "decoded_colour": {the same}, "provenance": {..., "px_per_mm": ...}}``
    (``same_settings``: photos saved alike; ``decoded_colour``: colour read from
    decoded pixels; :func:`summary_mdc`, :func:`metric_mdc`),
    measured by ``benchmarks/accuracy.py --write-mdc`` at one phantom scale; a
    file with a single calibration (older format) reads as a list of one.
    """
    if not Path(path).is_file():
        return []
    data = json.loads(Path(path).read_text())
    return data.get("calibrations", [data])


@lru_cache(maxsize=4)
def mdc_calibrations(path: Path = MDC_PATH) -> tuple[dict, ...]:
    """Every MDC calibration in ``path`` (:func:`read_calibrations`), lowest photo
    resolution first; an empty calibration when there is none."""
    calibrations = read_calibrations(path)
    if not calibrations:
        return ({"summary": {}, "metrics": {}, "provenance": {"missing": str(path)}},)
    return tuple(sorted(calibrations, key=lambda c: c.get("provenance", {}).get("px_per_mm", 0.0)))


def load_mdc(path: Path = MDC_PATH, px_per_mm: float | None = None) -> dict:
    """The MDC calibration for photos with ``px_per_mm`` (the lower of a pair's two).

    Retake noise depends on resolution: the metrics run at 4 px/mm, so a photo
    with more pixels per millimetre is averaged down and its noise (sensor,
    JPEG, 4:2:0 chroma) falls.  Calibrations are measured at several phantom
    resolutions; this returns the one at the highest resolution not above
    ``px_per_mm`` (10 % tolerance).  Without ``px_per_mm``, or below every
    calibrated resolution, it returns the lowest-resolution one: the noisiest,
    so the most conservative threshold.
    """
    calibrations = mdc_calibrations(path)
    if px_per_mm is None:
        return calibrations[0]
    fits = [c for c in calibrations
            if c.get("provenance", {}).get("px_per_mm", 0.0) <= MDC_RESOLUTION_TOLERANCE * px_per_mm]
    return fits[-1] if fits else calibrations[0]


def more_is(direction: str) -> str:
    """``"worse"`` when a larger value means more of a concern, else ``"neutral"``.

    Directions come from the metric registry: "more texture", "more redness",
    "more pigmentation", "less even tone", "darker tone" are concerns; "lighter
    tone" (ITA°) is reported as higher / lower, not as better or worse.
    """
    return "worse" if direction.startswith(("more ", "less even", "darker")) else "neutral"


NOT_COMPARABLE = "not comparable (alignment not trusted)"


def classify(delta: float | None, mdc: float | None, more: str = "worse") -> tuple[bool | None, str]:
    """``(significant, status)`` of a change given its MDC and what "more" means.

    Status is ``improved`` / ``worse`` (or ``higher`` / ``lower`` for neutral
    metrics), ``no detectable change``, ``not calibrated`` or ``not measured``.
    """
    if delta is None or not np.isfinite(delta):
        return None, "not measured"
    if mdc is None:
        return None, "not calibrated"
    if abs(delta) <= mdc:
        return False, "no detectable change"
    if more == "neutral":
        return True, "higher" if delta > 0 else "lower"
    return True, "worse" if delta > 0 else "improved"


@dataclass
class Comparison:
    """Result of comparing a follow-up with its baseline (JSON via ``to_dict``)."""

    algorithm_version: str
    alignment: dict
    baseline: dict
    followup: dict
    delta: dict
    regions: dict
    flags: list = field(default_factory=list)
    mdc_provenance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def common_regions(baseline_regions: RegionMasks, followup_skin: np.ndarray | RegionMasks,
                   valid: np.ndarray, matrix: np.ndarray) -> tuple[RegionMasks, RegionMasks]:
    """Region masks on skin seen in both photos, in each photo's own pixels.

    Parameters
    ----------
    baseline_regions : RegionMasks
        Regions of the baseline photo (baseline pixels).
    followup_skin : RegionMasks or ndarray of bool
        The follow-up's regions (their ``whole_face`` is used) or its
        whole-face skin mask (follow-up pixels).
    valid : ndarray of bool
        Baseline-frame mask of pixels whose follow-up counterpart is skin: the
        whole photo, or only ``baseline_regions.box``.
    matrix : ndarray (3, 3)
        Follow-up pixel → baseline pixel.

    Work is done on the baseline's and the follow-up's face boxes only; the
    returned masks are kept as crops of those boxes.  ``compare`` uses the
    faster :func:`common_work_masks`; this full-resolution version is its
    reference in the tests.
    """
    if isinstance(followup_skin, RegionMasks):
        fshape = followup_skin.shape
        frows, fcols = followup_skin.box
        fskin = followup_skin.crop("whole_face")
    else:
        fshape = followup_skin.shape[:2]
        frows, fcols = slice(0, fshape[0]), slice(0, fshape[1])
        fskin = followup_skin
    brows, bcols = baseline_regions.box
    bvalid = valid if valid.shape != baseline_regions.shape else valid[brows, bcols]
    fh, fw = fskin.shape
    # follow-up box px -> baseline box px (used as an inverse map: dst = follow-up box)
    from .align import translation

    m = (translation(-bcols.start, -brows.start) @ np.asarray(matrix, np.float64)
         @ translation(fcols.start, frows.start))
    base, follow = {}, {}
    for name in baseline_regions.names():
        b = baseline_regions.crop(name) & bvalid
        warped = cv2.warpPerspective(b.view(np.uint8) * np.uint8(255), m, (fw, fh),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        base[name], follow[name] = b, (warped >= 128) & fskin
    return (RegionMasks.from_crops(base, brows, bcols, baseline_regions.shape),
            RegionMasks.from_crops(follow, frows, fcols, fshape))


def _box_of(analysed) -> tuple[slice, slice]:
    regions = getattr(analysed, "regions", None)
    if regions is not None:
        return regions.box
    h, w = analysed.photo.pixels.shape[:2]
    return slice(0, h), slice(0, w)


def measurable_exclusion(baseline, followup, matrix: np.ndarray) -> np.ndarray:
    """Mask of the skin clipped (or next to clipping) in *either* photo, on the
    baseline's region box (``baseline.regions.box``; the whole photo without regions).

    Exposure differs between visits, so highlights clip in different places;
    leaving out what is clipped in one photo from *both* keeps the two
    measurements on the same skin (otherwise a brighter retake reads as less
    pigment where its highlights grew).  Only the two face boxes are examined.
    """
    from .align import translation, warp_mask
    from .face import INTEROCULAR_MM
    from .metrics.image import clipped_near

    brows, bcols = _box_of(baseline)
    frows, fcols = _box_of(followup)
    b = clipped_near(baseline.photo.pixels[brows, bcols], baseline.face.interocular_px / INTEROCULAR_MM)
    f = clipped_near(followup.photo.pixels[frows, fcols], followup.face.interocular_px / INTEROCULAR_MM)
    # follow-up box px -> baseline box px; warp_mask wants the inverse (baseline box -> follow-up box)
    to_box = translation(-bcols.start, -brows.start) @ matrix @ translation(fcols.start, frows.start)
    return b | warp_mask(f, np.linalg.inv(to_box), b.shape)


def photo_skin_image(analysed, reference=None, illuminant=None, px_per_mm=None):
    """The photo's :class:`~analyzer.metrics.image.SkinImage`, corrected from its background
    and mapped onto ``reference``'s footing (a colour checker's fit is not used here:
    see :func:`colour_footing`).

    Parameters
    ----------
    analysed : AnalysedPhoto
        Its ``skin_image`` and ``correction`` (from the analysis) are reused
        when present (a colour checker is not searched for again) and filled
        in when missing, so a photo compared several times is prepared once.
    reference : array-like of 3 floats, optional
        Background illuminant (linear RGB) of the other photo.  A photo
        corrected from its own background is mapped onto it; that differs from
        its own correction by per-channel gains, applied with
        :meth:`~analyzer.metrics.image.SkinImage.with_gain` so no map that the
        gains cannot change is recomputed.
    illuminant : array-like of 3 floats, optional
        This photo's background illuminant, when known better than its own
        estimate (:func:`colour_footing`: read against the other photo's
        background, point by point).
    px_per_mm : float, optional
        The photo's scale, when known better than from its own face
        (:func:`followup_scale`).  Where it differs from the analysis's by more
        than :data:`SCALE_TOLERANCE` the image is built again at that scale
        (and not kept: the analysis's own image stays the photo's).
    """
    from . import colour
    from .metrics import skin_image

    pixels, face = analysed.photo.pixels, analysed.face
    corr = getattr(analysed, "correction", None)
    if corr is None:  # not analysed here (e.g. from the store): checker, else own background
        corr = analysed.correction = colour.colour_correction(pixels, face, exact=analysed.exact())
        analysed.skin_image = None
    img = getattr(analysed, "skin_image", None)
    if img is None:
        img = analysed.skin_image = skin_image(pixels, face, analysed.regions, corr, exact=analysed.exact())
    if px_per_mm is not None and abs(px_per_mm / img.frame.photo_px_per_mm - 1) <= SCALE_TOLERANCE:
        px_per_mm = None

    def own_correction():  # at the given scale built only where it is used
        return img if px_per_mm is None else skin_image(pixels, face, analysed.regions, corr, px_per_mm,
                                                        exact=analysed.exact())

    checker = corr.source == "colorchecker"
    if corr.source == "none" or corr.illuminant is None or (reference is None and not checker):
        return own_correction()
    light = np.asarray(corr.illuminant if illuminant is None else illuminant, np.float64)
    matrix = colour.correction_from_illuminant(light, None if reference is None else np.asarray(reference))
    mapped = replace(corr, matrix=matrix, source="background" if reference is None else "reference",
                     calibrated=False, fit_error=None,
                     illuminant=tuple(float(v) for v in light))
    own_matrix = np.asarray(corr.matrix)
    if checker or np.count_nonzero(own_matrix - np.diag(np.diag(own_matrix))):  # not diagonal: rebuild
        return skin_image(pixels, face, analysed.regions, mapped, px_per_mm, exact=analysed.exact())
    return own_correction().with_gain(np.diag(matrix) / np.diag(own_matrix), mapped)


BACKGROUND_MISMATCH = 0.03   # |log| chroma difference between the two background readings


def colour_footing(baseline, followup, matrix=None, followup_px_per_mm=None) -> tuple:
    """Both photos' SkinImages on one colour footing: the follow-up's background mapped
    onto the baseline's illuminant, also when a photo has a colour checker.

    Returns ``(baseline image, follow-up image, flag)``; ``flag`` is a message
    (else ``None``) when the gains read point by point and the ratio of the two
    photos' own background estimates disagree in colour by more than 3 %: the
    background itself differs (another backdrop, something moved), so the
    colour footing, and any redness or pigmentation change, is uncertain.

    With ``matrix`` (follow-up pixel → baseline pixel), the follow-up's
    illuminant is the baseline's times the gains read on the same background
    cells in both photos (:func:`analyzer.colour.background_gains`), not its
    own estimate: on the phantom harness redness retake noise (95th
    percentile, 8.2 / 4.1 px/mm) fell from 1.9 / 2.2 % to 1.1 / 1.3 % of the
    mean on light skin and from 3.7 / 3.0 % to 3.6 / 2.8 % on dark skin
    (whose noise then followed the JPEG decode's rounding, read from the file's
    own chroma since algorithm -18: :mod:`analyzer.jpegchroma`).  Without enough shared
    background the own estimates are used.

    A chart calibrates each photo's own absolute colour (its analysis), but
    for a change the background footing was measured steadier
    (``benchmarks/colour_chart.py --pairs 20``: 40 no-change phantom pairs,
    light and dark skin, a chart lit like the face in both photos): false
    alarms were 3 of 40 with background footing, as without any chart, 9 with
    each chart's diagonal fit and 14 with its 3×3 fit (pigmentation retake
    noise on dark skin 3.4 / 3.4 / 6.4 % RMS).  A chart in only one photo
    used to set that photo on another footing and read redness 22.5 % lower
    on an unchanged phantom retake.
    """
    from . import colour

    b_img = photo_skin_image(baseline)
    reference = b_img.colour.illuminant
    illuminant = None
    if matrix is not None and reference is not None:
        gains = colour.background_gains(baseline.photo.pixels, followup.photo.pixels, baseline.face, matrix,
                                        (baseline.exact(), followup.exact()))
        if gains is not None:
            illuminant = np.asarray(reference) * gains
    f_img = photo_skin_image(followup, reference, illuminant, followup_px_per_mm)  # also fills followup.correction
    return b_img, f_img, backdrop_difference(illuminant, followup.correction.illuminant)


def backdrop_difference(read, own) -> str | None:
    """A flag when the follow-up's illuminant ``read`` against the baseline's background and
    its ``own`` estimate (both linear RGB, or ``None``) differ in colour by more than 3 %."""
    if read is None or own is None:
        return None
    chroma = np.log(np.asarray(read, np.float64) / np.asarray(own, np.float64))
    if np.abs(chroma - chroma[1]).max() <= BACKGROUND_MISMATCH:
        return None
    return ("colour: the background around the face looks different in the two photos "
            "(another backdrop, or something moved), so colour is compared on an uncertain "
            "footing and redness or pigmentation changes may be off: photograph both visits "
            "in front of the same plain backdrop")


def work_matrix(matrix: np.ndarray, baseline_image, followup_image) -> np.ndarray:
    """3×3 map from follow-up *work-frame* pixel to baseline work-frame pixel, from
    ``matrix`` (follow-up photo pixel → baseline photo pixel) and the two images' frames."""
    return (baseline_image.frame.matrix @ np.asarray(matrix, np.float64)
            @ np.linalg.inv(followup_image.frame.matrix))


def common_work_masks(baseline_regions: RegionMasks, valid: np.ndarray, matrix: np.ndarray,
                      baseline_image, followup_image) -> tuple[dict, dict]:
    """Region masks on skin seen in both photos, on each photo's work frame.

    As :func:`common_regions`, but the follow-up's masks are the baseline's
    work-frame masks mapped through ``matrix`` onto the follow-up's work frame
    (bilinear, kept where ≥ half), so no full-resolution mask is warped.  The
    baseline keeps only what the follow-up's mask covers, mapped back the same
    way, so the two measure the same skin: a follow-up mask made by resampling
    loses a rim of edge pixels (about 0.2 % of the face on the phantom), and
    skin near its edge carries more pigment burden and relief per area, so
    without this a no-change follow-up read less of both (pigmentation
    −0.28 %, texture −0.28 / −0.48 % on average on light / dark skin; 12
    no-change pairs taken alike per tone, 4.1 px/mm; −0.00 / +0.07 % and
    −0.07 / −0.27 % with it).

    Parameters
    ----------
    baseline_regions : RegionMasks
    valid : ndarray of bool
        Baseline mask (on ``baseline_regions.box``) of pixels whose follow-up
        counterpart is skin and measurable.
    matrix : ndarray (3, 3)
        Follow-up pixel → baseline pixel.
    baseline_image, followup_image : SkinImage
        Their ``frame`` (work frame) and ``skin`` (follow-up's own skin) are used.
    """
    from .metrics import work_masks

    brows, bcols = baseline_regions.box
    common = RegionMasks.from_crops({n: baseline_regions.crop(n) & valid for n in baseline_regions.names()},
                                    brows, bcols, baseline_regions.shape)
    base = work_masks(common, baseline_image.frame)
    m = work_matrix(matrix, baseline_image, followup_image)  # follow-up work px -> baseline work px
    follow = {name: _map_mask(mask, m, followup_image.skin.shape) & followup_image.skin
              for name, mask in base.items()}
    inverse = np.linalg.inv(m)
    base = {name: mask & _map_mask(follow[name], inverse, mask.shape) for name, mask in base.items()}
    return base, follow


def _map_mask(mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``mask`` resampled onto an image of ``shape`` whose pixel ``p`` maps to
    ``matrix @ p`` in the mask's pixels (bilinear, kept where ≥ half)."""
    h, w = shape
    warped = cv2.warpPerspective(mask.view(np.uint8) * np.uint8(255), matrix, (w, h),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped >= 128


JPEG_QUALITY_TOLERANCE = 5    # JPEG qualities further apart than this are flagged
LOSSLESS_FORMATS = {"PNG", "TIFF", "BMP"}


def _file_kind(capture: dict) -> str:
    """``"lossless"`` for PNG, TIFF or BMP, else the format (``""`` when unknown)."""
    fmt = str(capture.get("format") or "")
    return "lossless" if fmt in LOSSLESS_FORMATS else fmt


def compression_difference(baseline_capture: dict, followup_capture: dict) -> str | None:
    """A flag when the two photos were saved differently, else ``None``.

    Compression removes fine colour detail, which the pigment burden reads:
    on phantom pairs differing only in how they were saved
    (``benchmarks/compression.py``, algorithm 2026.11.30-12, 4.1 / 8.2 px/mm),
    JPEG quality 95 against 85 moved the pigmentation index by up to 0.39 /
    0.29 of its MDC and 4:2:0 against 4:4:4 colour by up to 0.48 / 0.54,
    where a second noise draw moved it by ≤ 0.14 / 0.12.

    Parameters
    ----------
    baseline_capture, followup_capture : dict
        ``CaptureInfo.to_dict()`` of each photo (``format``, ``jpeg_quality``,
        ``chroma_subsampling``); unknown values are not compared.
    """
    fb, ff = _file_kind(baseline_capture), _file_kind(followup_capture)
    if not fb or not ff or "array" in (fb, ff):
        return None
    parts = []
    if fb != ff:
        parts.append(f"{fb} vs {ff}")
    qb, qf = baseline_capture.get("jpeg_quality"), followup_capture.get("jpeg_quality")
    if qb and qf and abs(qb - qf) >= JPEG_QUALITY_TOLERANCE:
        parts.append(f"JPEG quality about {qb} vs {qf}")
    cb, cf = baseline_capture.get("chroma_subsampling"), followup_capture.get("chroma_subsampling")
    if cb and cf and cb != cf:
        parts.append(f"colour resolution {cb} vs {cf}")
    if not parts:
        return None
    return ("the two photos were saved differently (" + "; ".join(parts) + "): on the phantom "
            "that alone moved the pigmentation index by up to half of its detectable change; save "
            "every visit with the same camera format and quality")


def same_capture_settings(baseline_capture: dict, followup_capture: dict) -> bool:
    """Whether the two photos were saved alike, so the tighter same-settings MDC applies.

    Alike: both lossless, or both JPEG with the same quality and colour
    resolution (and the same quantisation tables where both fingerprints are
    known: results stored before they were read lack them); and not from two
    different (or one unknown) cameras, nor at ISO sensitivities more than a
    third of a stop apart (:func:`same_iso`).  On the phantom the ISO (sensor noise
    level) and JPEG quality of the two photos move dark skin's texture index (a
    noisier or coarser photo reads rougher), so pairs saved alike get their own
    calibration (``mdc["same_settings"]``, :func:`summary_mdc`); until colour was
    read from the JPEG's own chroma (algorithm -18) they moved its redness too.
    Pixels without a file (``format`` ``"array"``) are never alike.
    """
    kb, kf = _file_kind(baseline_capture), _file_kind(followup_capture)
    if (not kb or kb != kf or kb == "array" or baseline_capture.get("camera") != followup_capture.get("camera")
            or not same_iso(baseline_capture, followup_capture)):
        return False
    if kb == "lossless":
        return True
    keys = ("jpeg_quality", "chroma_subsampling")
    tables = baseline_capture.get("jpeg_tables"), followup_capture.get("jpeg_tables")
    return (all(baseline_capture.get(k) is not None and baseline_capture.get(k) == followup_capture.get(k)
                for k in keys) and (None in tables or tables[0] == tables[1]))


# Photos whose ISO differs by less than this factor (a third of a stop) count as taken alike.
ISO_ALIKE_RATIO = 2 ** (1 / 3)


def same_iso(baseline_capture: dict, followup_capture: dict) -> bool:
    """Whether two photos were taken at about the same ISO (EXIF; both unknown counts
    as the same, one unknown does not).  The ISO sets the sensor noise, which the
    texture index reads as texture: on the phantom a noise level drawn per photo
    (0.5–2 of 8 bits) was most of dark skin's texture retake noise."""
    b_iso, f_iso = baseline_capture.get("iso"), followup_capture.get("iso")
    if not b_iso or not f_iso:
        return not b_iso and not f_iso
    return max(b_iso, f_iso) < ISO_ALIKE_RATIO * min(b_iso, f_iso)


def not_saved_alike(baseline_capture: dict, followup_capture: dict) -> str | None:
    """A note when two JPEGs were saved almost alike but not quite (qualities under
    :data:`JPEG_QUALITY_TOLERANCE` apart, other quantisation tables, ISO a third
    of a stop to a stop apart, or only one naming its camera), which
    :func:`compression_difference`, :func:`camera_difference` and
    :func:`iso_difference` leave unflagged; else ``None``.

    Two HEIC/HEIF photos get a note too: a HEIF file does not say how it was
    compressed (pillow-heif reads bit depth, chroma and colour profile only),
    so such a pair never counts as saved alike.

    Such a pair is judged against the larger retake noise of photos saved
    differently (:func:`summary_mdc`), so the note says how to detect smaller
    texture changes.
    """
    kinds = _file_kind(baseline_capture), _file_kind(followup_capture)
    flagged = (compression_difference(baseline_capture, followup_capture)
               or camera_difference(baseline_capture, followup_capture)
               or iso_difference(baseline_capture, followup_capture))
    if kinds == ("HEIF", "HEIF") and not flagged:
        return ("the two photos are HEIC/HEIF, whose files do not say how they were compressed: "
                "texture is judged against the larger retake noise of photos saved differently; "
                "to detect smaller changes, have the camera save JPEG (on an iPhone: Settings, "
                "Camera, Formats, Most Compatible) or PNG, and use the same camera at the same "
                "setting at every visit")
    if kinds != ("JPEG", "JPEG") or flagged or same_capture_settings(baseline_capture, followup_capture):
        return None
    qb, qf = baseline_capture.get("jpeg_quality"), followup_capture.get("jpeg_quality")
    tb, tf = baseline_capture.get("jpeg_tables"), followup_capture.get("jpeg_tables")
    why = (f"JPEG quality about {qb} vs {qf}" if qb != qf
           else "different JPEG quantisation tables" if tb and tf and tb != tf
           else f"ISO {baseline_capture.get('iso')} vs {followup_capture.get('iso')}"
           if not same_iso(baseline_capture, followup_capture)
           else "only one photo names its camera")
    return (f"the two photos were not saved alike ({why}): texture is judged against the "
            "larger retake noise of photos saved differently; photograph every visit with the "
            "same camera at the same setting to detect smaller changes")


def camera_difference(baseline_capture: dict, followup_capture: dict) -> str | None:
    """A flag when the two photos name different cameras (EXIF make and model), else ``None``.

    Each camera model renders colour with its own processing (tone curve,
    saturation, colour matrix), which the comparison's normalisation to the
    background (a per-channel gain) does not undo; the phantom has no camera
    models, so the size of the effect is not measured here.
    """
    cb, cf = baseline_capture.get("camera"), followup_capture.get("camera")
    if not cb or not cf or cb == cf:
        return None
    return (f"the photos come from different cameras ({cb} vs {cf}): each renders colour its own "
            "way, which normalising to the background does not undo, so redness and pigmentation "
            "may shift; use the same camera at every visit")


# Photos whose ISO differs by this factor (one stop) or more are flagged.
ISO_RATIO = 2.0


def iso_difference(baseline_capture: dict, followup_capture: dict) -> str | None:
    """A flag when the two photos were taken at ISO sensitivities a stop or more apart (EXIF).

    A higher ISO means more sensor noise, which the texture index reads as
    texture: on the phantom a sensor-noise level drawn between 0.5 and 2 (of
    8 bits) moved texture by 1.6 % RMS on dark and 0.9 % on brown skin, and
    pigmentation by 1.5 % on dark skin (``benchmarks/noise_sources.py``).
    """
    b_iso, f_iso = baseline_capture.get("iso"), followup_capture.get("iso")
    if not b_iso or not f_iso or max(b_iso, f_iso) < ISO_RATIO * min(b_iso, f_iso):
        return None
    return (f"the photos were taken at different ISO ({b_iso} vs {f_iso}): a higher ISO adds sensor "
            "noise, which reads as rougher texture (most on darker skin); light the room the same "
            "at every visit so that the camera picks the same ISO")


def decoded_colour_note(baseline_result: dict, followup_result: dict, raised) -> str | None:
    """A note when a photo's colour was read from its decoded pixels
    (:func:`colour_from_decoded_pixels`), whose redness retakes vary more, so the
    pair's indices ``raised`` (those the calibration's ``decoded_colour`` keeps) are
    judged against the larger retake noise of such photos; else ``None``."""
    which = [(name, str((r.get("capture") or {}).get("format") or "pixels"))
             for name, r in (("baseline", baseline_result), ("follow-up", followup_result))
             if colour_from_decoded_pixels(r)]
    if not which:
        return None
    formats = ", ".join(sorted({fmt for _, fmt in which}))
    whose = "the baseline and follow-up photos'" if len(which) == 2 else f"the {which[0][0]} photo's"
    return (f"{whose} colour was read from decoded pixels ({formats}; not a plain JPEG whose own "
            "colour data could be read): "
            + (f"{' and '.join(raised)} {'are' if len(raised) > 1 else 'is'} judged against the "
               "larger retake noise of such photos" if raised else
               "redness then varies more between retakes, which this noise calibration does not "
               "measure, so a redness change may be retake noise")
            + "; to detect smaller changes, save JPEG (on an iPhone: Settings, Camera, Formats, "
              "Most Compatible) without a colour profile other than sRGB")


def capture_differences(baseline_capture: dict, followup_capture: dict) -> list[str]:
    """The flags of two photos taken or saved differently (their ``capture`` dicts):
    compression, camera, ISO, saved almost alike."""
    return [f for f in (compression_difference(baseline_capture, followup_capture),
                        camera_difference(baseline_capture, followup_capture),
                        iso_difference(baseline_capture, followup_capture),
                        not_saved_alike(baseline_capture, followup_capture)) if f]


def pick_stored(comparisons, baseline_photo_id: int, followup_photo_id: int) -> dict | None:
    """Of stored comparisons (as ``Store.comparisons`` returns them), the one of these
    two photos: at the current algorithm version if there is one, else the newest."""
    hits = [c for c in comparisons if c["baseline_photo_id"] == baseline_photo_id
            and c["followup_photo_id"] == followup_photo_id and c.get("result")]
    current = [c for c in hits if c.get("algorithm_version") == ALGORITHM_VERSION]
    pick = current or hits
    return max(pick, key=lambda c: c["id"]) if pick else None


COMPARED = "change measured against the first visit"
OWN_PHOTO = "own photo (not compared)"


def stored_change(result: dict | None, key: str, region: str = "whole_face",
                  metric: str | None = None) -> dict:
    """A stored comparison result's change of summary ``key`` (``delta[key]``) or, in another
    region, of its ``metric`` (``regions[region][metric]``); ``{}`` when it has none."""
    result = result or {}
    if region == "whole_face":
        return (result.get("delta") or {}).get(key) or {}
    return ((result.get("regions") or {}).get(region) or {}).get(metric or "") or {}


def charted_value(own: float | None, baseline_own: float | None, result: dict | None,
                  key: str, region: str = "whole_face", metric: str | None = None) -> tuple[float | None, str]:
    """The value a progress chart plots for a follow-up visit, and its basis.

    With a trusted comparison against the baseline: the baseline's own value
    plus the change that comparison measured on the skin both photos show.
    The point's distance from the baseline is then the change ``compare``
    classified, and it leaves the band baseline ± MDC exactly when that change
    was detectable.  A photo's own value covers its whole visible face, which
    differs between retakes of unchanged skin by more than the comparison
    does (phantom, 4.1 px/mm, ``benchmarks/chart_noise.py``: texture 2.8 %
    RMS against 1.2 %, and a third of unchanged retakes fell outside the
    band).  Without a usable comparison (none, alignment not trusted, not
    measured): ``own``.

    Parameters
    ----------
    own, baseline_own : float or None
        The follow-up's and the baseline's own (analysis) values.
    result : dict or None
        The stored comparison result (baseline → this follow-up).
    key : str
        Summary key (``texture``, ``redness``, ``pigmentation``).
    region, metric : str
        Another region than the whole face: the per-region ``metric`` behind ``key``.

    Returns
    -------
    value : float or None
    basis : str
        :data:`COMPARED` or :data:`OWN_PHOTO`.
    """
    change = stored_change(result, key, region, metric)
    value = change.get("value" if region == "whole_face" else "delta")
    if value is None or baseline_own is None or change.get("status") == NOT_COMPARABLE:
        return own, OWN_PHOTO
    return float(baseline_own) + float(value), COMPARED


@dataclass(frozen=True)
class ChartPoint:
    """One point of a progress chart (:func:`charted_series`)."""

    visit: object
    photo: object
    key: str
    value: float
    basis: str               # "first visit", :data:`COMPARED` or :data:`OWN_PHOTO`
    mdc: float | None        # the noise band's half-width at this visit (None: not calibrated)


def charted_series(series, comparisons, own_value, keys=SUMMARY_KEYS, region: str = "whole_face",
                   metric_of: dict | None = None, mdc: dict | None = None) -> list[ChartPoint]:
    """Progress-chart points of a course, in order.

    Parameters
    ----------
    series : list of (visit, photo)
        By date; the first is the baseline.
    comparisons : list of dict
        Stored comparisons (``Store.comparisons``); each later photo's with the
        baseline is picked with :func:`pick_stored`.
    own_value : callable
        ``own_value(photo, key)``: the photo's own (analysis) value, or None.
    keys : tuple of str
    region, metric_of : str, dict
        Another region than the whole face, and ``{key: per-region metric}``.
    mdc : dict, optional
        The calibration (:func:`course_mdc`) for points without a stored MDC.

    The baseline's point is its own value (basis ``"first visit"``); a later
    one is :func:`charted_value`.  Points without a value are left out.

    Each point carries the MDC its visit is judged by, so a course saved in
    more than one way shows at each visit the band that visit's comparison
    used (it leaves the band exactly when that comparison found a detectable
    change): a compared point the MDC stored with its comparison;
    any other later point the one ``compare`` applies to its pair with the
    baseline (:func:`summary_mdc` / :func:`metric_mdc` for the baseline's
    skin tone and whether the two photos were saved alike,
    :func:`same_capture_settings`); the baseline's point that of the next
    point (there is no change to judge at the baseline).  A later point drawn
    at its photo's own value (no trusted comparison) varies more than a
    comparison does, and takes the wider MDC of own values where calibrated
    (:func:`own_photo_mdc`, that of photos saved alike where this one was
    saved like the baseline).
    """
    if not series:
        return []
    tone, alike, from_pixels = saved_like_baseline([photo for _, photo in series])
    points, base_values = [], {}
    for i, (visit, photo) in enumerate(series):
        stored = pick_stored(comparisons, series[0][1].id, photo.id) if i else None
        for key in keys:
            value = own_value(photo, key)
            metric = (metric_of or {}).get(key)
            if i == 0:
                base_values[key], basis = value, "first visit"
            else:
                value, basis = charted_value(value, base_values.get(key), (stored or {}).get("result"),
                                             key, region, metric)
            if value is None:
                continue
            applied = None
            if basis == COMPARED:  # the MDC stored with the comparison (older results lack a region's)
                applied = stored_change(stored["result"], key, region, metric).get("mdc")
            if applied is None and mdc is not None:
                applied = _band_mdc(mdc, key, tone, alike[i], region, metric, from_pixels[i])
            if basis == OWN_PHOTO and mdc is not None:
                own = own_photo_mdc(mdc, key, tone, region, metric, alike[i], from_pixels[i])
                applied = applied if own is None else max(own, applied or 0.0)
            points.append(ChartPoint(visit, photo, key, float(value), basis, applied))
    for key in keys:  # the baseline's band: that of the next visit
        mine = [i for i, p in enumerate(points) if p.key == key]
        if len(mine) > 1 and points[mine[0]].basis == "first visit":
            points[mine[0]] = replace(points[mine[0]], mdc=points[mine[1]].mdc)
    return points


def summary_mdc(mdc: dict, key: str, ita_category: str | None,
                same_settings: bool = False, decoded_colour: bool = False) -> tuple[float | None, str]:
    """The MDC of summary ``key`` for a baseline of skin tone ``ita_category``.

    Retake noise differs between skin tones (redness on dark skin: about
    twice the pooled MDC), so the calibration also keeps one MDC per ITA°
    category with enough pairs (``mdc["summary_by_tone"]``; a category
    without its own takes the nearest calibrated one).  The pooled
    ``mdc["summary"]`` is the floor: a tone's own MDC from 20–40
    pairs is too uncertain to *lower* the threshold (on the phantom that
    raised false alarms to 5–20 %), but where a tone is clearly noisier it
    raises it.  For the same reason a tone's own MDC is an upper confidence
    bound of its 95th percentile (``benchmarks/accuracy.py:tone_mdc``).
    Two photos saved alike (``same_settings``, :func:`same_capture_settings`)
    take the calibration of such pairs, ``mdc["same_settings"]`` (built the
    same way, kept only for indices it clearly lowers: texture on the
    phantom), where it is the smaller: saving alike removes a source of
    retake noise and cannot add one, so a larger same-settings MDC (from
    fewer pairs: 20–25 per tone) is sampling error, not noise.
    A pair with a photo whose colour was read from its decoded pixels
    (``decoded_colour``, :func:`colour_from_decoded_pixels`) takes the
    calibration of such pairs, ``mdc["decoded_colour"]`` (kept only for
    indices it clearly raises: on the phantom redness, 3.6 / 6.5 × at 4.1 /
    8.2 px/mm, and pigmentation at 8.2 px/mm, 1.3 ×), where it is the larger.
    Returns the MDC and where it came from (the category, or ``"all tones"``,
    with ", photos saved alike" or ", colour from decoded pixels" for those
    calibrations).
    """
    chosen = _calibrated_mdc(mdc, key, ita_category)
    if same_settings and mdc.get("same_settings"):
        alike = _calibrated_mdc(mdc["same_settings"], key, ita_category)
        if alike[0] is not None and (chosen[0] is None or alike[0] < chosen[0]):
            chosen = alike[0], alike[1] + ", photos saved alike"
    if decoded_colour and mdc.get("decoded_colour"):
        pixels = _calibrated_mdc(mdc["decoded_colour"], key, ita_category)
        if pixels[0] is not None and (chosen[0] is None or pixels[0] > chosen[0]):
            chosen = pixels[0], pixels[1] + ", " + DECODED_SOURCE
    return chosen


DECODED_SOURCE = "colour from decoded pixels"


def colour_from_decoded_pixels(result: dict) -> bool:
    """Whether a stored analysis (``Analysis.to_dict()``) read its colour from the 8-bit
    pixels of a lossy decode (HEIC, WebP, a colour-managed or unusual JPEG; pixels
    without a file), not from the JPEG's own chroma (:mod:`analyzer.jpegchroma`) nor
    from a lossless file.

    The decode rounds smooth chroma to whole levels, which no longer averages out
    (:mod:`analyzer.jpegchroma`); such photos keep the larger redness retake noise
    measured before algorithm -18, so their pairs take their own calibration
    (:func:`summary_mdc`).  Analyses stored before -18 do not say and count as not.
    """
    read = (result.get("settings") or {}).get("chroma")
    return read == "decoded pixels" and _file_kind(result.get("capture") or {}) != "lossless"


def own_photo_mdc(mdc: dict, key: str, ita_category: str | None, region: str = "whole_face",
                  metric: str | None = None, same_settings: bool = False,
                  decoded_colour: bool = False) -> float | None:
    """The MDC of a photo's own value of summary ``key`` (or, in another region, of its
    ``metric``): the same statistics as :func:`summary_mdc` / :func:`metric_mdc` of no-change
    pairs' own values, each over its photo's whole visible face (``mdc["own_photo"]``,
    ``benchmarks/accuracy.py``; for a photo saved like the baseline, ``same_settings``,
    that of such pairs where smaller; for colour read from decoded pixels,
    ``decoded_colour``, that of such pairs where larger); None when the calibration has none."""
    own = mdc.get("own_photo")
    return _band_mdc(own, key, ita_category, same_settings, region, metric, decoded_colour) if own else None


def _band_mdc(mdc: dict, key: str, ita_category: str | None, same_settings: bool,
              region: str, metric: str | None, decoded_colour: bool = False) -> float | None:
    """:func:`summary_mdc` of ``key`` on the whole face, else :func:`metric_mdc` of
    ``metric`` in ``region``."""
    if region == "whole_face":
        return summary_mdc(mdc, key, ita_category, same_settings, decoded_colour)[0]
    return metric_mdc(mdc, f"{metric}@{region}", same_settings, decoded_colour)


def metric_mdc(mdc: dict, key: str, same_settings: bool = False, decoded_colour: bool = False) -> float | None:
    """The MDC of one metric in one region (``key``: ``"name@region"``): the general
    one, or that of photos saved alike where it is smaller, or that of colour read from
    decoded pixels where it is larger (as :func:`summary_mdc`)."""
    chosen = mdc.get("metrics", {}).get(key)
    alike = (mdc.get("same_settings") or {}).get("metrics", {}).get(key) if same_settings else None
    chosen = alike if alike is not None and (chosen is None or alike < chosen) else chosen
    pixels = (mdc.get("decoded_colour") or {}).get("metrics", {}).get(key) if decoded_colour else None
    return pixels if pixels is not None and (chosen is None or pixels > chosen) else chosen


def _calibrated_mdc(mdc: dict, key: str, ita_category: str | None) -> tuple[float | None, str]:
    """:func:`summary_mdc` of one calibration: the tone's own MDC where above the pooled one."""
    from .colour import ITA_CATEGORIES

    pooled = mdc.get("summary", {}).get(key)
    order = [name for _, name in ITA_CATEGORIES]
    by_tone = {c: v[key] for c, v in (mdc.get("summary_by_tone") or {}).items()
               if c in order and v.get(key) is not None}
    if ita_category in order and by_tone:
        here = order.index(ita_category)
        nearest = min(by_tone, key=lambda c: (abs(order.index(c) - here), order.index(c)))
        if pooled is None or by_tone[nearest] > pooled:
            return by_tone[nearest], nearest
    return pooled, "all tones"


def mdc_source(mdc_tone: str | None) -> str:
    """Words for where an MDC came from (the ``mdc_tone`` of :func:`summary_mdc`), e.g.
    ``"dark skin, photos saved alike"`` or ``"all skin tones"``."""
    tone, _, alike = str(mdc_tone or "all tones").partition(", ")
    return ("all skin tones" if tone == "all tones" else f"{tone} skin") + (f", {alike}" if alike else "")


def saved_like_baseline(photos) -> tuple[str | None, list[bool], list[bool]]:
    """The baseline's skin tone (ITA° category) and, per photo, whether it was saved like
    the baseline (:func:`same_capture_settings`; the baseline itself: False) and whether
    its pair with the baseline has colour read from decoded pixels
    (:func:`colour_from_decoded_pixels`), from the photos' stored analyses (baseline
    first): with resolution, what sets the MDC ``compare`` applies to each pair."""
    results = [(p.latest_analysis.result or {}) if p.latest_analysis is not None else {} for p in photos]
    if not results:
        return None, [], []
    base = results[0].get("capture") or {}
    base_pixels = colour_from_decoded_pixels(results[0])
    return ((results[0].get("summary") or {}).get("ita_category"),
            [False] + [same_capture_settings(base, r.get("capture") or {}) for r in results[1:]],
            [base_pixels or colour_from_decoded_pixels(r) for r in results])


def course_mdc(resolutions) -> dict:
    """The calibration for a series of photos (``px_per_mm`` each, ``None`` when
    unknown): the one :func:`load_mdc` gives their lowest resolution, as
    ``compare`` would for the noisiest pair; the lowest-resolution calibration
    when none is known."""
    known = [float(r) for r in resolutions if r]
    return load_mdc(px_per_mm=min(known) if known else None)


# What a change the same way in another index explains of an index's change: a change of
# ``key`` no larger than ``factor`` x the relative change of ``other`` is not claimed.
# - texture from pigmentation: the texture index is the RMS of a band pigment mottle shares;
#   pigment-only changes on the phantom moved it by 0.47-1.13 x the pigmentation index's
#   relative change (README, *Texture and pigment, each within the other*);
# - pigmentation from texture: the guided melanin map takes the texture density's detail where
#   the (shared) slope says it is pigment, so texture-only changes moved the pigment burden by
#   0.0-0.37 x the texture index's relative change (one pair 0.53), the same way;
# - redness from pigmentation: a fixed chromophore basis cannot match every skin's melanin
#   spectrum, so part of a melanin change reads as hemoglobin (colour.py); pigment-only changes
#   on the phantom moved the redness index by -0.18 to +0.13 x the pigmentation index's relative
#   change (median +0.04; 80 pairs of the calibration runs and of runs taken alike), which
#   a tighter MDC (photos taken alike) can flag.
EXPLAINED_BY = {"texture": ("pigmentation", 1.0), "pigmentation": ("texture", 0.3),
                "redness": ("pigmentation", 0.13)}
MUTUAL = ("texture", "pigmentation")   # each explains part of the other (judge_each_within_other)
CAUTION_OF = {"pigmentation": "pigment", "texture": "texture"}   # ``caution`` naming the other index
BEYOND_PIGMENT = "no detectable change beyond the pigment change"
BEYOND_TEXTURE = "no detectable change beyond the texture change"
BEYOND = {"pigmentation": BEYOND_PIGMENT, "texture": BEYOND_TEXTURE}   # other index -> status


def changed_together(a: dict, b: dict, key: str = "value") -> bool:
    """Whether two changes (dicts with ``significant`` and the change under ``key``) are
    both detectable and the same way: where one index's change can explain part of the
    other's (:data:`EXPLAINED_BY`)."""
    return bool(a.get("significant") and b.get("significant") and a[key] * b[key] > 0)


def pigment_in_texture_caution(delta: dict) -> str | None:
    """A caution when texture and pigmentation both changed detectably, the same way.

    From one RGB photo, pigment mottle about 1 mm across has the same
    luminance structure as fine texture, so fading (or new) spots also lower
    (raise) the texture index.  A texture change in the opposite direction to
    the pigment change is not explained by it.
    """
    if changed_together(delta.get("texture", {}), delta.get("pigmentation", {})):
        return ("texture and pigmentation changed the same way: pigment mottle about 1 mm across "
                "also reads as texture in a photo, so part of the texture change may be pigment")
    return None


def beyond_other(relative: float, other_relative: float, factor: float) -> float:
    """The part of a relative change that ``factor`` × another index's relative change
    (the same way) does not explain: same sign as ``relative``, 0 when it explains all."""
    rest = max(0.0, abs(relative) - factor * abs(other_relative))
    return float(np.copysign(rest, relative))


def judge_within_other(change: dict, value: float, baseline: float, key: str, other_relative: float) -> bool:
    """Re-judge a detectable change of index ``key`` (``change``, a dict with ``mdc``, changed
    in place; ``value`` from ``baseline``) that a detectable change of the index that
    explains part of it (:data:`EXPLAINED_BY`; ``other_relative``, the same way) went
    along with.

    Only the part :func:`beyond_other` leaves is compared with the MDC: when it
    is within it, the change is not claimed (``significant`` False, status
    :data:`BEYOND_PIGMENT` or :data:`BEYOND_TEXTURE`).  ``beyond_other`` keeps
    that part (relative).  Returns whether the change still counts.
    """
    other, factor = EXPLAINED_BY[key]
    rest = beyond_other(value / baseline, other_relative, factor)
    change["beyond_other"] = round(rest, 6)
    if abs(rest * baseline) <= change["mdc"]:
        change["significant"], change["status"] = False, BEYOND[other]
        change["caution"] = CAUTION_OF[other]
        return False
    return True


def judge_each_within_other(changes: dict) -> dict[str, bool]:
    """:func:`judge_within_other` for both indices of :data:`EXPLAINED_BY`, which changed
    detectably the same way: ``changes`` maps each to ``(change dict, value, baseline)``
    (the dicts are changed in place; texture's caution names pigment).  Returns whether
    each change still counts."""
    relative = {key: value / baseline for key, (_, value, baseline) in changes.items()}
    changes["texture"][0]["caution"] = "pigment"
    return {key: judge_within_other(*changes[key], key, relative[EXPLAINED_BY[key][0]]) for key in MUTUAL}


# A region's redness measures judged like the redness index: the index itself (whole face)
# and the mean hemoglobin density the index is of, registered for every region
REGION_REDNESS = ("redness_index", "hemoglobin_density")


def judge_region_cross_effects(changes: dict) -> None:
    """The summary's cross-effects (:func:`judge_cross_effects`) for one region's changes
    (``{metric name: {baseline, delta, significant, mdc, ...}}``, changed in place): its
    redness (:data:`REGION_REDNESS`) beyond what its pigment change explains, its texture and pigmentation
    indices each beyond the other (:func:`judge_each_within_other`)."""
    pig = changes.get("pigmentation_index")
    for name in REGION_REDNESS:
        red = changes.get(name)
        if red and pig and red["baseline"] and pig["baseline"] and changed_together(red, pig, key="delta"):
            judge_within_other(red, red["delta"], red["baseline"], "redness", pig["delta"] / pig["baseline"])
    both = {k: changes.get(f"{k}_index") for k in MUTUAL}
    if all(c and c["baseline"] for c in both.values()) and changed_together(*both.values(), key="delta"):
        judge_each_within_other({k: (c, c["delta"], c["baseline"]) for k, c in both.items()})


def summary_change(value: float | None, baseline: float | None, limit: float | None) -> dict:
    """One summary change before the cross-effects (:func:`judge_cross_effects`):
    ``{value, relative, significant, status, mdc}``."""
    significant, status = classify(value, limit)
    return {"value": value, "relative": (value / baseline if value is not None and baseline else None),
            "significant": significant, "status": status, "mdc": limit}


WITHIN_FLAGS = {
    "texture": ("texture changed the same way as pigmentation and by no more than the pigment "
                "change explains (pigment mottle about 1 mm across also reads as texture in a "
                "photo), so no texture change is claimed"),
    "pigmentation": ("pigmentation changed the same way as texture and by no more than a texture "
                     "change moves the pigment index (the melanin map follows the detail of the "
                     "skin's texture where it is pigmented), so no pigmentation change is claimed"),
    "redness": ("redness changed the same way as pigmentation and by no more than a pigment "
                "change moves the redness index (a photo's melanin and hemoglobin colours are "
                "not fully separable), so no redness change is claimed"),
}


def judge_cross_effects(delta: dict) -> list[str]:
    """Apply what one concern does to another's index to the summary changes ``delta``
    (in place; ``caution``: what else a change may be) and return the flags that say so.

    When texture and pigmentation both changed detectably, the same way, each
    counts only beyond what the other explains (:func:`judge_within_other`);
    a texture change that still counts carries the caution that part of it
    may be pigment.  A redness change that went with a detectable pigment
    change the same way counts only beyond 0.13 × it.  A small pigment change
    with a detectable redness change that still counts is cautioned
    (:func:`redness_in_pigment_caution`).
    ``benchmarks/accuracy.py`` judges the phantom's pairs with it, so its
    tables are what ``compare`` reports.
    """
    def judged(key):  # (change, value, baseline) of a summary change
        return delta[key], delta[key]["value"], delta[key]["value"] / delta[key]["relative"]

    flags = []
    r, p = delta["redness"], delta["pigmentation"]
    if changed_together(r, p) and r["relative"] and p["relative"]:
        if not judge_within_other(*judged("redness"), "redness", p["relative"]):
            flags.append(WITHIN_FLAGS["redness"])
    if pigment_in_texture_caution(delta):
        kept = judge_each_within_other({k: judged(k) for k in MUTUAL})
        flags += [WITHIN_FLAGS[key] for key, counts in kept.items() if not counts]
        if kept["texture"]:
            flags.append(pigment_in_texture_caution(delta))
    caution = redness_in_pigment_caution(delta)
    if caution:
        flags.append(caution)
        delta["pigmentation"]["caution"] = "redness"
    return flags


# ``caution`` of a summary change (what else part of it may be) -> a practitioner's wording
CAUTION_NOTES = {"pigment": "part may be pigment", "redness": "may come from redness",
                 "texture": "may be texture"}


def with_caution(status: str, change: dict) -> str:
    """``status`` followed by the change's caution, if any: ``improved (part may be pigment)``."""
    note = CAUTION_NOTES.get(change.get("caution"))
    return f"{status} ({note})" if note and status not in BEYOND.values() else status


# A pigmentation change larger than this (relative) is not put down to redness: redness-only
# changes on the phantom (up to +115 % redness index) moved the pigmentation index by at most
# 4.4 %, either way, retake noise included (harness runs of algorithm 2026.11.30-12; on -15,
# whose two photos share the guided melanin map's slope, by at most 1.5 %).
REDNESS_IN_PIGMENT_MAX = 0.10


def redness_in_pigment_caution(delta: dict) -> str | None:
    """A caution when redness and pigmentation both changed detectably and the pigment
    change is small enough (≤ :data:`REDNESS_IN_PIGMENT_MAX`) to come from the redness.

    Melanin is read from colour, and the guided melanin map takes up part of
    the hemoglobin's gradients (README, *Guided melanin map*): strong, even
    redness (the days after a session) read as +2.4–3.0 % pigment on the
    phantom, about its MDC.
    """
    r, p = delta.get("redness", {}), delta.get("pigmentation", {})
    if (r.get("significant") and p.get("significant") and p.get("relative") is not None
            and abs(p["relative"]) <= REDNESS_IN_PIGMENT_MAX):
        return ("redness and pigmentation both changed: the melanin map takes up part of strong "
                "redness, so a pigmentation change this small may come from the redness; compare "
                "again once the redness has settled")
    return None


def _index(metrics: list[dict]) -> dict[str, dict]:
    return {f"{m['name']}@{m['region']}": m for m in metrics}


SCALE_TOLERANCE = 0.002   # a follow-up scale closer than this to its own is not rebuilt


def followup_scale(baseline, followup, alignment) -> float | None:
    """The follow-up's px/mm on the baseline's footing: the baseline's, divided by how many
    baseline pixels one follow-up pixel spans at the follow-up's face centre under a
    trusted alignment (``None`` without one: each photo keeps its own scale).

    Each photo's own scale comes from its inter-ocular distance, whose landmarks
    put two retakes' relative scale off by 1.3–1.5 % RMS (up to 2.5 %; phantom
    retakes against their true transform), while the alignment's scale is off by
    0.01 %.  Filters sized in mm then cut the skin at other frequencies in the
    two photos: the same photo measured 1.5 % larger read texture −1.6 % and
    pigmentation −0.9 %.
    """
    if not getattr(alignment, "ok", False):
        return None
    from .align import local_scale

    x, y, w, h = followup.face.box
    spans = local_scale(alignment.matrix, (x + w / 2, y + h / 2))
    return baseline.face.interocular_px / INTEROCULAR_MM / spans


def compare_analysed(baseline, followup, *, days_since_treatment: int | None = None,
                     local: bool = False, mdc: dict | None = None):
    """Compare two :class:`~analyzer.pipeline.AnalysedPhoto`.

    Returns
    -------
    comparison : Comparison
    alignment : analyzer.align.Alignment
        With the warped follow-up, for overlays.
    """
    from .align import align
    from .metrics import measure_all
    from .metrics.pigmentation import share_burden_slope

    al = align(baseline.photo.pixels, followup.photo.pixels, baseline_face=baseline.face,
               followup_face=followup.face, baseline_regions=baseline.regions,
               followup_regions=followup.regions, local=local)
    f_scale = followup_scale(baseline, followup, al)
    # the noise calibration is chosen at the scale the two photos are measured at
    px_per_mm = min(baseline.face.interocular_px / INTEROCULAR_MM,
                    f_scale or followup.face.interocular_px / INTEROCULAR_MM)
    mdc = load_mdc(px_per_mm=px_per_mm) if mdc is None else mdc
    brows, bcols = baseline.regions.box
    valid = al.valid[brows, bcols] & ~measurable_exclusion(baseline, followup, al.matrix)
    # Each photo keeps its own maps (filters) from its analysis; what depends on
    # the skin measured (local backgrounds, spots, edge margins) and the
    # aggregation run again, on the common skin.
    # The follow-up's light is read against the baseline's background (which also
    # equalises exposure); the skin itself is never used to normalise colour.
    b_img, f_img, colour_flag = colour_footing(baseline, followup, al.matrix, f_scale)
    base_masks, follow_masks = common_work_masks(baseline.regions, valid, al.matrix, b_img, f_img)
    b_view, f_view = b_img.measuring(base_masks["whole_face"]), f_img.measuring(follow_masks["whole_face"])
    if al.ok:  # both photos read "which detail is pigment" alike (see share_burden_slope)
        share_burden_slope(b_view, f_view, work_matrix(al.matrix, b_img, f_img))
    # the two measurements are independent: side by side (NumPy and OpenCV release the GIL)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="measure") as pool:
        jobs = [pool.submit(measure_all, a.photo.pixels, a.regions, a.face, image=view, masks=masks)
                for a, view, masks in ((baseline, b_view, base_masks), (followup, f_view, follow_masks))]
        (b_metrics, b_summary, b_warn), (f_metrics, f_summary, f_warn) = (j.result() for j in jobs)
    b_img.keep_maps_of(b_view)
    f_img.keep_maps_of(f_view)

    b_capture, f_capture = baseline.photo.info.to_dict(), followup.photo.info.to_dict()
    alike = same_capture_settings(b_capture, f_capture)
    # what colour_from_decoded_pixels reads (not to_dict(): a deep copy of every metric)
    b_result, f_result = ({"settings": a.result.settings, "capture": c}
                          for a, c in ((baseline, b_capture), (followup, f_capture)))
    from_pixels = colour_from_decoded_pixels(b_result) or colour_from_decoded_pixels(f_result)
    delta = {}
    for key in SUMMARY_KEYS:
        b, f = b_summary.get(key), f_summary.get(key)
        value = None if b is None or f is None else float(f - b)
        limit, tone = summary_mdc(mdc, key, b_summary.get("ita_category"), alike, from_pixels)
        delta[key] = {**summary_change(value, b, limit), "mdc_tone": tone}
    per_region: dict[str, dict] = {}
    b_index, f_index = _index(b_metrics), _index(f_metrics)
    for key, bm in b_index.items():
        fm = f_index.get(key)
        if fm is None:
            continue
        bv, fv = bm.get("value"), fm.get("value")
        value = None if bv is None or fv is None else float(fv - bv)
        limit = metric_mdc(mdc, key, alike, from_pixels)
        significant, status = classify(value, limit, more_is(str(bm.get("direction", ""))))
        per_region.setdefault(bm["region"], {})[bm["name"]] = {
            "baseline": bv, "followup": fv, "delta": value, "unit": bm.get("unit"),
            "significant": significant, "status": status, "mdc": limit}

    flags = []
    if not al.ok:
        # the common skin is not the same skin: values are kept, no change is claimed
        for d in [*delta.values(), *(m for region in per_region.values() for m in region.values())]:
            d["significant"], d["status"] = None, NOT_COMPARABLE
        flags.append(f"alignment: {al.reason}; no change is classified: retake the follow-up photo")
    calibrated_with = mdc.get("provenance", {}).get("algorithm_version")
    if calibrated_with and calibrated_with != ALGORITHM_VERSION:
        flags.append(f"noise calibration (MDC) was measured with algorithm {calibrated_with}, "
                     f"not {ALGORITHM_VERSION}: re-run benchmarks/accuracy.py --write-mdc")
    calibrated_at = mdc.get("provenance", {}).get("px_per_mm")
    if calibrated_at and MDC_RESOLUTION_TOLERANCE * px_per_mm < calibrated_at:
        flags.append(f"photos at {px_per_mm:.1f} px/mm, below the lowest resolution the noise "
                     f"threshold (MDC) was calibrated at ({calibrated_at:.1f} px/mm): changes may be "
                     "flagged that are retake noise; photograph the face larger")
    # a caution is also kept with the change it qualifies (``caution``: what else it may be),
    # so that a patient's plain-language summary can say so too
    flags += judge_cross_effects(delta)
    for changes in per_region.values():
        judge_region_cross_effects(changes)
    flags += capture_differences(b_capture, f_capture) + ([colour_flag] if colour_flag else [])
    raised = [k for k in SUMMARY_KEYS if k in (mdc.get("decoded_colour") or {}).get("summary", {})]
    flags += [note for note in [decoded_colour_note(b_result, f_result, raised)] if note]
    if days_since_treatment is not None and 0 <= days_since_treatment <= POST_PROCEDURE_DAYS:
        flags.append(f"follow-up taken {days_since_treatment} day(s) after a treatment: redness "
                     "is expected after the procedure and is not a trend")
        if delta["redness"]["status"] == "worse":
            delta["redness"]["status"] = "worse (expected after procedure)"
    flags += [f"baseline: {w}" for w in b_warn] + [f"follow-up: {w}" for w in f_warn]
    alignment = al.to_dict()
    alignment["matrix"] = np.round(al.matrix, 10).tolist()  # follow-up pixel -> baseline pixel
    comparison = Comparison(
        algorithm_version=ALGORITHM_VERSION,
        alignment=alignment,
        baseline={"summary": b_summary, "quality": baseline.result.quality["overall"]},
        followup={"summary": f_summary, "quality": followup.result.quality["overall"]},
        delta=delta,
        regions=per_region,
        flags=flags,
        mdc_provenance=mdc.get("provenance", {}),
    )
    return comparison, al
