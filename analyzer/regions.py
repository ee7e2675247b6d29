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
        return {n: (float(np.count_nonzero(self.crop(n))) / e if e else 0.0)
                for n, e in self.expected_px.items()}

    def area_px(self) -> dict[str, int]:
        return {name: int(np.count_nonzero(self.crop(name))) for name in self.masks}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.masks[name]

    def names(self) -> list[str]:
        return list(self.masks)


def polygon_mask(points: np.ndarray, indices: tuple[int, ...], shape: tuple[int, int]) -> np.ndarray:
    """Fill the polygon through ``points[indices]`` into a boolean mask of ``shape``.

    Filling is done at 1/16-pixel precision so masks move sub-pixel with the face.
    """
    poly = np.round(points[list(indices)] * 16).astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [poly], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def feature_exclusion(points: np.ndarray, shape: tuple[int, int], margin_px: float) -> np.ndarray:
    """Eyes, brows, lips and nostrils, dilated by ``margin_px``: never skin."""
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
        excl[y0:y1, x0:x1] |= cv2.dilate(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return excl.view(bool)


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

    8-bit Lab and HSV take 256 values per channel, so the medians come from
    histograms and every decision is a look-up table (exact, no float images).
    """
    if np.count_nonzero(candidate) < 50:
        return np.zeros(candidate.shape, bool)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    sel = candidate.view(np.uint8) if candidate.dtype == bool else candidate.astype(np.uint8)
    levels = np.arange(256, dtype=np.float64)
    med, mad = np.zeros(3), np.zeros(3)
    planes = cv2.split(lab)
    for c, plane in enumerate(planes):
        hist = cv2.calcHist([plane], [0], sel, [256], [0, 256]).ravel().astype(np.int64)
        med[c] = _hist_median(hist)
        dist = np.abs(levels - med[c])
        order = np.argsort(dist, kind="stable")
        mad[c] = _hist_median(hist[order], dist[order])
    mad = mad * 1.4826 + np.array([2.0, 1.5, 1.5])
    dark = (levels < 0.5 * med[0]).astype(np.uint8)                    # hair, shadows
    za = np.abs(levels - med[1]) / mad[1]
    zb = np.abs(levels - med[2]) / mad[2]
    chroma = (np.hypot(za[:, None], zb[None, :]) > 2.5 * max_distance)  # glasses, fabric
    v = levels[:, None]
    s_ = levels[None, :]
    specular = (v >= 250) | ((v > 235) & (s_ < 25))
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    ab = (planes[1].astype(np.uint16) << 8) | planes[2]
    vs = (hsv[..., 2].astype(np.uint16) << 8) | hsv[..., 1]
    out = cv2.LUT(planes[0], dark).view(bool)
    out |= chroma.ravel()[ab]
    out |= specular.ravel()[vs]
    out &= candidate
    return out


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
    crop = rgb[rows, cols]
    pts = face.points - np.array([cols.start, rows.start], np.float32)
    cshape = crop.shape[:2]
    oval = polygon_mask(pts, SKIN_OUTLINE, cshape)
    excl = feature_exclusion(pts, cshape, margin_px=0.04 * face.interocular_px)
    candidate = oval & ~excl
    skin = candidate & ~skin_colour_outliers(crop, candidate)

    masks: dict[str, np.ndarray] = {}
    expected: dict[str, int] = {}
    taken = np.zeros(cshape, bool)
    for name, poly in REGIONS.items():
        outline = polygon_mask(pts, poly, cshape) & ~taken
        m = outline & skin
        taken |= m
        masks[name] = m
        expected[name] = int(np.count_nonzero(outline & ~excl))
    masks["whole_face"] = skin
    expected["whole_face"] = int(np.count_nonzero(candidate))
    return RegionMasks.from_crops(masks, rows, cols, shape, expected, candidate)


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
