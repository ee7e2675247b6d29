"""Register a follow-up photo to the baseline, sub-pixel, and say when not to trust it.

Method
------
1. Landmarks: a robust similarity (``cv2.estimateAffinePartial2D``, LMEDS) on
   landmarks that do not move with expression (eye corners, nose, forehead,
   cheekbones, temples; no mouth, jaw or eyelids).  This is the initialisation
   and the ``landmarks`` fallback.
2. Intensity refinement: ECC (the criterion of ``cv2.findTransformECCWithMask``,
   homography; :func:`ecc_homography` computes it on the masked pixels only)
   on *locally normalised log-luminance* (log luma minus its local mean,
   divided by its local spread), which removes exposure, white balance and a
   smooth lighting gradient.  Only baseline skin inside the face outline is
   used, on a coarse-to-fine pyramid restricted to the face bounding box
   (finest level: face at most ``FINE_FACE_PX`` wide, ~7.5 px per mm).
3. Checks: landmark residual, skin NCC and how sharply it peaks at the found
   transform, skin visible in both photos, head-pose difference.  Anything
   failing gives ``ok=False`` with the reason.
4. Optional local residual (``local=True``): DIS optical flow on skin between
   the baseline and the aligned follow-up, for expression changes.  Reported
   separately; the global transform is always there.

Speed
-----
At 12 MP (face ~1700 px) :func:`align` takes ~150-180 ms on 2 cores, ~3.5×
a JPEG decode: only the face boxes are resampled, ECC works on the mask's
pixels only, two helper threads make the follow-up's and the baseline's
features while the main thread makes the mask (and refines the coarse levels
before the finest features are ready), and the whole follow-up is warped
only when ``Alignment.warped`` is read.

Directions
----------
``Alignment.matrix`` maps a *follow-up* pixel ``(x, y, 1)`` to the *baseline*
pixel showing the same skin.  ``warped`` is the follow-up resampled into the
baseline frame (``warped[p] = followup[matrix⁻¹ · p]``).  :func:`warp_mask`
goes the other way: a baseline-frame mask into follow-up pixels.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import AlignmentError, FaceNotFoundError
from .face import LEFT_IRIS_CENTRE, RIGHT_IRIS_CENTRE, FaceLandmarks
from .regions import (FACE_OVAL, RegionMasks, face_crop, feature_exclusion, polygon_mask,
                      skin_colour_outliers)

# Landmarks that move little with expression: eye corners, nose bridge and
# tip, forehead, cheekbones, temples (MediaPipe face mesh indices).
STABLE_LANDMARKS = (
    33, 133, 362, 263, 130, 359, 243, 463,                       # eye corners
    1, 4, 5, 6, 168, 197, 195, 2, 98, 327, 48, 278, 19, 94,      # nose
    10, 151, 9, 108, 337, 67, 297, 109, 338, 69, 299, 104, 333,  # forehead
    116, 345, 123, 352, 50, 280, 117, 346, 118, 347,             # cheekbones
    234, 454, 127, 356, 93, 323, 162, 389,                       # temples, face sides
)

# Thresholds of the trust checks.
MAX_POSE_DIFF_DEG = 10.0      # yaw or pitch difference to the baseline
MAX_RESIDUAL_IOD = 0.06       # RMS stable-landmark residual / inter-ocular distance
MIN_NCC = 0.25                # skin NCC after alignment (locally normalised luma)
MIN_NCC_PEAK = 0.08           # NCC drop when the result is moved by PEAK_SHIFT_PX
PEAK_SHIFT_PX = 1.5
MIN_COVERAGE = 0.6            # share of baseline skin that is skin, and agrees, in the follow-up
LOCAL_WINDOW_IOD = 0.1        # window (Gaussian sigma) of the local texture agreement / IOD
MIN_LOCAL_NCC = 0.1           # local texture agreement below this (or below
LOCAL_NCC_FRACTION = 0.35     # this share of the global NCC) = not the same skin
MAX_LANDMARK_DISAGREE_IOD = 0.08  # refined vs landmark fit, on stable landmarks
MAX_LOCAL_FLOW_IOD = 0.03     # median local residual flow / inter-ocular distance

FINE_FACE_PX = 1000           # finest pyramid level: face at most this wide
COARSE_FACE_PX = 180          # coarsest pyramid level: face about this wide
FEATURE_SIGMA_PX = 4.0        # local mean / spread scale of the feature image, level px
ECC_ITERATIONS = 60
ECC_EPS = 1e-5                # stop when the correlation changes less than this
ECC_STEP_PX = 0.01            # or when a step moves the level's corners less than this (level px)


@dataclass
class LocalFlow:
    """Residual non-rigid motion left after the global transform.

    ``flow[y, x]`` (baseline frame, px) points from a baseline pixel to the
    same skin in ``warped`` (the globally aligned follow-up): the skin at
    baseline ``p`` is at ``p + flow[p]`` in ``warped``.  ``warped`` here is the
    follow-up with the local correction applied too.
    """

    flow: np.ndarray
    warped: np.ndarray
    median_px: float
    p95_px: float

    def to_dict(self) -> dict:
        return {"median_px": round(self.median_px, 3), "p95_px": round(self.p95_px, 3)}


@dataclass
class Alignment:
    """Result of :func:`align`.

    Attributes
    ----------
    matrix : ndarray (3, 3) float64
        Maps follow-up pixel ``(x, y, 1)`` to baseline pixel (normalised so
        ``matrix[2, 2] == 1``).
    warped : ndarray (H, W, 3) uint8
        The follow-up resampled into the baseline frame (baseline shape).
        :func:`align` leaves it to be computed on first access (a bicubic
        warp of the whole photo, ~0.1-0.2 s at 12 MP, that a comparison does not
        need): pass ``warped=None`` and the follow-up as ``followup`` for that.
    valid : ndarray (H, W) bool
        Baseline frame: skin in the baseline and in the aligned follow-up,
        where the follow-up's local texture matches (not covered, same shape).
    residual_px : float
        RMS distance of stable landmarks (follow-up mapped by ``matrix``
        vs baseline), px.  Landmark noise, typically 1–3 px.
    ncc : float
        Normalised cross-correlation of locally normalised luminance on
        ``valid`` after alignment (1 = identical texture).
    ok : bool
        False when the result should not be used; ``reason`` says why.
    method : str
        ``"ecc-homography"`` (refined) or ``"landmarks"`` (similarity only).
    landmark_matrix : ndarray (3, 3)
        The landmark-only similarity (same direction as ``matrix``).
    followup : ndarray (Hf, Wf, 3) uint8, optional
        The follow-up photo (not copied: do not modify it while ``warped``
        has not been read), from which ``warped`` is made when it is None.
    """

    matrix: np.ndarray
    warped: np.ndarray | None = field(repr=False, compare=False)
    valid: np.ndarray
    residual_px: float
    ncc: float
    ok: bool
    reason: str
    method: str
    seconds: float
    landmark_matrix: np.ndarray | None = None
    checks: dict = field(default_factory=dict)
    local_flow: LocalFlow | None = None
    followup: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-friendly summary without images."""
        out = {
            "matrix_followup_to_baseline": np.round(self.matrix, 10).tolist(),
            "residual_px": round(float(self.residual_px), 3),
            "ncc": round(float(self.ncc), 4),
            "ok": bool(self.ok),
            "reason": self.reason,
            "method": self.method,
            "seconds": round(float(self.seconds), 3),
            "valid_px": int(self.valid.sum()),
            "checks": self.checks,
        }
        if self.landmark_matrix is not None:
            out["landmark_matrix"] = np.round(self.landmark_matrix, 10).tolist()
        if self.local_flow is not None:
            out["local_flow"] = self.local_flow.to_dict()
        return out


def _get_warped(self: Alignment) -> np.ndarray:
    if self._warped is None and self.followup is not None:
        self._warped = warp_image(self.followup, self.matrix, self.valid.shape)
    return self._warped


def _set_warped(self: Alignment, value: np.ndarray | None) -> None:
    self._warped = value


# A property over the dataclass field: the generated __init__ stores through the
# setter, and the getter warps on first access when only the follow-up was given.
Alignment.warped = property(_get_warped, _set_warped,
                            doc="The follow-up resampled into the baseline frame (made on first access).")


# --------------------------------------------------------------------- geometry

def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points ``(x, y)`` by a 3×3 matrix (with the perspective divide)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    q = np.c_[p, np.ones(len(p))] @ np.asarray(matrix, np.float64).T
    return q[:, :2] / q[:, 2:3]


def local_scale(matrix: np.ndarray, point) -> float:
    """How many pixels one pixel becomes under ``matrix`` near ``point``: the square root of
    the Jacobian determinant of the (projective) map at ``point`` ``(x, y)``, in the pixels
    ``matrix`` maps from (for an alignment: baseline pixels per follow-up pixel)."""
    m = np.asarray(matrix, np.float64)
    q = m @ np.array([point[0], point[1], 1.0])
    mapped = q[:2] / q[2]
    jacobian = (m[:2, :2] - np.outer(mapped, m[2, :2])) / q[2]
    return float(np.sqrt(abs(np.linalg.det(jacobian))))


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return m / m[2, 2]


def translation(dx: float, dy: float) -> np.ndarray:
    """3×3 matrix moving a point by ``(dx, dy)`` pixels."""
    return np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]])


def _resize_matrix(s: float) -> np.ndarray:
    """Full-resolution pixel → pixel of an image resized by ``s`` (cv2 pixel centres)."""
    return np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])


def warp_mask(mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Map a *baseline-frame* boolean mask into *follow-up* pixels.

    Parameters
    ----------
    mask : ndarray (Hb, Wb) bool
        A mask in the baseline frame (e.g. a region of the baseline photo).
    matrix : ndarray (3, 3)
        ``Alignment.matrix``: follow-up pixel → baseline pixel.
    shape : (Hf, Wf)
        Shape of the follow-up photo.

    Returns
    -------
    ndarray (Hf, Wf) bool
        ``out[q] = mask[matrix · q]``: the same skin, in follow-up pixels.
    """
    h, w = shape[:2]
    src = np.ascontiguousarray(mask, dtype=np.uint8) * 255
    # WARP_INVERSE_MAP: dst(q) = src(matrix · q), matrix maps dst (follow-up) -> src (baseline)
    out = cv2.warpPerspective(src, np.asarray(matrix, np.float64), (w, h),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out >= 128


def warp_image(followup_rgb: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample the follow-up into the baseline frame (``matrix``: follow-up → baseline)."""
    h, w = shape[:2]
    return cv2.warpPerspective(followup_rgb, np.asarray(matrix, np.float64), (w, h),
                               flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# ---------------------------------------------------------------------- features

def feature_image(img: np.ndarray, sigma: float = FEATURE_SIGMA_PX) -> np.ndarray:
    """Locally normalised log-luminance (float32): lighting-tolerant texture.

    ``log`` turns exposure, white balance and a lighting gradient into additive,
    smooth terms; subtracting the local mean (Gaussian ``sigma``) removes them
    and dividing by the local spread (Gaussian ``2·sigma``) evens out contrast.
    ``img`` is RGB uint8 or its luminance (2-D).
    """
    y = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    log = cv2.LUT(y, _LOG_LUMA) if y.dtype == np.uint8 else np.log(y.astype(np.float32) + np.float32(8.0))
    hp = log - cv2.GaussianBlur(log, (0, 0), sigma)
    var = hp * hp
    h, w = var.shape
    if sigma >= 2.0 and min(h, w) >= 32:
        # The spread is smooth (2·sigma): blurred on a half-size grid (a 2×2 area average has
        # variance 1/12 half-grid px², bilinear upsampling 1/6), 6× cheaper than at full size.
        half = cv2.resize(var, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        half = cv2.GaussianBlur(half, (0, 0), float(np.sqrt(sigma * sigma - 0.25)))
        var = cv2.resize(half, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        var = cv2.GaussianBlur(var, (0, 0), 2.0 * sigma)
    spread = np.sqrt(var) + np.float32(1e-3)
    return (hp / spread).astype(np.float32, copy=False)


_LOG_LUMA = np.log(np.arange(256, dtype=np.float32) + np.float32(8.0))  # feature_image's log, 8-bit


def _on_box(regions: RegionMasks, name: str, rows: slice, cols: slice) -> np.ndarray:
    """``regions[name][rows, cols]`` without materialising a full-size mask when possible."""
    r, c = regions.box
    if r.start <= rows.start and rows.stop <= r.stop and c.start <= cols.start and cols.stop <= c.stop:
        return regions.crop(name)[rows.start - r.start:rows.stop - r.start,
                                  cols.start - c.start:cols.stop - c.start]
    return regions[name][rows, cols]


def _refinement_mask_on(rgb: np.ndarray, points: np.ndarray, margin_px: float) -> np.ndarray:
    """Face outline minus features (``margin_px``) minus pixels not coloured like skin."""
    shape = rgb.shape[:2]
    oval = polygon_mask(points, FACE_OVAL, shape)
    oval &= ~feature_exclusion(points, shape, margin_px=margin_px)
    return oval & ~skin_colour_outliers(rgb, oval)


def refinement_mask_crop(rgb: np.ndarray, face: FaceLandmarks,
                         regions: RegionMasks | None) -> tuple[np.ndarray, slice, slice]:
    """:func:`refinement_mask` on the face box: ``(mask, rows, cols)``; False outside the box."""
    rows, cols = face_crop(face.points, rgb.shape[:2], 0.1 * face.interocular_px)
    pts = face.points - np.array([cols.start, rows.start], np.float32)
    mask = _refinement_mask_on(rgb[rows, cols], pts, 0.04 * face.interocular_px)
    if regions is not None:
        mask |= _on_box(regions, "whole_face", rows, cols)
    return mask, rows, cols


def refinement_mask(rgb: np.ndarray, face: FaceLandmarks, regions: RegionMasks | None) -> np.ndarray:
    """Skin used to refine the alignment, in the photo's pixels (bool).

    The whole face outline up to the hairline, minus eyes, brows, lips and
    nostrils (with margin) and minus pixels not coloured like skin; united with
    the whole-face skin mask of ``regions`` when given.  Computed on the face
    box (:func:`refinement_mask_crop`); :func:`align` makes it at the finest
    pyramid level (:func:`build_levels`).
    """
    crop, rows, cols = refinement_mask_crop(rgb, face, regions)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[rows, cols] = crop
    return mask


# --------------------------------------------------------------------- landmarks

def landmark_transform(baseline_face: FaceLandmarks, followup_face: FaceLandmarks) -> np.ndarray:
    """Robust similarity (LMEDS) on stable landmarks: follow-up → baseline, 3×3.

    Raises
    ------
    AlignmentError
        When no transform can be fitted.
    """
    idx = list(STABLE_LANDMARKS)
    src = followup_face.points[idx].astype(np.float32)
    dst = baseline_face.points[idx].astype(np.float32)
    a, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if a is None or inliers is None or int(inliers.sum()) < 6:
        raise AlignmentError("the two faces' landmarks cannot be matched; retake the follow-up facing the camera")
    return np.vstack([a, [0.0, 0.0, 1.0]])


def landmark_residual(matrix: np.ndarray, baseline_face: FaceLandmarks,
                      followup_face: FaceLandmarks) -> float:
    """RMS distance (baseline px) of stable landmarks after mapping the follow-up's."""
    idx = list(STABLE_LANDMARKS)
    d = apply_matrix(matrix, followup_face.points[idx]) - baseline_face.points[idx]
    return float(np.sqrt((d ** 2).sum(axis=1).mean()))


# ---------------------------------------------------------------------- refinement

def pyramid_scales(face_width_px: float) -> list[float]:
    """Scales (coarse → fine) so the face is ~``COARSE_FACE_PX`` wide at the coarsest level.

    The finest level has the face at most ``FINE_FACE_PX`` wide (~7.5 px per mm
    of skin).  Coarser is not as accurate: with the finest level at 5 px/mm
    (12 MP photo, face ~1640 px) the corner error grows from ~0.09 to ~0.17 px
    median and ~0.26 to ~0.53 px p95 on phantom pairs.
    """
    finest = min(1.0, FINE_FACE_PX / max(face_width_px, 1.0))
    scales = [finest]
    while face_width_px * scales[0] / 2 >= COARSE_FACE_PX:
        scales.insert(0, scales[0] / 2)
    return scales


class _Level:
    """One pyramid level: baseline crop features and its mask, follow-up crop features.

    The feature images may be given as futures (made in a helper thread while
    the coarser levels are refined); ``base`` and ``follow`` wait for them.
    """

    def __init__(self, base, mask: np.ndarray, follow, to_level_b: np.ndarray,
                 to_level_f: np.ndarray, scale: float = 1.0, box: tuple[slice, slice] | None = None):
        self._base, self._follow, self._box = base, follow, box
        self.mask = mask
        self.to_level_b = to_level_b  # baseline full-res px -> level px
        self.to_level_f = to_level_f  # follow-up full-res px -> level px
        self.scale = scale            # level px per full-resolution px
        self._pixels = None

    @property
    def base(self) -> np.ndarray:
        """Baseline features on the mask's box (``box`` of the given image when set)."""
        if isinstance(self._base, Future):
            full = self._base.result()
            if self._box is not None:
                full = full[self._box]
            if full.shape != self.mask.shape:
                raise RuntimeError(f"pyramid level features {full.shape} do not match the mask {self.mask.shape}")
            self._base = np.ascontiguousarray(full)
        return self._base

    @property
    def follow(self) -> np.ndarray:
        if isinstance(self._follow, Future):
            self._follow = self._follow.result()
        return self._follow

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """``np.nonzero(mask)`` (rows, columns), computed once."""
        if self._pixels is None:
            self._pixels = tuple(a.astype(np.int32) for a in np.nonzero(self.mask))
        return self._pixels


def _resized(img: np.ndarray, s: float) -> np.ndarray:
    """``img`` resized by ``s`` (area average when shrinking); pixel centres as :func:`_resize_matrix`."""
    if s == 1.0:
        return img
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def _feature_box(mask: np.ndarray, margin: int = 16) -> tuple[slice, slice]:
    """Bounding box of ``mask`` grown by ``margin`` px (inside the image); raises when empty."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        raise AlignmentError("no skin of the baseline face to refine on")
    hh, ww = mask.shape[:2]
    return (slice(max(0, y - margin), min(hh, y + h + margin)),
            slice(max(0, x - margin), min(ww, x + w + margin)))


def build_levels(baseline: np.ndarray, followup: np.ndarray, face: FaceLandmarks,
                 regions: RegionMasks | None, matrix: np.ndarray,
                 scales: list[float]) -> list[_Level]:
    """The ECC pyramid (coarse → fine), from the face boxes only.

    The baseline face box and the follow-up area that ``matrix`` (follow-up →
    baseline) maps onto it, with a margin for the refinement, are converted to
    luminance and resized once to the finest scale, coarser levels are
    area-averaged from that; the refinement mask (:func:`refinement_mask`) is
    made at the finest scale.  Each level keeps the mask's bounding box plus
    16 level px of the baseline.  The two photos' features are made in helper
    threads while the main thread makes the mask.

    Raises
    ------
    AlignmentError
        When the baseline face maps outside the follow-up photo.
    """
    hb, wb = baseline.shape[:2]
    hf, wf = followup.shape[:2]
    iod = face.interocular_px
    rows, cols = face_crop(face.points, (hb, wb), 0.1 * iod)
    s = scales[-1]
    crop = baseline[rows, cols]
    fine_size = (max(1, int(round(crop.shape[1] * s))), max(1, int(round(crop.shape[0] * s))))
    to_fine_b = _resize_matrix(s) @ translation(-cols.start, -rows.start)
    pts = apply_matrix(to_fine_b, face.points)
    skin = None
    if regions is not None:
        skin = _on_box(regions, "whole_face", rows, cols)
        if s != 1.0:
            skin = cv2.resize(skin.view(np.uint8), fine_size, interpolation=cv2.INTER_NEAREST).view(bool)
    # The follow-up: where the baseline's refinement mask (inside the face outline and
    # the whole-face skin) plus the features' margin maps, plus 16 px of the coarsest
    # level for the refinement to move in.  Made in a worker thread meanwhile.
    outline = np.round(pts[list(FACE_OVAL)]).astype(np.int32)
    x0, y0 = outline.min(axis=0) - 1
    x1, y1 = outline.max(axis=0) + 2
    if skin is not None and skin.any():
        sx, sy, sw, sh = cv2.boundingRect(skin.view(np.uint8))
        x0, y0, x1, y1 = min(x0, sx), min(y0, sy), max(x1, sx + sw), max(y1, sy + sh)
    box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64) + [[-16.5, -16.5], [16.5, -16.5],
                                                                            [16.5, 16.5], [-16.5, 16.5]]
    q = apply_matrix(np.linalg.inv(to_fine_b @ matrix), box)
    margin = 16.0 / scales[0]
    fx0, fy0 = np.maximum(np.floor(q.min(axis=0) - margin), 0).astype(int)
    fx1, fy1 = np.minimum(np.ceil(q.max(axis=0) + margin), [wf, hf]).astype(int)
    if fx1 - fx0 < 16 or fy1 - fy0 < 16:
        raise AlignmentError("the face of the baseline falls outside the follow-up photo")
    to_fine_f = _resize_matrix(s) @ translation(-fx0, -fy0)

    # Both photos' features are made in helper threads, coarse levels first, each
    # published as soon as made: the coarse levels are refined while the finest
    # level's features are still being made.
    def features(rgb: np.ndarray, out: list[Future]) -> None:
        try:
            fine = _resized(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), s)
            for sk, fut in zip(scales, out):
                fut.set_result(feature_image(fine if sk == s else _resized(fine, sk / s)))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            for fut in out:
                if not fut.done():
                    fut.set_exception(exc)

    follows = [Future() for _ in scales]
    bases = [Future() for _ in scales]
    _worker().submit(features, followup[fy0:fy1, fx0:fx1], follows)
    _worker().submit(features, crop, bases)
    # The mask is a per-pixel decision: made on nearest samples (as a full-resolution
    # mask resized with INTER_NEAREST); the features get area-averaged luminance.
    sampled = crop if s == 1.0 else cv2.resize(crop, fine_size, interpolation=cv2.INTER_NEAREST)
    mask_fine = _refinement_mask_on(sampled, pts, 0.04 * iod * s)
    del sampled
    if skin is not None:
        mask_fine |= skin
    mask_fine = mask_fine.view(np.uint8) * np.uint8(255)
    levels = []
    for sk, fb, ff in zip(scales, bases, follows):
        r = sk / s
        # the size cv2.resize gives for fx = fy = r (rounded half to even, as round())
        size = fine_size if r == 1.0 else (round(fine_size[0] * r), round(fine_size[1] * r))
        m = mask_fine if r == 1.0 else cv2.resize(mask_fine, size, interpolation=cv2.INTER_NEAREST)
        br, bc = _feature_box(m)
        levels.append(_Level(fb, np.ascontiguousarray(m[br, bc]), ff,
                             translation(-bc.start, -br.start) @ _resize_matrix(r) @ to_fine_b,
                             _resize_matrix(r) @ to_fine_f, sk, (br, bc)))
    return levels


_WORKER: tuple[int, ThreadPoolExecutor] | None = None
_WORKER_LOCK = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    """Helper threads: OpenCV and NumPy release the GIL and half of align's work is
    single-threaded NumPy, so independent parts (the follow-up's pyramid beside the
    baseline's, the shifted texture NCCs, the skin warp) run side by side.

    Made per process: a forked child does not inherit the threads.
    """
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None or _WORKER[0] != os.getpid():
            _WORKER = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="align"))
        return _WORKER[1]


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two float32 vectors, summed pairwise in float64.

    Not ``np.dot`` on a whole ~1 M-element vector: there OpenBLAS starts
    threads that spin after the call and slow OpenCV's own threads down
    (align ran ~25 % slower on 2 cores); see also :func:`_gram`.
    """
    return float((a * b).sum(dtype=np.float64))


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` (float64) of ``(k, n)`` float32 arrays, summed over column chunks.

    A chunk keeps OpenBLAS single-threaded (no spinning threads) and in cache:
    3× faster than one product over ~1 M columns, and float64 between chunks.
    """
    chunk = max(1024, 196608 // max(a.shape[0] * b.shape[0], 1))
    out = np.zeros((a.shape[0], b.shape[0]))
    for k in range(0, a.shape[1], chunk):
        out += a[:, k:k + chunk] @ b[:, k:k + chunk].T
    return out


_DIFF_X = np.array([[-0.5, 0.0, 0.5]], np.float32)   # the derivative filter of OpenCV's ECC
_DIFF_Y = np.ascontiguousarray(_DIFF_X.T)


def _step_matrix(dp: np.ndarray) -> np.ndarray:
    return np.array([[1.0 + dp[0], dp[1], dp[2]], [dp[3], 1.0 + dp[4], dp[5]], [dp[6], dp[7], 1.0]])


def ecc_homography(template: np.ndarray, image: np.ndarray, mask: np.ndarray, warp: np.ndarray, *,
                   gauss: int = 3, iterations: int | None = None, eps: float | None = None,
                   step_px: float | None = None, hessian_step: int = 3,
                   pixels: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    """Homography maximising the enhanced correlation coefficient on ``mask``.

    The criterion of ``cv2.findTransformECCWithMask`` (Evangelidis & Psarakis
    2008: correlation of the zero-mean template and warped image on the
    template mask, both Gaussian-prefiltered with ``gauss``), maximised by
    forward-compositional Gauss–Newton steps computed on the masked pixels
    only, which is several times faster than OpenCV's dense implementation.
    The Gauss–Newton matrix is summed over every ``hessian_step``-th masked
    pixel, at the first step only: it sets the steps, not the maximum they
    converge to.

    Parameters
    ----------
    template, image : ndarray float32
        ``image`` is warped onto ``template``.
    mask : ndarray (h, w) of ``template``
        Pixels that count (nonzero).
    warp : ndarray (3, 3)
        Initial template pixel → image pixel homography.
    iterations, eps, step_px
        Stop after ``iterations``, when the correlation changes by less than
        ``eps``, or when a step moves no template corner by ``step_px`` px
        (defaults ``ECC_ITERATIONS``, ``ECC_EPS``, ``ECC_STEP_PX``).
    pixels : (rows, columns), optional
        ``np.nonzero(mask)`` when already known.

    Returns
    -------
    (rho, warp) : the correlation coefficient at the last warp before its
    final step, and the refined template → image homography (float64).

    Raises
    ------
    cv2.error
        When the images do not overlap on the mask or the step would
        minimise the correlation (as OpenCV's ECC).
    """
    iterations = ECC_ITERATIONS if iterations is None else iterations
    eps = ECC_EPS if eps is None else eps
    step_px = ECC_STEP_PX if step_px is None else step_px
    t = cv2.GaussianBlur(template, (gauss, gauss), 0) if gauss > 1 else template
    img = cv2.GaussianBlur(image, (gauss, gauss), 0) if gauss > 1 else image
    h, w = t.shape
    ys, xs = np.nonzero(np.asarray(mask)) if pixels is None else pixels
    n_all = len(xs)
    if n_all < 50:
        raise cv2.error("ECC: too few template pixels")
    idx = ys.astype(np.intp) * w + xs
    # Parameters act on coordinates centred on the template and scaled to ~[-1, 1].
    cx, cy, d = 0.5 * (w - 1), 0.5 * (h - 1), 0.5 * float(np.hypot(w, h))
    norm = np.array([[1.0 / d, 0.0, -cx / d], [0.0, 1.0 / d, -cy / d], [0.0, 0.0, 1.0]])
    norm_inv = np.linalg.inv(norm)
    # Monomials x, y, 1, x², xy, y² of the normalised coordinates: G·v for the Jacobian G
    # (rows gx·x, gx·y, gx, gy·x, gy·y, gy, -s·x, -s·y; s = gx·x + gy·y) comes from the
    # moments of gx·v and gy·v over them.
    mono = np.empty((6, n_all), np.float32)
    x, y = mono[0], mono[1]
    np.subtract(xs, cx, out=x, casting="unsafe")
    x *= np.float32(1.0 / d)
    np.subtract(ys, cy, out=y, casting="unsafe")
    y *= np.float32(1.0 / d)
    del xs, ys
    mono[2] = 1.0
    np.multiply(x, x, out=mono[3])
    np.multiply(x, y, out=mono[4])
    np.multiply(y, y, out=mono[5])
    t_v = t.ravel()[idx]
    del t
    tz_all = t_v - np.float32(t_v.mean(dtype=np.float64))
    tz_n2_all = _dot(tz_all, tz_all)
    corners = np.array([[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]])
    # buffers: gradients and image at the mask pixels, products for the moments
    gx, gy, iv = (np.empty(n_all, np.float32) for _ in range(3))
    ab = np.empty((4, n_all), np.float32)
    grad = np.empty((h, w), np.float32)

    def project(gx, gy, vectors, m):
        k = len(vectors)
        for j, v in enumerate(vectors):
            np.multiply(gx, v, out=ab[2 * j, :len(v)])
            np.multiply(gy, v, out=ab[2 * j + 1, :len(v)])
        mom = _gram(m, ab[:2 * k, :m.shape[1]]) * d  # gradients in normalised units
        out = []
        for j in range(k):
            a, b = mom[:, 2 * j], mom[:, 2 * j + 1]
            out.append(np.array([a[0], a[1], a[2], b[0], b[1], b[2], -(a[3] + b[4]), -(a[4] + b[5])]))
        return out

    def hessian(gx, gy, m, n):
        sub = slice(None, None, hessian_step)
        gxs, gys = gx[sub] * np.float32(d), gy[sub] * np.float32(d)
        xs_, ys_ = m[0, sub], m[1, sub]
        jac = np.empty((8, gxs.shape[0]), np.float32)
        np.multiply(gxs, xs_, out=jac[0])
        np.multiply(gxs, ys_, out=jac[1])
        jac[2] = gxs
        np.multiply(gys, xs_, out=jac[3])
        np.multiply(gys, ys_, out=jac[4])
        jac[5] = gys
        s = gxs * xs_
        s += gys * ys_
        np.multiply(s, xs_, out=jac[6])
        np.multiply(s, ys_, out=jac[7])
        jac[6:] *= -1
        return np.linalg.inv(_gram(jac, jac) * (n / jac.shape[1]))

    warp = np.asarray(warp, np.float64) / warp[2, 2]
    rho, last_rho = -1.0, -eps
    hess_inv, hess_n = None, -1
    for _ in range(max(int(iterations), 1)):
        iw = cv2.warpPerspective(img, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
        cv2.filter2D(iw, -1, _DIFF_X, dst=grad)
        np.take(grad.ravel(), idx, out=gx)
        cv2.filter2D(iw, -1, _DIFF_Y, dst=grad)
        np.take(grad.ravel(), idx, out=gy)
        np.take(iw.ravel(), idx, out=iv)
        g_x, g_y, i_v, m, tz, tz_n2 = gx, gy, iv, mono, tz_all, tz_n2_all
        if not np.isfinite(float(gx.sum()) + float(gy.sum()) + float(iv.sum())):
            ok = np.isfinite(gx) & np.isfinite(gy) & np.isfinite(iv)
            if np.count_nonzero(ok) < 50:
                raise cv2.error("ECC: the images do not overlap on the template mask")
            g_x, g_y, i_v, m = gx[ok], gy[ok], iv[ok], mono[:, ok]
            tz = t_v[ok]
            tz -= np.float32(tz.mean(dtype=np.float64))
            tz_n2 = _dot(tz, tz)
        n = i_v.shape[0]
        i_v -= np.float32(i_v.mean(dtype=np.float64))
        ip, tp = project(g_x, g_y, (i_v, tz), m)
        if hess_inv is None or n != hess_n:
            # the Gauss-Newton matrix of the first step serves the following ones
            hess_inv, hess_n = hessian(g_x, g_y, m, n), n
        corr = _dot(tz, i_v)
        img_n2 = _dot(i_v, i_v)
        last_rho, rho = rho, corr / np.sqrt(tz_n2 * img_n2)
        if not np.isfinite(rho):
            raise cv2.error("ECC: NaN encountered")
        ip_h = hess_inv @ ip
        lam_d = corr - tp @ ip_h
        if lam_d <= 0:
            raise cv2.error("ECC: the step would minimise the correlation; images may be uncorrelated")
        lam = (img_n2 - ip @ ip_h) / lam_d
        dp = hess_inv @ (lam * tp - ip)
        step = norm_inv @ _step_matrix(dp) @ norm     # template px -> template px
        warp = warp @ step
        warp /= warp[2, 2]
        moved = float(np.abs(apply_matrix(step, corners) - corners).max())
        if abs(rho - last_rho) < eps or moved < step_px:
            break
    return rho, warp


def _ecc_level(level: _Level, matrix: np.ndarray, gauss: int) -> tuple[float, np.ndarray]:
    """One ECC run; returns (correlation, refined follow-up → baseline matrix, full res)."""
    # ECC's warp maps template (baseline level px) -> input (follow-up level px).
    m_level = level.to_level_b @ matrix @ np.linalg.inv(level.to_level_f)
    cc, warp = ecc_homography(level.base, level.follow, level.mask, _normalise(np.linalg.inv(m_level)),
                              gauss=gauss, pixels=level.pixels())
    m_level = np.linalg.inv(warp)
    return float(cc), _normalise(np.linalg.inv(level.to_level_b) @ m_level @ level.to_level_f)


def refine_ecc(levels: list[_Level], matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Coarse-to-fine ECC homography on skin over :func:`build_levels`, from ``matrix``.

    ``matrix`` maps follow-up → baseline full-resolution pixels, as does the
    result.  Raises ``cv2.error`` when ECC does not converge.
    """
    cc = 0.0
    for i, level in enumerate(levels):
        gauss = 5 if i == len(levels) - 1 and level.scale > 0.75 else 3
        cc, matrix = _ecc_level(level, matrix, gauss)
    return matrix, cc


def texture_agreement(level: _Level, matrix: np.ndarray, window_px: float,
                      shift_px: float = PEAK_SHIFT_PX) -> tuple[float, float, np.ndarray, np.ndarray]:
    """How well the aligned follow-up's skin texture matches the baseline's.

    Works on a pyramid level (:func:`build_levels`; the finest: the skin
    detail ECC used).

    Returns
    -------
    ncc : float
        NCC of the feature images on the level's mask at ``matrix``.
    drop : float
        ``ncc`` minus its mean when the follow-up is moved by ``shift_px``
        (level px): a true alignment of textured skin peaks sharply, a false
        one is flat.
    local : ndarray (h, w) float32
        Gaussian-windowed (``window_px``, full-resolution px) local
        correlation, on a grid of the level's crop (coarser for wide windows);
        about 0 where the follow-up shows something else (covered, out of
        frame, changed shape).
    to_local : ndarray (3, 3)
        Baseline full-resolution pixel → ``local`` pixel.
    """
    fb = level.base
    fol = level.follow
    hl, wl = fb.shape
    hf, wf = fol.shape
    ys, xs = level.pixels()
    if len(xs) < 50:
        return 0.0, 0.0, np.zeros((1, 1), np.float32), np.eye(3)
    idx = ys.astype(np.intp) * wl + xs
    base_v = fb.ravel()[idx]
    base_v -= np.float32(base_v.mean(dtype=np.float64))
    base_n2 = _dot(base_v, base_v)
    to_follow = level.to_level_f @ np.linalg.inv(matrix) @ np.linalg.inv(level.to_level_b)

    def ncc_at(y, inside):
        x, x_n2 = base_v, base_n2
        if inside is not None:
            ok = inside.ravel()[idx] if inside.shape != y.shape else inside
            if np.count_nonzero(ok) < 50:
                return 0.0
            x, y = x[ok], y[ok]
            x = x - np.float32(x.mean(dtype=np.float64))
            x_n2 = _dot(x, x)
        # x is zero-mean: its products with y need no centred copy of y
        n, sy = len(y), float(y.sum(dtype=np.float64))
        d = float(np.sqrt(x_n2 * max(_dot(y, y) - sy * sy / n, 0.0)))
        return (_dot(x, y) - float(x.sum(dtype=np.float64)) * sy / n) / d if d > 0 else 0.0

    def shifted_nccs() -> list[float]:
        # moved by shift_px: sampled at the mask's pixels only (same bilinear sampling)
        hm = to_follow.astype(np.float32)
        xf, yf = xs.astype(np.float32), ys.astype(np.float32)
        num_x = hm[0, 0] * xf + hm[0, 1] * yf + hm[0, 2]
        num_y = hm[1, 0] * xf + hm[1, 1] * yf + hm[1, 2]
        den = hm[2, 0] * xf + hm[2, 1] * yf + hm[2, 2]
        del xf, yf
        n = len(xs)
        rows = -(-n // 1024)  # remap wants images below 32767 px a side: 1024 samples a row
        map_x, map_y, dd = (np.zeros(rows * 1024, np.float32) for _ in range(3))
        out = []
        for dx, dy in ((shift_px, 0.0), (-shift_px, 0.0), (0.0, shift_px), (0.0, -shift_px)):
            # the follow-up at baseline level pixel p - (dx, dy)
            np.subtract(den, np.float32(to_follow[2, 0] * dx + to_follow[2, 1] * dy), out=dd[:n])
            np.subtract(num_x, np.float32(to_follow[0, 0] * dx + to_follow[0, 1] * dy), out=map_x[:n])
            np.subtract(num_y, np.float32(to_follow[1, 0] * dx + to_follow[1, 1] * dy), out=map_y[:n])
            map_x[:n] /= dd[:n]
            map_y[:n] /= dd[:n]
            v = cv2.remap(fol, map_x.reshape(rows, 1024), map_y.reshape(rows, 1024), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan).ravel()[:n]
            ok = np.isfinite(v)
            out.append(ncc_at(v, None if ok.all() else ok))
        return out

    shifted = _worker().submit(shifted_nccs)
    try:
        # at the transform: the whole level grid (the local agreement needs it)
        q = apply_matrix(to_follow, np.array([[0.0, 0.0], [wl - 1.0, 0.0], [wl - 1.0, hl - 1.0],
                                              [0.0, hl - 1.0]]))
        everywhere = bool((q > 0).all() and (q[:, 0] < wf - 1).all() and (q[:, 1] < hf - 1).all())
        ff = cv2.warpPerspective(fol, to_follow, (wl, hl), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0.0 if everywhere else np.nan)
        inside = None
        if not everywhere:
            inside = np.isfinite(ff)
            ff[~inside] = 0.0
        ncc = ncc_at(ff.ravel()[idx], inside)
        local_small, to_small = _local_agreement(level, ff, inside, window_px)
    finally:
        shifted = shifted.result()
    return ncc, ncc - float(np.mean(shifted)), local_small, to_small @ level.to_level_b


def _local_agreement(level: _Level, ff: np.ndarray, inside: np.ndarray | None,
                     window_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-windowed correlation of the level's baseline and warped follow-up
    features ``ff`` on the mask; returns it on a coarse grid and level px → grid px."""
    fb = level.base
    hl, wl = fb.shape
    m = level.mask > 0
    wm = (m if inside is None else m & inside).astype(np.float32)
    sigma = max(window_px * level.scale, 0.5)
    fbw = fb * wm
    ffw = ff * wm
    products = [fbw * ff, fbw * fb, ffw * ff]
    # The window is wide (a tenth of the eye distance): blur the products on a grid
    # ``step`` times coarser (area average first) with a ≥ 4 px sigma, not at level px.
    step = max(1, int(sigma // 4))
    to_small = np.eye(3)
    if step > 1:
        size = (max(1, int(round(wl / step))), max(1, int(round(hl / step))))
        products = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in products]
        sx, sy = size[0] / wl, size[1] / hl
        to_small = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        sigma = float(np.sqrt(max(sigma * sigma / (step * step) - 1.0 / 12.0, 0.25)))
    num, bb, fff = (cv2.GaussianBlur(p, (0, 0), sigma) for p in products)
    local_small = (num / (np.sqrt(np.maximum(bb * fff, 0.0)) + 1e-6)).astype(np.float32)
    return local_small, to_small


# ---------------------------------------------------------------------- local flow

def local_flow(baseline: np.ndarray, warped: np.ndarray, valid: np.ndarray) -> LocalFlow:
    """DIS optical flow on skin between the baseline and the globally aligned follow-up."""
    x, y, w, h = cv2.boundingRect(valid.astype(np.uint8))
    def u8(rgb):
        f = feature_image(rgb)
        return np.clip(f * 40 + 128, 0, 255).astype(np.uint8)
    a = u8(baseline[y:y + h, x:x + w])
    b = u8(warped[y:y + h, x:x + w])
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    crop_flow = dis.calc(a, b, None)
    flow = np.zeros(baseline.shape[:2] + (2,), np.float32)
    flow[y:y + h, x:x + w] = crop_flow
    flow[~valid] = 0
    gx, gy = np.meshgrid(np.arange(baseline.shape[1], dtype=np.float32),
                         np.arange(baseline.shape[0], dtype=np.float32))
    corrected = cv2.remap(warped, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mag = np.linalg.norm(flow[valid], axis=1) if valid.any() else np.zeros(1)
    return LocalFlow(flow=flow, warped=corrected, median_px=float(np.median(mag)),
                     p95_px=float(np.percentile(mag, 95)))


# ---------------------------------------------------------------------- align

def _detect(rgb: np.ndarray, which: str) -> FaceLandmarks:
    from .face import get_landmarker

    try:
        return get_landmarker().detect(rgb)
    except FaceNotFoundError as exc:
        raise AlignmentError(f"cannot align: no face found in the {which} photo ({exc})") from exc


def _pose_reason(baseline_face: FaceLandmarks, followup_face: FaceLandmarks) -> str:
    for key, words in (("yaw", "turned"), ("pitch", "tilted up/down")):
        if key in baseline_face.pose and key in followup_face.pose:
            d = followup_face.pose[key] - baseline_face.pose[key]
            if abs(d) > MAX_POSE_DIFF_DEG:
                return (f"head {words} {abs(d):.0f}° {'more' if d > 0 else 'less'} than at baseline"
                        f" ({key}): retake facing the camera as in the baseline photo")
    return ""


def _as_rgb(img: np.ndarray, which: str) -> np.ndarray:
    if img is None or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise AlignmentError(f"the {which} photo must be an RGB uint8 image of shape (H, W, 3)")
    return np.ascontiguousarray(img)


def align(baseline_rgb: np.ndarray, followup_rgb: np.ndarray, *,
          baseline_face: FaceLandmarks | None = None, followup_face: FaceLandmarks | None = None,
          baseline_regions: RegionMasks | None = None, followup_regions: RegionMasks | None = None,
          refine: bool = True, local: bool = False) -> Alignment:
    """Register the follow-up photo to the baseline.

    Parameters
    ----------
    baseline_rgb, followup_rgb : ndarray (H, W, 3) uint8
        The two photos (sizes may differ).
    baseline_face, followup_face : FaceLandmarks, optional
        Detected here when not given.
    baseline_regions, followup_regions : RegionMasks, optional
        Built here (``build_regions``) when not given; ``["whole_face"]`` is skin.
    refine : bool
        Intensity (ECC) refinement after the landmark fit; False = landmarks only.
    local : bool
        Also estimate the non-rigid residual (``Alignment.local_flow``).

    Returns
    -------
    Alignment
        ``matrix`` maps follow-up pixels to baseline pixels.  ``ok`` is False,
        with a ``reason`` a person can act on, when the result is not reliable.

    Raises
    ------
    AlignmentError
        Only when nothing can be aligned (no face in a photo, wrong input).
    """
    from .regions import build_regions

    t0 = time.perf_counter()
    base = _as_rgb(baseline_rgb, "baseline")
    fol = _as_rgb(followup_rgb, "follow-up")
    bface = baseline_face or _detect(base, "baseline")
    fface = followup_face or _detect(fol, "follow-up")
    bregions = baseline_regions or build_regions(base, bface)
    fregions = followup_regions or build_regions(fol, fface)

    m_landmarks = landmark_transform(bface, fface)
    matrix, method, reasons = m_landmarks, "landmarks", []
    checks: dict = {}
    iod = max(bface.interocular_px, 1.0)
    face_w = float(np.ptp(bface.points[:, 0]))
    levels: list[_Level] = []
    try:
        scales = pyramid_scales(face_w)
        levels = build_levels(base, fol, bface, bregions, m_landmarks, scales if refine else scales[-1:])
    except AlignmentError as exc:  # the face leaves the frame: landmarks only
        if refine:
            reasons.append(f"alignment could not be refined: {exc}; using landmarks only")
    if refine and levels:
        try:
            m_refined, checks["ecc"] = refine_ecc(levels, m_landmarks)
            disagree = np.linalg.norm(
                apply_matrix(m_refined, fface.points[list(STABLE_LANDMARKS)])
                - apply_matrix(m_landmarks, fface.points[list(STABLE_LANDMARKS)]), axis=1)
            checks["landmark_disagreement_px"] = round(float(np.median(disagree)), 3)
            if np.median(disagree) > MAX_LANDMARK_DISAGREE_IOD * iod:
                reasons.append("alignment refinement drifted away from the landmarks; "
                               "too different lighting or expression: retake")
            matrix, method = m_refined, "ecc-homography"
        except (cv2.error, np.linalg.LinAlgError):
            reasons.append("alignment could not be refined: too little skin detail or too "
                           "different lighting; using landmarks only (about 2–4 px accuracy)")
    elif not refine:
        checks["note"] = "landmark-only alignment (refinement off): about 2–4 px accuracy"

    shape = base.shape[:2]
    residual = landmark_residual(matrix, bface, fface)
    # Everything below lives on the baseline's whole-face box.
    brows, bcols = bregions.box
    bskin = bregions.crop("whole_face")
    bx0, by0 = bcols.start, brows.start
    bh, bw = bskin.shape
    frows, fcols = fregions.box
    to_box = translation(-bx0, -by0) @ matrix @ translation(fcols.start, frows.start)

    def skin_in_base() -> np.ndarray:  # the follow-up's skin in the baseline box
        fskin = fregions.crop("whole_face").view(np.uint8) * np.uint8(255)
        return cv2.warpPerspective(fskin, to_box, (bw, bh), flags=cv2.INTER_LINEAR) >= 128

    fskin_in_base = _worker().submit(skin_in_base)
    try:
        if levels:
            ncc, drop, local_ncc, to_local = texture_agreement(levels[-1], matrix, LOCAL_WINDOW_IOD * iod)
        else:  # the baseline face maps outside the follow-up
            ncc, drop, local_ncc, to_local = 0.0, 0.0, np.zeros((1, 1), np.float32), np.eye(3)
    finally:
        fskin_in_base = fskin_in_base.result()
    valid_box = bskin & fskin_in_base
    if method != "landmarks":
        thr = max(MIN_LOCAL_NCC, LOCAL_NCC_FRACTION * ncc)
        # local_ncc sampled at the box's full-resolution pixels (0 outside its grid)
        grid = (to_local @ translation(bx0, by0))[:2]
        agree = cv2.warpAffine(local_ncc, grid, (bw, bh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0) > thr
        valid_box &= agree
    del local_ncc
    valid = np.zeros(shape, bool)
    valid[brows, bcols] = valid_box
    coverage = float(np.count_nonzero(valid_box)) / max(int(np.count_nonzero(bskin)), 1)
    checks.update(residual_iod=round(residual / iod, 4), ncc_peak_drop=round(drop, 4),
                  skin_coverage=round(coverage, 4))

    pose = _pose_reason(bface, fface)
    if pose:
        reasons.insert(0, pose)
    if residual > MAX_RESIDUAL_IOD * iod:
        reasons.append(f"landmarks do not fit one transform (residual {residual:.1f} px): "
                       "pose or expression differs from the baseline; retake")
    if coverage < MIN_COVERAGE:
        reasons.append(f"only {coverage:.0%} of the baseline skin is visible and matches in the "
                       "follow-up: remove what covers the face, keep the whole face in frame and "
                       "the same expression")
    if method != "landmarks" and (ncc < MIN_NCC or drop < MIN_NCC_PEAK):
        reasons.append(f"skin texture does not confirm the alignment (NCC {ncc:.2f}): "
                       "too little skin detail, blur or too different lighting")

    lf, warped = None, None  # warped: made on first access (Alignment.warped)
    if local and valid.sum() >= 100:
        warped = warp_image(fol, matrix, shape)
        lf = local_flow(base, warped, valid)
        if lf.median_px > MAX_LOCAL_FLOW_IOD * iod:
            checks["local_flow_note"] = "expression differs: local correction is large"
    matrix = _normalise(matrix)
    return Alignment(matrix=matrix, warped=warped, valid=valid, residual_px=residual,
                     ncc=ncc, ok=not reasons, reason="; ".join(reasons), method=method,
                     seconds=time.perf_counter() - t0, landmark_matrix=m_landmarks,
                     checks=checks, local_flow=lf, followup=fol)


# ---------------------------------------------------------------------- overlay

def write_overlay(baseline_rgb: np.ndarray, alignment: Alignment, tiles: int = 8) -> np.ndarray:
    """A picture of the alignment quality, RGB uint8, for a person to judge.

    Left: checkerboard of baseline and aligned follow-up (edges of a bad
    alignment break at tile borders).  Right: baseline luminance in red and
    follow-up luminance in cyan (grey where they agree, coloured fringes where
    they do not).  Both cropped to the face; pixels outside ``valid`` dimmed.
    """
    warped = alignment.warped
    valid = alignment.valid
    if valid.any():
        x, y, w, h = cv2.boundingRect(valid.astype(np.uint8))
        pad = int(0.05 * max(w, h))
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(valid.shape[1], x + w + pad), min(valid.shape[0], y + h + pad)
    else:
        y0, x0, (y1, x1) = 0, 0, valid.shape
    b = baseline_rgb[y0:y1, x0:x1]
    f = warped[y0:y1, x0:x1]
    v = valid[y0:y1, x0:x1]
    hh, ww = v.shape
    step = max(8, max(hh, ww) // tiles)
    yy, xx = np.mgrid[0:hh, 0:ww]
    board = ((yy // step + xx // step) % 2).astype(bool)
    check = np.where(board[..., None], f, b)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    gf = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
    gf = np.clip(gf.astype(np.float32) * (np.median(gb[v]) / max(np.median(gf[v]), 1.0) if v.any() else 1.0),
                 0, 255).astype(np.uint8)
    diff = np.dstack([gb, gf, gf])
    out = []
    for img in (check, diff):
        img = img.astype(np.float32)
        img[~v] *= 0.45
        out.append(img.astype(np.uint8))
    gap = np.full((hh, max(4, ww // 100), 3), 255, np.uint8)
    panel = np.hstack([out[0], gap, out[1]])
    colour = (0, 160, 0) if alignment.ok else (200, 0, 0)
    label = f"{'OK' if alignment.ok else 'NOT OK'}  ncc {alignment.ncc:.2f}  residual {alignment.residual_px:.1f}px"
    scale = max(0.5, hh / 900)
    cv2.putText(panel, label, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                max(1, int(2 * scale)), cv2.LINE_AA)
    return panel
