"""Colour handling: linearisation, colour correction, CIELAB, chromophore maps.

Pipeline for one photo
----------------------
1. sRGB ``uint8`` → linear sRGB (IEC 61966-2-1 transfer function).
2. Colour correction, a 3×3 matrix applied in linear RGB:

   * an X-Rite ColorChecker Classic in frame (found with OpenCV's ``cv2.mcc``):
     least-squares fit of its 24 patches to their published sRGB values
     (:data:`COLORCHECKER_SRGB`); ``calibrated = True``;
   * otherwise the illuminant is estimated on the *background* (the image
     minus the dilated face outline, in a window anchored to the face so the
     same scene content is used when framing changes) by shades-of-grey
     (p = 4) and divided out (von Kries), keeping the photo's luminance;
     ``calibrated = False`` and a warning says so;
   * or a reference illuminant is given (the compare step passes the
     baseline's): as above, but the grey gets the reference's luminance,
     which also equalises exposure with the baseline.

   Colour is never normalised against the skin itself: that would erase the
   redness and pigment change being measured.
3. CIELAB (D65, 2° observer) via ``skimage.color.rgb2lab`` of the corrected
   image re-encoded to sRGB.
4. Chromophores: optical density OD = −ln(linear reflectance) is split into
   melanin, hemoglobin and a neutral (shading/exposure/texture) component with
   ``skimage.color.separate_stains`` and the basis :data:`RGB_FROM_CHROMOPHORES`.
   The neutral component absorbs exposure, lighting gradients and surface
   relief, so the melanin and hemoglobin maps depend only on colour.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.stats import trim_mean
from skimage.color import combine_stains, rgb2lab, separate_stains, xyz2lab
from skimage.color.colorconv import xyz_from_rgb

from .face import INTEROCULAR_MM, FaceLandmarks
from .regions import FACE_OVAL, grid_sample, polygon_mask

# --- chromophore basis -------------------------------------------------------
# Rows: absorption direction of each chromophore in linear-sRGB optical density
# (R, G, B), evaluated at the dominant wavelengths of the sRGB primaries
# (611, 549, 464 nm).
# Melanin: eumelanin absorption coefficient ∝ λ^-3.46 (S. L. Jacques, "Optical
#   properties of biological tissues: a review", Phys. Med. Biol. 58, R37, 2013)
#   -> 1 : 1.448 : 2.59.
# Hemoglobin: oxy-hemoglobin molar extinction (S. Prahl, "Optical absorption of
#   hemoglobin", OMLC 1999, tabulated from Gratzer and Kollias): ~1.5e3, 43.5e3,
#   31.5e3 cm⁻¹/M -> 0.035 : 1 : 0.72.
# Neutral: wavelength-independent attenuation (shading, exposure, relief).
# Like scikit-image's stain matrices (``skimage/color/colorconv.py``) rows are
# unit vectors and the separation matrix is the inverse.  Known limitation: real
# skin's apparent melanin spectrum is flatter than pure absorption (shorter blue
# path length), so on the phantom ≈0.11 of a melanin change reads as hemoglobin
# and ≈ -0.10 of a hemoglobin change as melanin.
_MEL = np.array([1.0, 1.448, 2.59])
_HB = np.array([0.035, 1.0, 0.72])
_NEUTRAL = np.ones(3)
RGB_FROM_CHROMOPHORES = np.array([v / np.linalg.norm(v) for v in (_MEL, _HB, _NEUTRAL)])
CHROMOPHORES_FROM_RGB = np.linalg.inv(RGB_FROM_CHROMOPHORES)
SEPARATION_REFERENCE = ("Optical-density separation into melanin / hemoglobin / neutral "
                        "(skimage.color.separate_stains; basis: Jacques 2013, Prahl 1999; "
                        "cf. Tsumura et al., SIGGRAPH 2003).")
# separate_stains returns OD / -ln(1e-6); multiply by this to get natural-log OD.
_STAIN_SCALE = float(-np.log(1e-6))

# --- ColorChecker Classic ----------------------------------------------------
# sRGB (D65) values of the 24 patches as published by X-Rite for the
# ColorChecker Classic (row by row from "dark skin" to "black"; the same table
# as https://en.wikipedia.org/wiki/ColorChecker).
COLORCHECKER_SRGB = np.array([
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177),
    (103, 189, 170), (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108),
    (157, 188, 64), (224, 163, 46), (56, 61, 150), (70, 148, 73), (175, 54, 60),
    (231, 199, 31), (187, 86, 149), (8, 133, 161), (243, 243, 242), (200, 200, 200),
    (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52)], np.float32)

ITA_CATEGORIES = (  # (lower bound, name), Chardon et al. 1991 / Del Bino et al. 2006
    (55.0, "very light"), (41.0, "light"), (28.0, "intermediate"), (10.0, "tan"),
    (-30.0, "brown"), (-np.inf, "dark"))
# A fitted chart whose median ΔE (CIE76) stays above this is not trusted: a 3×3
# fit to a real ColorChecker Classic under one light leaves a few ΔE; a chance
# detection in a chart-free photo left 45 ΔE (phantom, 12 MP).
MAX_CHECKER_FIT_DE = 10.0
UNCALIBRATED_WARNING = ("colour: no colour checker found; colour is normalised to the background "
                        "(uncalibrated): absolute colour values (ITA°, L*) are approximate")
# p of the shades-of-grey estimate and the background window (see background_mask).
# Chosen on phantom no-change retake pairs through compare (16 pairs per tone,
# scale 6, retake strength 0.7): the 95th percentile of the redness-summary
# change was 2.8 % (light) / 2.8 % (dark) with p = 6, margin 0.6, window 0.3,
# and 1.7 % / 2.1 % with p = 4, margin 0.4, window 0.5 (more background, less
# dominated by the brightest, nearly clipped pixels).
SHADES_OF_GREY_P = 4.0
BACKGROUND_MARGIN = 0.4
BACKGROUND_WINDOW = 0.5
ILLUMINANT_MAX_PIXELS = 250_000   # background pixels sampled (regular grid) for the illuminant
CHECKER_MAX_SIDE = 2000           # the colour checker is measured at most at this size (long side)
CHECKER_SEARCH_PX_PER_MM = 3.0    # ... and searched at this scale (9 mm patches ≈ 27 px)
CHECKER_SEARCH_SIDE = 1000        # ... or at this long side when the scale is unknown
CHECKER_SEARCH_MIN_SIDE = 640     # ... but never on a smaller copy
CHECKER_PATCH_PX = 40             # patches this big where found are measured there, not remeasured
# Candidate charts the detector returns per search; the one whose patches fit the
# ColorChecker best is kept (the detector's own best can be a chart-like patch of
# background next to the real chart: on a phantom photo its fit left ΔE 40, the
# real chart's, second in the detector's order, 2.2).
CHECKER_CANDIDATES = 3
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # linear sRGB -> Y


def _srgb_to_linear_float(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


_SRGB_LUT = _srgb_to_linear_float(np.arange(256, dtype=np.float32) / 255.0)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB (``uint8`` or float 0..1) to linear light, IEC 61966-2-1 (float32).

    ``uint8`` input goes through a 256-entry lookup table (same values, ~20× faster).
    """
    x = np.asarray(rgb)
    if x.dtype == np.uint8:
        return _SRGB_LUT[x]
    return _srgb_to_linear_float(x.astype(np.float32))


_XYZ_FROM_RGB = np.asarray(xyz_from_rgb, np.float32)
_SRGB_LUT16 = np.round(_SRGB_LUT * 65535.0).astype(np.uint16)
# d(linear)/d(code value) at each 8-bit level (central difference)
_SRGB_SLOPE = np.gradient(_srgb_to_linear_float(np.arange(-1, 257, dtype=np.float32) / 255.0))[1:-1]


def linear_change(rgb: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """How much the linear light of ``uint8`` sRGB values changes when they move by
    ``delta`` code values (float32; a fraction of a level: what the JPEG decode
    rounded away, :mod:`analyzer.jpegchroma`), to first order: the curve's
    relative error over half a level is below 10⁻³."""
    return _SRGB_SLOPE[rgb] * delta


def srgb_to_linear_adjusted(rgb: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Linear light (float32) of ``uint8`` sRGB values moved by ``delta`` (:func:`linear_change`)."""
    return _SRGB_LUT[rgb] + linear_change(rgb, delta)


def srgb_to_linear_u16(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``uint8`` to linear light × 65535 as ``uint16`` (``cv2.LUT``: ~6× faster than
    :func:`srgb_to_linear`, for resampling large photos before working in float)."""
    return cv2.LUT(np.ascontiguousarray(rgb), _SRGB_LUT16)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light to sRGB 0..1 (float32), clipped to [0, 1]."""
    x = np.clip(np.asarray(lin, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


@dataclass(frozen=True)
class ColourCorrection:
    """A colour correction: ``corrected = linear @ matrix.T`` in linear sRGB.

    Attributes
    ----------
    matrix : ndarray (3, 3)
    source : str
        ``"colorchecker"``, ``"background"``, ``"reference"`` or ``"none"``.
    calibrated : bool
        True only when fitted to a colour checker.
    illuminant : tuple of float or None
        Background illuminant estimate (linear RGB) of this photo; pass it as
        ``illuminant=`` when measuring another photo to put both on one footing.
    fit_error : float or None
        Colour checker fit: median CIE76 ΔE over the 24 patches.
    """

    matrix: np.ndarray
    source: str
    calibrated: bool
    illuminant: tuple | None = None
    fit_error: float | None = None
    warnings: tuple = field(default_factory=tuple)

    def apply(self, linear: np.ndarray) -> np.ndarray:
        """Correct a linear RGB image (float32)."""
        return (linear.reshape(-1, 3) @ self.matrix.T.astype(np.float32)).reshape(linear.shape)

    def to_dict(self) -> dict:
        return {"source": self.source, "calibrated": self.calibrated,
                "matrix": np.round(self.matrix, 6).tolist(),
                "illuminant": None if self.illuminant is None else [round(float(v), 6) for v in self.illuminant],
                "fit_error_de": self.fit_error}


def _window(shape: tuple[int, int], face: FaceLandmarks, window: float) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the face box grown by ``window`` × its size, inside the image."""
    h, w = shape
    x, y, bw, bh = face.box
    x0, x1 = max(0, int(x - window * bw)), min(w, int(x + bw + window * bw))
    y0, y1 = max(0, int(y - window * bh)), min(h, int(y + bh + window * bh))
    return x0, y0, x1, y1


def colour_window(shape: tuple[int, int], face: FaceLandmarks) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the part of a photo its colour is read from (the face
    and the background around it, :data:`BACKGROUND_WINDOW`)."""
    return _window(shape, face, BACKGROUND_WINDOW)


def background_mask(shape: tuple[int, int], face: FaceLandmarks, margin: float = BACKGROUND_MARGIN,
                    window: float = BACKGROUND_WINDOW, step: int = 1) -> np.ndarray:
    """Background pixels near the face: a face-anchored window minus the dilated face outline.

    ``margin`` (× inter-ocular distance) is how far the face oval is dilated;
    ``window`` (× face box size) how far the window extends around the face
    box.  Anchoring to the face keeps the same scene content in the estimate
    when the framing changes between visits.

    With ``step > 1`` the mask is returned on the grid ``[::step, ::step]``
    (shape ``(ceil(h / step), ceil(w / step))``) and computed there directly:
    the oval is filled and its distance transform taken at grid resolution,
    on the window only.  It then differs from ``background_mask(...)[::step,
    ::step]`` only within about a grid step of the grown oval's edge, at a
    ``step²``-th of the cost (a 12 MP photo: 60 ms -> 2 ms).
    """
    h, w = shape[:2]
    out = np.zeros((-(-h // step), -(-w // step)), bool)
    x0, y0, x1, y1 = _window((h, w), face, window)
    # grid rows/columns whose image coordinate i * step lies in the window
    r0, r1, c0, c1 = -(-y0 // step), -(-y1 // step), -(-x0 // step), -(-x1 // step)
    if r1 <= r0 or c1 <= c0:
        return out
    # The oval lies inside the window, so distances to it are the same as on
    # the whole image (the old whole-image transform cost 60 ms at 12 MP).
    oval = polygon_mask(face.points / step - np.array([c0, r0]), FACE_OVAL, (r1 - r0, c1 - c0))
    dist = cv2.distanceTransform((~oval).view(np.uint8), cv2.DIST_L2, 5)
    out[r0:r1, c0:c1] = dist > margin * face.interocular_px / step
    return out


def estimate_illuminant(linear: np.ndarray, mask: np.ndarray, p: float = SHADES_OF_GREY_P) -> np.ndarray | None:
    """Illuminant (linear RGB) by shades-of-grey: the p-norm of ``mask`` pixels per channel.

    Finlayson & Trezzi, "Shades of grey and colour constancy", CIC 2004;
    p = :data:`SHADES_OF_GREY_P`.  Pixels clipped in any channel are ignored.
    Returns ``None`` when fewer than 500 pixels remain.
    """
    px = linear[mask].astype(np.float64)
    ok = (px.min(axis=1) > 0.002) & (px.max(axis=1) < 0.98)
    if ok.sum() < 500:
        return None
    return _p_norm(px[ok], p)


def _p_norm(px: np.ndarray, p: float = SHADES_OF_GREY_P) -> np.ndarray:
    """Per channel, the p-th power mean of pixels ``px`` (n, 3) float64: shades of grey."""
    return np.power(np.mean(np.power(px, p), axis=0), 1.0 / p)


# 8-bit sRGB levels whose linear value is within estimate_illuminant's (0.002, 0.98)
_UNCLIPPED = (int(np.argmax(_SRGB_LUT > 0.002)), int(255 - np.argmax(_SRGB_LUT[::-1] < 0.98)))


def _illuminant_srgb8(rgb: np.ndarray, mask: np.ndarray, p: float = SHADES_OF_GREY_P) -> np.ndarray | None:
    """:func:`estimate_illuminant` of ``srgb_to_linear(rgb)`` for ``uint8`` pixels, without a float image.

    The unclipped test is one ``cv2.inRange`` on the 8-bit levels and each
    channel's p-th power mean comes from its histogram (256 levels), which
    is the same number as the per-pixel mean.
    """
    sel = cv2.inRange(rgb, (_UNCLIPPED[0],) * 3, (_UNCLIPPED[1],) * 3)
    sel &= mask.view(np.uint8) if mask.dtype == bool else (mask != 0).view(np.uint8)
    n = cv2.countNonZero(sel)
    if n < 500:
        return None
    power = np.power(_SRGB_LUT.astype(np.float64), p)
    hists = np.stack([cv2.calcHist([rgb], [c], sel, [256], [0, 256]).ravel() for c in range(3)])
    return np.power(hists.astype(np.float64) @ power / n, 1.0 / p)


def _illuminant_on_grid(rgb: np.ndarray, step: int, mask: np.ndarray, exact=None) -> np.ndarray | None:
    """:func:`_illuminant_srgb8` of the grid ``grid_sample(rgb, step)`` under ``mask``,
    with the file's chroma where ``exact`` (:class:`analyzer.jpegchroma.ExactChroma`) holds it."""
    grid = grid_sample(rgb, step)
    if exact is None:
        return _illuminant_srgb8(grid, mask)
    ys, xs = np.nonzero(mask)
    values = grid[ys, xs]
    ok = ((values >= _UNCLIPPED[0]) & (values <= _UNCLIPPED[1])).all(axis=1)
    if ok.sum() < 500:
        return None
    ys, xs, values = ys[ok], xs[ok], values[ok]
    linear = srgb_to_linear_adjusted(values, exact.rgb_delta_at(values, ys * step, xs * step))
    return _p_norm(np.maximum(linear, 0).astype(np.float64))


def _background_grid(shape: tuple[int, int], face: FaceLandmarks) -> tuple[int, np.ndarray]:
    """``(step, mask)``: the background on the regular grid of at most ~:data:`ILLUMINANT_MAX_PIXELS` points.

    The step is ``int(sqrt(background pixels / ILLUMINANT_MAX_PIXELS))`` as
    when the full-size mask was counted.  It is first guessed from the
    window minus the grown oval (polygon area + perimeter × margin + π
    margin², the area of a convex outline grown by a disc); the background
    counted on that grid decides, and the mask is recomputed in the rare
    case the step then differs.
    """
    x0, y0, x1, y1 = colour_window(shape, face)
    oval = face.points[list(FACE_OVAL)].astype(np.float32)
    r = BACKGROUND_MARGIN * face.interocular_px
    grown = cv2.contourArea(oval) + cv2.arcLength(oval, True) * r + np.pi * r * r
    guess = max(0.0, max(x1 - x0, 0) * max(y1 - y0, 0) - grown)
    step = max(1, int(np.sqrt(guess / ILLUMINANT_MAX_PIXELS)))
    for _ in range(2):
        mask = background_mask(shape, face, step=step)
        counted = cv2.countNonZero(mask.view(np.uint8)) * step ** 2
        better = max(1, int(np.sqrt(counted / ILLUMINANT_MAX_PIXELS)))
        if better == step:
            break
        step = better
    else:
        mask = background_mask(shape, face, step=step)
    return step, mask


def correction_from_illuminant(illuminant: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Diagonal (von Kries) matrix mapping ``illuminant`` to neutral grey.

    The grey has the luminance of ``reference`` (another photo's background
    illuminant, e.g. the baseline's) when given, which also equalises
    exposure between the two photos; otherwise the luminance of
    ``illuminant`` itself (the cast is removed, the exposure kept).  Both
    photos thus end up on the same neutral-background footing.
    """
    ill = np.asarray(illuminant, np.float64)
    lum_source = ill if reference is None else np.asarray(reference, np.float64)
    grey = np.full(3, float(_LUMA @ lum_source))
    return np.diag(grey / np.maximum(ill, 1e-9))


PAIR_CELL_MM = 1.0          # background cells compared point by point between two photos
PAIR_MIN_CELLS = 500
PAIR_TRIM = 0.1             # share of cells left out at each end (objects that moved, not light)
CLIPPED_SRGB = 250          # an 8-bit channel this bright may be clipped


def _cell_step(cell: int) -> int:
    return max(1, cell // 4)


def _cell_size(px: float) -> int:
    """A cell of about ``px`` pixels, a whole multiple of its sampling step."""
    cell = max(1, int(round(px)))
    return cell // _cell_step(cell) * _cell_step(cell)


def _cell_means(rgb: np.ndarray, cell: int, exact=None, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Mean linear light (float32) of each ``cell`` × ``cell`` block of an sRGB ``uint8`` image
    (whole blocks only), and ``NaN`` where a pixel it averages is clipped.

    Blocks wider than 4 px are averaged over every ``cell // 4``-th pixel in
    each direction (at least 16 per block): a 12 MP photo's 1 mm cells of
    ~12 px cost a ninth as much, and the mean of 16+ pixels is still far
    steadier than the cell-to-cell spread the trimmed mean works on.  With
    ``exact`` (:class:`analyzer.jpegchroma.ExactChroma` of the photo ``rgb`` is
    cut from at ``origin`` = its (x, y)) the file's chroma is averaged.
    """
    step = _cell_step(cell)
    h, w = (rgb.shape[0] // cell) * cell, (rgb.shape[1] // cell) * cell
    crop = grid_sample(rgb[:h, :w], step) if step > 1 else np.ascontiguousarray(rgb[:h, :w])
    size = (w // cell, h // cell)
    if exact is None:
        means = cv2.resize(srgb_to_linear_u16(crop), size, interpolation=cv2.INTER_AREA).astype(np.float32) / 65535
    else:
        ys, xs = np.mgrid[0:crop.shape[0], 0:crop.shape[1]]
        delta = exact.rgb_delta_at(crop, origin[1] + ys * step, origin[0] + xs * step)
        means = cv2.resize(srgb_to_linear_adjusted(crop, delta), size, interpolation=cv2.INTER_AREA)
    clipped = cv2.inRange(crop, (0, 0, 0), (CLIPPED_SRGB - 1,) * 3) == 0
    # 255 per clipped pixel, so that one of up to 510 averaged is not rounded away
    any_clipped = cv2.resize(clipped.view(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_AREA) > 0
    means[any_clipped] = np.nan
    return means


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img`` (H, W, C) at points ``(x, y)`` inside it, bilinearly (by hand: ``cv2.remap``
    refuses maps longer than 32767 points)."""
    i0 = np.minimum(x.astype(int), img.shape[1] - 2).clip(0)
    j0 = np.minimum(y.astype(int), img.shape[0] - 2).clip(0)
    fx, fy = (x - i0)[:, None], (y - j0)[:, None]
    return ((1 - fy) * ((1 - fx) * img[j0, i0] + fx * img[j0, i0 + 1])
            + fy * ((1 - fx) * img[j0 + 1, i0] + fx * img[j0 + 1, i0 + 1]))


def background_gains(baseline_rgb: np.ndarray, followup_rgb: np.ndarray, baseline_face: FaceLandmarks,
                     matrix: np.ndarray, exact: tuple = (None, None)) -> np.ndarray | None:
    """Gains (R, G, B) of the follow-up's light over the baseline's, read on the same background.

    The baseline's background (:func:`background_mask`) is cut into cells of
    1 mm; each cell's mean linear light is compared with the follow-up's at
    the same place, and the 10 %-trimmed mean over cells of
    log(follow-up / baseline), per channel, is the gain.  Compared point by point, a lighting gradient
    or an exposure change multiplies the three channels of a cell alike, and
    each coloured object of the background counts once, where the brightest
    ones dominate a p-norm of each photo separately (:func:`estimate_illuminant`):
    on phantom retakes the error of the follow-up's red/green balance fell from
    0.21 % to 0.13 % RMS and light-skin redness retake noise from 1.4 % to 0.7 %
    RMS (README, "Colour").  A trimmed mean (10 % at each end) rather than a
    median: the median of 1 mm cells left 0.17 % and 0.97 %.

    Parameters
    ----------
    baseline_rgb, followup_rgb : ndarray, RGB uint8
    baseline_face : FaceLandmarks
    matrix : ndarray (3, 3)
        Follow-up pixel → baseline pixel (the face alignment).  The background
        near the face is taken to move with the face; where it does not (a
        different room), cells do not correspond and the mean is that of
        unrelated colours (:func:`analyzer.compare.backdrop_difference` flags
        a reading that disagrees with the photo's own estimate).
    exact : (ExactChroma or None, ExactChroma or None)
        The chroma each photo's JPEG holds (:func:`colour_correction`).

    Returns
    -------
    gains : ndarray (3,) or None
        ``None`` with fewer than 500 cells unclipped in both photos.
    """
    cell = _cell_size(PAIR_CELL_MM * baseline_face.interocular_px / INTEROCULAR_MM)
    to_followup = np.linalg.inv(matrix)
    scale = float(np.sqrt(abs(np.linalg.det(to_followup[:2, :2]))))  # follow-up px per baseline px
    follow_cell = _cell_size(cell * scale)
    # only the face-anchored window of the baseline (cropped on the cell grid) and the
    # part of the follow-up it maps to are averaged: a 12 MP pair in ~30 ms, not 120
    x0, y0, x1, y1 = colour_window(baseline_rgb.shape[:2], baseline_face)
    x0, y0 = x0 // cell * cell, y0 // cell * cell
    if x1 - x0 < 2 * cell or y1 - y0 < 2 * cell:
        return None
    grid = ((y1 - y0) // cell, (x1 - x0) // cell)   # the cells _cell_means averages
    where = background_mask(baseline_rgb.shape[:2], baseline_face, step=cell)[
        y0 // cell:y0 // cell + grid[0], x0 // cell:x0 // cell + grid[1]]
    rows, cols = np.nonzero(where)
    if not len(rows):
        return None
    centres = np.stack([x0 + cols * cell + (cell - 1) / 2, y0 + rows * cell + (cell - 1) / 2,
                        np.ones(len(rows))])
    mapped = to_followup @ centres
    mapped = mapped[:2] / mapped[2]
    h, w = followup_rgb.shape[:2]
    fx0 = int(np.clip(mapped[0].min() - 2 * follow_cell, 0, w)) // follow_cell * follow_cell
    fy0 = int(np.clip(mapped[1].min() - 2 * follow_cell, 0, h)) // follow_cell * follow_cell
    fx1 = int(np.clip(mapped[0].max() + 2 * follow_cell, 0, w))
    fy1 = int(np.clip(mapped[1].max() + 2 * follow_cell, 0, h))
    if fx1 - fx0 < 2 * follow_cell or fy1 - fy0 < 2 * follow_cell:  # the background maps off the photo
        return None
    # the two photos' cells are independent: averaged side by side (OpenCV and NumPy
    # release the GIL; a 12 MP pair's two averages take ~100 ms each)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cells") as pool:
        jobs = [pool.submit(_cell_means, baseline_rgb[y0:y1, x0:x1], cell, exact[0], (x0, y0)),
                pool.submit(_cell_means, followup_rgb[fy0:fy1, fx0:fx1], follow_cell, exact[1], (fx0, fy0))]
        base, follow = (job.result() for job in jobs)
    # follow-up pixel -> its cell grid (cell centres at (i + 0.5) * cell - 0.5)
    x = ((mapped[0] - fx0 + 0.5) / follow_cell - 0.5).astype(np.float32)
    y = ((mapped[1] - fy0 + 0.5) / follow_cell - 0.5).astype(np.float32)
    inside = (x >= 0) & (y >= 0) & (x <= follow.shape[1] - 1) & (y <= follow.shape[0] - 1)
    if inside.sum() < PAIR_MIN_CELLS:
        return None
    b, f = base[rows[inside], cols[inside]], _bilinear(follow, x[inside], y[inside])
    # unclipped in both, and not so dark that the log of sensor noise decides
    ok = np.isfinite(b).all(1) & np.isfinite(f).all(1) & (b.min(1) > 0.02) & (f.min(1) > 0.02)
    if ok.sum() < PAIR_MIN_CELLS:
        return None
    return np.exp(trim_mean(np.log(f[ok]) - np.log(b[ok]), PAIR_TRIM, axis=0))


def detect_colour_checker(rgb: np.ndarray, px_per_mm: float | None = None) -> np.ndarray | None:
    """Mean sRGB (0..255) of the 24 patches of a ColorChecker Classic, or ``None``
    (:func:`find_colour_checker` without the chart's outline)."""
    found = find_colour_checker(rgb, px_per_mm)
    return None if found is None else found[0]


def find_colour_checker(rgb: np.ndarray, px_per_mm: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(patch means, box)`` of a ColorChecker Classic, or ``None``.

    ``patch means``: mean sRGB (0..255) of the 24 patches, (24, 3);
    ``box``: the chart's four corners in photo pixels ``(x, y)``, (4, 2).

    Uses OpenCV's ``cv2.mcc`` detector (MCC24 chart type) in two steps:

    1. search an area-averaged copy: at :data:`CHECKER_SEARCH_PX_PER_MM`
       when the photo's scale ``px_per_mm`` is known (patches of 9 mm, the
       smaller X-Rite charts', are then ~27 px), else at
       :data:`CHECKER_SEARCH_SIDE` px on the long side; never larger than
       :data:`CHECKER_MAX_SIDE` (see :func:`_shrink`).  On a 12 MP close-up
       this is ~1000 px, 4× cheaper than the former 2000 px search, which
       dominated when there is no chart (the usual case);
    Of up to :data:`CHECKER_CANDIDATES` candidates the detector returns, the
    one whose patches fit the ColorChecker best is kept (:func:`_best_fit`).

    2. if a chart was found on a copy smaller than :data:`CHECKER_MAX_SIDE`
       with patches under :data:`CHECKER_PATCH_PX`, measure the patches
       again at that size on the chart's box (grown by a quarter), so the
       means are as precise as before (within 0.1 level on drawn charts) at
       a fraction of the cost.

    The detector's own up-sampling to ``minImageSize`` is turned off for
    reduced copies; photos at or below the search size are searched as before.
    """
    long_side = max(rgb.shape[:2])
    side = CHECKER_SEARCH_SIDE if not px_per_mm else long_side * CHECKER_SEARCH_PX_PER_MM / px_per_mm
    side = int(min(max(side, CHECKER_SEARCH_MIN_SIDE), CHECKER_MAX_SIDE))
    small = _shrink(rgb, side)
    found = _mcc_find(small, reduced=small.shape != rgb.shape)
    if found is None:
        return None
    means, box = found
    scale = small.shape[1] / rgb.shape[1]
    final = min(1.0, CHECKER_MAX_SIDE / long_side)
    # the chart's long edge spans 6 patches and 7 gaps of ~0.12 patch
    patch_px = max(np.linalg.norm(box[1] - box[0]), np.linalg.norm(box[2] - box[1])) / 6.7
    if scale < 0.8 * final and patch_px < CHECKER_PATCH_PX:
        # box in photo pixels, grown by a quarter of its size (perspective, a detection a few px off)
        pts = box / scale
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        grow = 0.25 * (hi - lo)
        x0, y0 = np.maximum(np.floor(lo - grow), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(hi + grow), [rgb.shape[1], rgb.shape[0]]).astype(int)
        roi = rgb[y0:y1, x0:x1]
        if final < 1:
            roi = cv2.resize(roi, (max(1, round(roi.shape[1] * final)), max(1, round(roi.shape[0] * final))),
                             interpolation=cv2.INTER_AREA)
        fine = _mcc_find(roi, reduced=True) if min(roi.shape[:2]) >= 32 else None
        if fine is not None:
            means = fine[0]
    return means, box / scale


def _best_fit(candidates: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``(means, box)`` candidate whose patches fit the ColorChecker best (lowest median ΔE)."""
    def error(candidate):
        try:
            return fit_colour_checker(candidate[0])[1]
        except ValueError:
            return np.inf
    return min(candidates, key=error) if candidates else None


def _mcc_find(rgb: np.ndarray, reduced: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """``(patch means (24, 3) RGB, chart box (4, 2) px)`` of the MCC24 chart in ``rgb`` that
    fits the ColorChecker best, or ``None``.

    ``reduced``: ``rgb`` was made smaller on purpose; the detector must not
    up-sample it to its ``minImageSize`` again.
    """
    detector = cv2.mcc.CCheckerDetector.create()
    detector.setColorChartType(cv2.mcc.MCC24)
    if reduced:
        params = detector.getDetectionParams()
        params.minImageSize = min(rgb.shape[:2])
        detector.setDetectionParams(params)
    if not detector.process(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), CHECKER_CANDIDATES):
        return None
    candidates = []
    for checker in detector.getListColorChecker():
        charts = np.asarray(checker.getChartsRGB(), np.float64)  # rows: patch × channel; col 1 = mean
        if charts.shape[0] == 72:
            # getChartsRGB is in R, G, B order for the BGR input (checked on a drawn chart)
            candidates.append((charts[:, 1].reshape(24, 3).astype(np.float32),
                               np.asarray(checker.getBox(), np.float64)))
    return _best_fit(candidates)


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average ``rgb`` down to about ``max_side`` px (at most 1.25×) on its long side.

    Halvings first (OpenCV's 2×2 area path is ~4× faster than a general
    factor), then one area resize to ``max_side`` if still above 1.25× it (a
    4032 px photo is searched at 1008 px rather than paying 6 ms for the
    last 8 px); ``rgb`` itself when small enough.
    """
    out = rgb
    while max(out.shape[:2]) >= 2 * max_side:
        out = cv2.resize(out, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    h, w = out.shape[:2]
    if max(h, w) > 1.25 * max_side:
        f = max_side / max(h, w)
        out = cv2.resize(out, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return out


def _outline_mask(box: np.ndarray, step: int, shape: tuple[int, int], grow: float = 0.15) -> np.ndarray:
    """The quadrilateral ``box`` (photo px), grown by ``grow`` × its size about its centre
    (the chart's frame), as a bool mask of the grid ``[::step, ::step]`` of ``shape``."""
    centre = box.mean(axis=0)
    pts = (centre + (1 + 2 * grow) * (box - centre)) / step
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(pts).astype(np.int32)], 1)
    return out.astype(bool)


def fit_colour_checker(measured_srgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares 3×3 matrix (linear RGB) from measured to reference patches.

    Patches clipped (any channel ≥ 250) or black are left out.  Returns the
    matrix and the median CIE76 ΔE of the fitted patches.
    """
    src = srgb_to_linear(np.asarray(measured_srgb, np.float32) / 255.0).astype(np.float64)
    ref = srgb_to_linear(COLORCHECKER_SRGB / 255.0).astype(np.float64)
    ok = (np.asarray(measured_srgb).max(axis=1) < 250) & (np.asarray(measured_srgb).max(axis=1) > 8)
    if ok.sum() < 6:
        raise ValueError("too few usable colour checker patches")
    sol, *_ = np.linalg.lstsq(src[ok], ref[ok], rcond=None)
    matrix = sol.T
    fitted = np.clip(src[ok] @ matrix.T, 0, 1)
    de = np.linalg.norm(rgb2lab(linear_to_srgb(fitted)[None]) - rgb2lab(linear_to_srgb(ref[ok])[None]), axis=-1)
    return matrix, float(np.median(de))


def colour_correction(rgb: np.ndarray, face: FaceLandmarks, *, illuminant=None,
                      use_checker: bool = True, exact=None) -> ColourCorrection:
    """Choose and fit the colour correction for one photo (see module doc).

    Parameters
    ----------
    rgb : ndarray, RGB uint8
    face : FaceLandmarks
    illuminant : array-like of 3 floats, optional
        Reference background illuminant (linear RGB), e.g. the baseline's
        ``ColourCorrection.illuminant``; this photo's background is mapped onto it.
    use_checker : bool
        Look for a ColorChecker Classic first.
    exact : analyzer.jpegchroma.ExactChroma, optional
        The chroma the photo's JPEG holds over its :func:`colour_window`: the
        background is read with it, not with the decode's rounding.
    """
    # the background on a regular grid of at most ~250k of its pixels (a 12 MP
    # photo need not be linearised whole; the p-norm of a grid sample is unbiased)
    step, sub = _background_grid(rgb.shape[:2], face)
    own = _illuminant_on_grid(rgb, step, sub, exact)
    own_t = None if own is None else tuple(float(v) for v in own)
    notes: tuple = ()
    if use_checker:
        found = find_colour_checker(rgb, face.interocular_px / INTEROCULAR_MM)
        if found is not None:
            patches, box = found
            try:
                matrix, err = fit_colour_checker(patches)
                if err <= MAX_CHECKER_FIT_DE:
                    # the chart is not background: its patches would tint the illuminant estimate
                    beside = _illuminant_on_grid(rgb, step, sub & ~_outline_mask(box, step, sub.shape), exact)
                    own_t = own_t if beside is None else tuple(float(v) for v in beside)
                    return ColourCorrection(matrix, "colorchecker", True, own_t, round(err, 3))
                # something chart-like that is not a ColorChecker Classic (or badly lit)
                notes = (f"colour: a colour chart was found but its patches do not match a "
                         f"ColorChecker Classic (median ΔE {err:.0f} after fitting); not used: "
                         "photograph the whole chart, flat and evenly lit",)
            except ValueError:
                pass
    if own is None:
        return ColourCorrection(np.eye(3), "none", False, None, None, notes + (
            "colour: too little background to estimate the illuminant; colour is uncorrected",))
    ref = None if illuminant is None else np.asarray(illuminant, np.float64)
    source = "background" if ref is None else "reference"
    return ColourCorrection(correction_from_illuminant(own, ref), source, False, own_t, None,
                            notes + (UNCALIBRATED_WARNING,))


def to_lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65, 2°) of a linear sRGB image, as ``skimage.color.rgb2lab`` of its sRGB
    encoding (clipped to [0, 1]) but without encoding and decoding it again:
    linear → XYZ (``skimage.color.colorconv.xyz_from_rgb``) → ``skimage.color.xyz2lab``."""
    lin = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    return xyz2lab(cv2.transform(lin, _XYZ_FROM_RGB)).astype(np.float32)


def chromophores(linear: np.ndarray) -> np.ndarray:
    """Melanin, hemoglobin and neutral density maps (H, W, 3), natural-log OD units.

    ``skimage.color.separate_stains`` with :data:`CHROMOPHORES_FROM_RGB`,
    rescaled from its −ln(1e-6) normalisation to OD.  Negative densities are
    clipped to 0 by scikit-image.
    """
    lin = np.clip(linear, 1e-4, None)
    return (separate_stains(lin, CHROMOPHORES_FROM_RGB.astype(np.float32)) * _STAIN_SCALE).astype(np.float32)


def from_chromophores(densities: np.ndarray) -> np.ndarray:
    """Inverse of :func:`chromophores` (linear RGB, clipped to [0, 1])."""
    return combine_stains(np.asarray(densities, np.float32) / _STAIN_SCALE,
                          RGB_FROM_CHROMOPHORES.astype(np.float32)).astype(np.float32)


def erythema_index(linear: np.ndarray) -> np.ndarray:
    """Erythema index EI = 100·(log10(1/G) − log10(1/R)) on linear reflectance (Dawson et al. 1980)."""
    lin = np.clip(linear, 1e-4, None)
    return (100.0 * (np.log10(lin[..., 0]) - np.log10(lin[..., 1]))).astype(np.float32)


def melanin_index(linear: np.ndarray) -> np.ndarray:
    """Melanin index MI = 100·log10(1/R) on linear reflectance (Dawson et al. 1980; Diffey et al. 1984)."""
    return (-100.0 * np.log10(np.clip(linear[..., 0], 1e-4, None))).astype(np.float32)


def ita_degrees(lab: np.ndarray) -> np.ndarray:
    """Individual typology angle ITA° = atan((L* − 50) / b*) in degrees (Chardon et al. 1991)."""
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2])).astype(np.float32)


def ita_category(ita: float) -> str:
    """ITA° category (very light > 55, light 41–55, intermediate 28–41, tan 10–28,
    brown −30–10, dark < −30).  For tracking tone, not for deciding phototype."""
    for lower, name in ITA_CATEGORIES:
        if ita > lower:
            return name
    return "dark"


def heatmap(rgb: np.ndarray, values: np.ndarray, mask: np.ndarray, vmin: float, vmax: float,
            alpha: float = 0.55) -> np.ndarray:
    """Overlay ``values`` (same H, W as ``rgb``) inside ``mask`` as a TURBO heatmap (RGB uint8).

    ``vmin`` / ``vmax`` are fixed by the caller (not per image) so colours mean
    the same density on every photo.
    """
    scaled = np.clip((np.asarray(values, np.float32) - vmin) / max(vmax - vmin, 1e-9), 0, 1)
    colours = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    out = rgb.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * colours[mask].astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
