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

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class RegionMasks:
    """Boolean masks (H, W) per region name, plus ``skin`` for the whole face."""

    masks: dict[str, np.ndarray]
    expected_px: dict[str, int] = field(default_factory=dict)
    candidate: np.ndarray | None = None  # face outline minus features, before colour checks

    def visible_fraction(self) -> dict[str, float]:
        """Share of each region's outline (minus eyes, brows, lips, nostrils) that is skin."""
        return {n: (float(self.masks[n].sum()) / e if e else 0.0)
                for n, e in self.expected_px.items()}

    def area_px(self) -> dict[str, int]:
        return {name: int(m.sum()) for name, m in self.masks.items()}

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
    excl = np.zeros(shape, bool)
    for poly in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS, NOSTRILS_RIGHT, NOSTRILS_LEFT):
        hull = cv2.convexHull(np.round(points[list(poly)] * 16).astype(np.int32))
        m = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(m, hull, 1, shift=4)
        excl |= m.astype(bool)
    k = max(1, int(round(margin_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    return cv2.dilate(excl.astype(np.uint8), kernel).astype(bool)


def skin_colour_outliers(rgb: np.ndarray, candidate: np.ndarray, max_distance: float = 5.0) -> np.ndarray:
    """Pixels in ``candidate`` whose colour is far from the face's skin colour.

    Flags what is much darker than the face's median lightness (hair, hands
    in shadow, dark occluders: L* below half the median), far off in chroma
    (glasses, fabric: a robust median/MAD distance in a*, b*) or specular.
    Thresholds are loose on purpose so that red and brown skin lesions (which
    we measure) stay in the mask.
    """
    if candidate.sum() < 50:
        return np.zeros(candidate.shape, bool)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    sample = lab[candidate]
    med = np.median(sample, axis=0)
    mad = np.median(np.abs(sample - med), axis=0) * 1.4826 + np.array([2.0, 1.5, 1.5])
    z = np.abs(lab - med) / mad
    dark_or_foreign = lab[..., 0] < 0.5 * med[0]                        # hair, shadows
    chroma_far = np.hypot(z[..., 1], z[..., 2]) > 2.5 * max_distance   # glasses, fabric
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    specular = (hsv[..., 2] >= 250) | ((hsv[..., 2] > 235) & (hsv[..., 1] < 25))
    return (dark_or_foreign | chroma_far | specular) & candidate


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
    more background than face) and pasted into full-size masks.
    """
    shape = rgb.shape[:2]
    margin = 0.1 * face.interocular_px
    rows, cols = face_crop(face.points, shape, margin)
    crop = np.ascontiguousarray(rgb[rows, cols])
    pts = face.points - np.array([cols.start, rows.start], np.float32)
    cshape = crop.shape[:2]
    oval = polygon_mask(pts, SKIN_OUTLINE, cshape)
    excl = feature_exclusion(pts, cshape, margin_px=0.04 * face.interocular_px)
    candidate = oval & ~excl
    skin = candidate & ~skin_colour_outliers(crop, candidate)

    def full(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(shape, bool)
        out[rows, cols] = mask
        return out

    masks: dict[str, np.ndarray] = {}
    expected: dict[str, int] = {}
    taken = np.zeros(cshape, bool)
    for name, poly in REGIONS.items():
        outline = polygon_mask(pts, poly, cshape) & ~taken
        m = outline & skin
        taken |= m
        masks[name] = full(m)
        expected[name] = int((outline & ~excl).sum())
    masks["whole_face"] = full(skin)
    expected["whole_face"] = int(candidate.sum())
    return RegionMasks(masks, expected, full(candidate))


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
