"""Facial regions as masks at image resolution, from one table of landmark indices.

Region polygons follow the MediaPipe canonical face mesh
(https://github.com/google-ai-edge/mediapipe, ``face_landmarker`` topology).
Sides are the *subject's*: ``left_cheek`` is the patient's left cheek, which is
on the right of a frontal photo.  The whole-face ``skin`` mask is the face
oval minus eyes, brows, lips and nostrils (each dilated by a margin relative to
the face size), minus specular highlights and pixels far outside the skin
colour distribution of the face (hair, glasses, fabric).
"""
from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from .face import FaceLandmarks

# Closed polygons of landmark indices, in drawing order.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
             378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127,
             162, 21, 54, 103, 67, 109)
# The face oval with its top arc (at the hairline, often under a fringe) replaced
# by the mid-forehead row: the outline of measurable skin.
SKIN_OUTLINE = (301, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 71, 68, 104,
                69, 108, 151, 337, 299, 333, 298)
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84,
        181, 91, 146)
NOSTRILS_RIGHT = (79, 166, 59, 166, 219, 64, 98, 97, 99, 60, 75)
NOSTRILS_LEFT = (309, 392, 289, 439, 294, 327, 326, 328, 290, 305)

REGIONS: dict[str, tuple[int, ...]] = {
    "forehead": (71, 68, 104, 69, 108, 151, 337, 299, 333, 298, 301, 293, 334, 296, 336,
                 9, 107, 66, 105, 63),
    "glabella": (107, 9, 336, 285, 417, 168, 193, 55),
    "right_cheek": (116, 117, 118, 119, 100, 126, 209, 49, 129, 203, 206, 216, 207,
                    187, 147, 123),
    "left_cheek": (345, 346, 347, 348, 329, 355, 429, 279, 358, 423, 426, 436, 427,
                   411, 376, 352),
    "nose": (168, 417, 465, 357, 343, 437, 420, 360, 278, 294, 327, 2, 98, 64, 48,
             131, 198, 217, 114, 128, 245, 193),
    "right_under_eye": (226, 31, 228, 229, 230, 231, 232, 233, 244, 128, 121, 120, 119,
                        118, 117, 111, 35),
    "left_under_eye": (446, 261, 448, 449, 450, 451, 452, 453, 464, 357, 350, 349, 348,
                       347, 346, 340, 265),
    "perioral": (165, 167, 164, 393, 391, 426, 436, 432, 422, 424, 418, 421, 200, 201,
                 194, 204, 202, 212, 216, 206),
    "chin": (204, 194, 201, 200, 421, 418, 424, 430, 394, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 169, 210),
}
# Regions a metric family reads by default (see metrics registry).
TEXTURE_LINE_REGIONS = ("forehead", "right_under_eye", "left_under_eye", "perioral")
PORE_REGIONS = ("right_cheek", "left_cheek", "nose")


class _CroppedMasks(Mapping):
    """Full-size boolean masks stored as crops of one box; materialised on access.

    ``m[name]`` returns a new full-size ``(H, W)`` bool array (the crop pasted
    into zeros), so callers that modify it do not change the stored mask.
    """

    def __init__(self, crops: dict[str, np.ndarray], rows: slice, cols: slice,
                 shape: tuple[int, int]):
        self.crops, self.rows, self.cols, self.shape = crops, rows, cols, tuple(shape[:2])

    def __getitem__(self, name: str) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        out[self.rows, self.cols] = self.crops[name]
        return out

    def __iter__(self):
        return iter(self.crops)

    def __len__(self) -> int:
        return len(self.crops)


class RegionMasks:
    """Boolean masks (H, W) per region name, plus ``whole_face`` for the whole-face skin.

    ``regions[name]`` is always a full-size bool mask.  Masks built by
    :func:`build_regions` are stored as crops of the face box (a 12 MP photo
    is mostly background) and pasted into a full-size array on access; use
    :meth:`crop` to work on the face box without materialising anything.
    """

    def __init__(self, masks: dict[str, np.ndarray] | _CroppedMasks,
                 expected_px: dict[str, int] | None = None, candidate: np.ndarray | None = None):
        self.masks = masks
        self.expected_px = dict(expected_px or {})
        self._candidate = candidate

    @classmethod
    def from_crops(cls, crops: dict[str, np.ndarray], rows: slice, cols: slice,
                   shape: tuple[int, int], expected_px: dict[str, int] | None = None,
                   candidate_crop: np.ndarray | None = None) -> "RegionMasks":
        """Masks given on the box ``(rows, cols)`` of an image of ``shape``."""
        out = cls(_CroppedMasks(crops, rows, cols, shape), expected_px)
        out._candidate_crop = candidate_crop
        return out

    @property
    def shape(self) -> tuple[int, int]:
        if isinstance(self.masks, _CroppedMasks):
            return self.masks.shape
        return next(iter(self.masks.values())).shape[:2]

    @property
    def box(self) -> tuple[slice, slice]:
        """``(rows, cols)`` outside of which every mask is False (whole image if unknown)."""
        if isinstance(self.masks, _CroppedMasks):
            return self.masks.rows, self.masks.cols
        h, w = self.shape
        return slice(0, h), slice(0, w)

    def crop(self, name: str) -> np.ndarray:
        """The mask ``name`` on :attr:`box` (a view; do not modify)."""
        if isinstance(self.masks, _CroppedMasks):
            return self.masks.crops[name]
        rows, cols = self.box
        return self.masks[name][rows, cols]

    @property
    def candidate(self) -> np.ndarray | None:
        """Face outline minus features, before colour checks (full size)."""
        if self._candidate is None and getattr(self, "_candidate_crop", None) is not None:
            out = np.zeros(self.shape, bool)
            rows, cols = self.box
            out[rows, cols] = self._candidate_crop
            return out
        return self._candidate

    def candidate_crop(self) -> np.ndarray | None:
        """:attr:`candidate` on :attr:`box`."""
        if getattr(self, "_candidate_crop", None) is not None:
            return self._candidate_crop
        if self._candidate is None:
            return None
        rows, cols = self.box
        return self._candidate[rows, cols]

    def visible_fraction(self) -> dict[str, float]:
        """Share of each region's outline (minus eyes, brows, lips, nostrils) that is skin."""
        return {n: (float(_count(self.crop(n))) / e if e else 0.0)
                for n, e in self.expected_px.items()}

    def area_px(self) -> dict[str, int]:
        return {name: _count(self.crop(name)) for name in self.masks}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.masks[name]

    def names(self) -> list[str]:
        return list(self.masks)


def _count(mask: np.ndarray) -> int:
    """Number of True pixels of a 2-D bool mask (``cv2.countNonZero``, faster than numpy)."""
    if mask.dtype == bool and mask.ndim == 2 and mask.size and mask.strides[1] == 1:
        return int(cv2.countNonZero(mask.view(np.uint8)))
    return int(np.count_nonzero(mask))


def grid_sample(img: np.ndarray, step: int) -> np.ndarray:
    """``img[::step, ::step]`` as a contiguous array.

    When ``step`` divides both sides this is ``cv2.resize`` with nearest
    neighbour, which picks exactly those pixels (tested) about 10× faster
    than numpy's strided copy of 3-byte pixels.
    """
    h, w = img.shape[:2]
    if step > 1 and h % step == 0 and w % step == 0:
        return cv2.resize(img, (w // step, h // step), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(img[::step, ::step])


def polygon_mask(points: np.ndarray, indices: tuple[int, ...], shape: tuple[int, int]) -> np.ndarray:
    """Fill the polygon through ``points[indices]`` into a boolean mask of ``shape``.

    Filling is done at 1/16-pixel precision so masks move sub-pixel with the face.
    """
    return _fill16(np.round(points[list(indices)] * 16).astype(np.int32), shape)


def _fill16(poly16: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of ``shape`` with the polygon ``poly16`` (1/16-px integer vertices) filled."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly16], 1, lineType=cv2.LINE_8, shift=4)
    return mask.view(bool)  # the array holds only 0 and 1: no copy needed


def feature_exclusion(points: np.ndarray, shape: tuple[int, int], margin_px: float) -> np.ndarray:
    """Eyes, brows, lips and nostrils, dilated by ``margin_px``: never skin.

    The result is exactly ``cv2.dilate`` of the filled convex hulls with the
    elliptic kernel ``cv2.getStructuringElement(MORPH_ELLIPSE, (2k+1, 2k+1))``,
    ``k = round(margin_px)``, computed row by row (see :func:`_dilate_rows`).
    """
    # Each feature is filled and dilated on its own box (grown by the margin):
    # the union of dilations is the dilation of the union, at a fraction of the cost.
    h, w = shape[:2]
    k = max(1, int(round(margin_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    excl = np.zeros((h, w), np.uint8)
    for poly in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS, NOSTRILS_RIGHT, NOSTRILS_LEFT):
        hull = cv2.convexHull(np.round(points[list(poly)] * 16).astype(np.int32))
        lo = hull.reshape(-1, 2).min(axis=0) // 16 - k - 2
        hi = hull.reshape(-1, 2).max(axis=0) // 16 + k + 3
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
        if x1 <= x0 or y1 <= y0:
            continue
        # pad by k on every side so the dilation near the box edge sees the image border as zeros
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(m, hull - np.array([x0 * 16, y0 * 16], np.int32), 1, shift=4)
        grown = _dilate_rows(m, kernel)
        if grown is None:  # a row with a gap (OpenCV leaves some where a hull leaves the image)
            grown = cv2.dilate(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        excl[y0:y1, x0:x1] |= grown
    return excl.view(bool)


def _dilate_rows(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray | None:
    """``cv2.dilate(mask, kernel)`` (zero border) for a mask and kernel whose rows are single runs.

    A filled convex polygon has one run of pixels per row (and its non-empty
    rows are consecutive), and so has an elliptic kernel.  Each output row is
    then the union of one interval per kernel row (the source row's run
    widened by that kernel row's run), which costs a few integer operations
    per row instead of a large non-separable dilation per pixel (the features
    of a 12 MP face: 35 ms -> 2 ms).  Returns ``None`` when the mask or kernel
    is not of that kind or an output row is not provably one interval, so the
    caller can fall back to ``cv2.dilate``.
    """
    h, w = mask.shape
    kh, kw = kernel.shape
    ay, ax = kh // 2, kw // 2
    m = mask.view(bool) if mask.dtype == np.uint8 and mask.max(initial=0) <= 1 else mask.astype(bool)
    kb = kernel.astype(bool)
    if not kb.any(axis=1).all():
        return None
    ka = np.argmax(kb, axis=1) - ax                     # kernel row i covers x offsets [ka, kz]
    kz = kw - 1 - np.argmax(kb[:, ::-1], axis=1) - ax
    count = cv2.reduce(m.view(np.uint8), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    filled = count > 0
    rows = np.flatnonzero(filled)
    if not len(rows):
        return np.zeros((h, w), np.uint8)
    left = np.argmax(m, axis=1)
    right = w - 1 - np.argmax(cv2.flip(m.view(np.uint8), 1).view(bool), axis=1)
    if ((kb.sum(axis=1) != kz - ka + 1).any() or rows[-1] - rows[0] + 1 != len(rows)
            or (count[filled] != (right - left + 1)[filled]).any()):
        return None
    # dst(y, x) = 1 iff src(y + oy, x + ox) = 1 for a kernel offset (ox, oy):
    # x in [left(s) - kz, right(s) - ka] with s = y + oy.  The source rows of
    # one output row are consecutive, so the union is one interval when each
    # interval meets the next.
    src = np.arange(h)[:, None] + (np.arange(kh) - ay)[None, :]
    ok = (src >= 0) & (src < h)
    src = np.clip(src, 0, h - 1)
    ok &= filled[src]
    lo = np.where(ok, left[src] - kz, w)
    hi = np.where(ok, right[src] - ka, -1)
    both = ok[:, 1:] & ok[:, :-1]
    if (both & ((lo[:, 1:] > hi[:, :-1] + 1) | (lo[:, :-1] > hi[:, 1:] + 1))).any():
        return None
    first, last = lo.min(axis=1), hi.max(axis=1)
    cols = np.arange(w)
    return ((cols >= first[:, None]) & (cols <= last[:, None])).view(np.uint8)


def _hist_kth(hist: np.ndarray, values: np.ndarray, k: int) -> float:
    """The ``k``-th smallest (0-based) of a sample given as ``hist`` counts of sorted ``values``."""
    return float(values[np.searchsorted(np.cumsum(hist), k, side="right")])


def _hist_median(hist: np.ndarray, values: np.ndarray | None = None) -> float:
    """``np.median`` of the sample whose counts per (ascending) value are ``hist``."""
    values = np.arange(len(hist), dtype=np.float64) if values is None else values
    n = int(hist.sum())
    if n % 2:
        return _hist_kth(hist, values, n // 2)
    return 0.5 * (_hist_kth(hist, values, n // 2 - 1) + _hist_kth(hist, values, n // 2))


def skin_colour_outliers(rgb: np.ndarray, candidate: np.ndarray, max_distance: float = 5.0) -> np.ndarray:
    """Pixels in ``candidate`` whose colour is far from the face's skin colour.

    Flags what is much darker than the face's median lightness (hair, hands
    in shadow, dark occluders: L* below half the median), far off in chroma
    (glasses, fabric: a robust median/MAD distance in a*, b*) or specular.
    Thresholds are loose on purpose so that red and brown skin lesions (which
    we measure) stay in the mask.

    8-bit Lab takes 256 values per channel, so the medians come from
    histograms and every decision is a table look-up or an integer comparison
    (exact: equal to the float Lab/HSV formulation, no float images); see
    :func:`_skin_colour_keep`.
    """
    keep = _skin_colour_keep(rgb, candidate, max_distance)
    if keep is None:
        return np.zeros(candidate.shape, bool)
    cand = candidate.view(np.uint8) if candidate.dtype == bool else (candidate != 0).view(np.uint8)
    return cv2.bitwise_and(cand, cv2.bitwise_not(keep)).view(bool)


# Specular: V >= 250, or V > 235 with S < 25 (OpenCV 8-bit HSV).  S depends on
# V = max(R, G, B) and D = V - min(R, G, B) only and grows with D, so "S < 25"
# is "D < _SPECULAR_D[V]"; the table is read off cv2.cvtColor itself, so it
# matches OpenCV's rounding exactly.
def _specular_bounds() -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``, ``uint8`` tables over V: a pixel is not specular iff ``lo[V] <= D <= hi[V]``.

    Built by converting every (V, D) pair with ``cv2.cvtColor`` (65k probe
    pixels, once at import) and checked to be exact.
    """
    v, d = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    probe = np.stack([v, np.clip(v - d, 0, 255), np.clip(v - d, 0, 255)], -1).astype(np.uint8)
    hsv = cv2.cvtColor(probe, cv2.COLOR_RGB2HSV)
    specular = (hsv[..., 2] >= 250) | ((hsv[..., 2] > 235) & (hsv[..., 1] < 25))
    valid = d <= v
    # not specular <=> lo[V] <= D <= hi[V]; checked to be one interval per V
    always = (specular | ~valid).all(axis=1)
    lo = np.where(always, 1, np.argmin(specular | ~valid, axis=1))
    hi = np.where(always, 0, 255)
    got = (d >= lo[:, None]) & (d <= hi[:, None])
    if not np.array_equal(got[valid], ~specular[valid]):  # pragma: no cover - an OpenCV change
        raise RuntimeError("OpenCV's HSV saturation is no longer monotone in max - min")
    return lo.astype(np.uint8), hi.astype(np.uint8)


_SPEC_LO, _SPEC_HI = _specular_bounds()
_STRIP_ROWS = 256  # rows per strip: fewest page faults and best time at 12 MP (tried 32-4096)


def _skin_colour_keep(rgb: np.ndarray, candidate: np.ndarray,
                      max_distance: float = 5.0) -> np.ndarray | None:
    """``uint8`` mask, 255 where a pixel of ``candidate`` passes :func:`skin_colour_outliers`' tests.

    Values outside ``candidate`` are 0 (not computed).  ``None`` when
    ``candidate`` has fewer than 50 pixels (nothing is flagged).  Per pixel
    only OpenCV table look-ups and comparisons run: the chroma test
    ``hypot(za, zb) > 2.5 * max_distance`` holds outside an interval of b for
    each a (the table is convex in b), so it is one ``cv2.inRange`` against
    per-pixel bounds looked up from a; the specular test is likewise an
    interval of ``max - min`` per ``max`` (no HSV image).

    The image is handled in strips of rows, each cut to the columns where
    ``candidate`` has pixels: an oval face leaves a quarter of its box out,
    and the dozen strip-sized temporaries are reused instead of a dozen fresh
    face-sized arrays (page faults cost as much as the arithmetic at 12 MP).
    """
    sel = candidate.view(np.uint8) if candidate.dtype == bool else (candidate != 0).view(np.uint8)
    if cv2.countNonZero(sel) < 50:
        return None
    strips = []
    hists = [np.zeros((256, 1), np.float32) for _ in range(3)]
    for y in range(0, rgb.shape[0], _STRIP_ROWS):
        rows = slice(y, min(y + _STRIP_ROWS, rgb.shape[0]))
        x, _, w, _ = cv2.boundingRect(sel[rows])
        if w == 0:
            continue
        cols = slice(x, x + w)
        lab = cv2.cvtColor(rgb[rows, cols], cv2.COLOR_RGB2LAB)
        for c in range(3):
            cv2.calcHist([lab], [c], sel[rows, cols], [256], [0, 256], hist=hists[c], accumulate=True)
        strips.append((rows, cols, lab))
    levels = np.arange(256, dtype=np.float64)
    med, mad = np.zeros(3), np.zeros(3)
    for c in range(3):
        hist = hists[c].ravel().astype(np.int64)  # counts < 2**24 per strip sum exactly in float32
        med[c] = _hist_median(hist)
        dist = np.abs(levels - med[c])
        order = np.argsort(dist, kind="stable")
        mad[c] = _hist_median(hist[order], dist[order])
    mad = mad * 1.4826 + np.array([2.0, 1.5, 1.5])
    l_min = int(np.argmax(levels >= 0.5 * med[0]))                        # darker: hair, shadows
    za = np.abs(levels - med[1]) / mad[1]
    zb = np.abs(levels - med[2]) / mad[2]
    inside = ~(np.hypot(za[:, None], zb[None, :]) > 2.5 * max_distance)   # else glasses, fabric
    has = inside.any(axis=1)
    b_lo = np.where(has, np.argmax(inside, axis=1), 1).astype(np.uint8)
    b_hi = np.where(has, 255 - np.argmax(inside[:, ::-1], axis=1), 0).astype(np.uint8)
    if (inside.sum(axis=1) != np.where(has, b_hi.astype(int) - b_lo + 1, 0)).any():  # pragma: no cover
        raise RuntimeError("chroma acceptance is not an interval of b")  # hypot is monotone
    keep = np.zeros(rgb.shape[:2], np.uint8)
    for rows, cols, lab in strips:
        _, a, b = cv2.split(lab)
        out = cv2.inRange(b, cv2.LUT(a, b_lo), cv2.LUT(a, b_hi))
        out &= cv2.inRange(lab, (l_min, 0, 0), (255, 255, 255))
        r, g, b = cv2.split(rgb[rows, cols])
        vmax = cv2.max(cv2.max(r, g), b)
        spread = cv2.subtract(vmax, cv2.min(cv2.min(r, g), b))
        out &= cv2.inRange(spread, cv2.LUT(vmax, _SPEC_LO), cv2.LUT(vmax, _SPEC_HI))
        keep[rows, cols] = out
    return keep


def face_crop(points: np.ndarray, shape: tuple[int, int], margin: float) -> tuple[slice, slice]:
    """Rows and columns of the landmarks' bounding box grown by ``margin`` px, inside the image."""
    lo = np.floor(points.min(axis=0) - margin).astype(int)
    hi = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    return (slice(max(lo[1], 0), min(hi[1], shape[0])), slice(max(lo[0], 0), min(hi[0], shape[1])))


def build_regions(rgb: np.ndarray, face: FaceLandmarks) -> RegionMasks:
    """All region masks for one photo at image resolution.

    Each named region is its landmark polygon intersected with the whole-face
    ``skin`` mask, so eyes, lips, nostrils, hair and highlights are never in
    any region.  Regions do not overlap (later table entries lose overlap).
    The work is done on the face's bounding box (a 12 MP photo has ten times
    more background than face) and the masks are kept as crops of that box
    (``regions[name]`` still returns a full-size mask).
    """
    shape = rgb.shape[:2]
    margin = 0.1 * face.interocular_px
    rows, cols = face_crop(face.points, shape, margin)
    cshape = (rows.stop - rows.start, cols.stop - cols.start)
    pts = face.points - np.array([cols.start, rows.start], np.float32)
    # Polygons in 1/16 px on the crop, rounded once: shifting them by whole
    # pixels below keeps every fill identical to a fill of the whole crop.
    pts16 = np.round(pts * 16).astype(np.int32)
    # Every mask lies inside the skin outline or a region polygon: colour and
    # feature work runs on their bounding box only (about 3/4 of the crop);
    # the features are inside it too, so their dilation is not cut off.
    wr, wc = _poly_box(pts16, _MASK_INDICES, cshape)
    wshape = (wr.stop - wr.start, wc.stop - wc.start)
    wpts16 = pts16 - 16 * np.array([wc.start, wr.start], np.int32)
    crop = rgb[rows, cols][wr, wc]
    excl = feature_exclusion(pts - np.array([wc.start, wr.start], np.float32), wshape,
                             margin_px=0.04 * face.interocular_px)
    candidate = _fill16(wpts16[list(SKIN_OUTLINE)], wshape)
    candidate &= ~excl
    keep = _skin_colour_keep(crop, candidate)
    skin = candidate.copy() if keep is None else cv2.bitwise_and(candidate.view(np.uint8), keep).view(bool)

    # The box-sized masks are slices of one zeroed block: one large allocation
    # can be mapped with huge pages (numpy advises it), a dozen 4 MB ones fault
    # in 4 KB pages (12 MP: about half the page faults, 40-46 -> 36-39 ms).
    block = np.zeros((len(REGIONS) + 2, *cshape), bool)
    slots = iter(block)

    def full(window_mask: np.ndarray, r: slice = slice(None), c: slice = slice(None)) -> np.ndarray:
        out = next(slots)
        out[wr, wc][r, c] = window_mask
        return out

    masks: dict[str, np.ndarray] = {}
    expected: dict[str, int] = {}
    taken = np.zeros(wshape, bool)
    for name, poly in REGIONS.items():
        # each polygon is filled on its own box: a cheek is a tenth of the face box
        r, c = _poly_box(wpts16, poly, wshape)
        outline = _fill16(wpts16[list(poly)] - 16 * np.array([c.start, r.start], np.int32),
                          (r.stop - r.start, c.stop - c.start))
        outline &= ~taken[r, c]
        m = outline & skin[r, c]
        taken[r, c] |= m
        masks[name] = full(m, r, c)
        expected[name] = int(np.count_nonzero(outline & ~excl[r, c]))
    masks["whole_face"] = full(skin)
    expected["whole_face"] = int(np.count_nonzero(candidate))
    return RegionMasks.from_crops(masks, rows, cols, shape, expected, full(candidate))


# Landmarks of every polygon build_regions fills (skin outline, regions, features).
_MASK_INDICES = tuple(sorted(set(SKIN_OUTLINE).union(
    *REGIONS.values(), RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS, NOSTRILS_RIGHT, NOSTRILS_LEFT)))


def _poly_box(pts16: np.ndarray, indices, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns (inside ``shape``) holding every pixel the polygon ``pts16[indices]`` fills."""
    p = pts16[list(indices)]
    lo = p.min(axis=0) // 16 - 1
    hi = p.max(axis=0) // 16 + 2
    r0, c0 = min(max(int(lo[1]), 0), shape[0]), min(max(int(lo[0]), 0), shape[1])
    return (slice(r0, max(r0, min(int(hi[1]), shape[0]))),
            slice(c0, max(c0, min(int(hi[0]), shape[1]))))


REGION_COLOURS = {
    "forehead": (255, 200, 0), "glabella": (255, 120, 0), "right_cheek": (0, 200, 255),
    "left_cheek": (0, 120, 255), "nose": (255, 0, 200), "right_under_eye": (120, 255, 120),
    "left_under_eye": (0, 180, 0), "perioral": (200, 0, 255), "chin": (255, 80, 80),
}


def draw_regions(rgb: np.ndarray, regions: RegionMasks, alpha: float = 0.45) -> np.ndarray:
    """Tint each region in its colour and outline the whole-face skin mask."""
    out = rgb.astype(np.float32)
    for name, colour in REGION_COLOURS.items():
        m = regions.masks.get(name)
        if m is not None and m.any():
            out[m] = (1 - alpha) * out[m] + alpha * np.array(colour, np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(regions["whole_face"].astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), max(1, rgb.shape[1] // 500))
    return out
