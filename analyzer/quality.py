"""Capture-quality report: is this photo good enough to measure skin on?

Each check gives a value, a status (``pass`` / ``warn`` / ``fail``) and advice
a person can act on.  Thresholds are module constants, recorded with results.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .face import FaceLandmarks
from .regions import SKIN_OUTLINE, RegionMasks, _hist_median, grid_sample, polygon_mask

# (warn, fail) thresholds.
FACE_WIDTH_PX = (500, 250)          # landmark box width; below = warn / fail
POSE_DEG = (12.0, 25.0)             # |yaw|, |pitch|, |roll| (MediaPipe pitch reads ~9° on a level face)
BLUR_SHARPNESS = (0.35, 0.15)       # relative high-frequency energy, below = warn / fail
CLIPPED_FRACTION = (0.02, 0.10)     # share of skin pixels clipped
SKIN_LUMA = (60.0, 35.0)            # median skin luma (0-255) below = warn / fail
COLOUR_CAST = (0.06, 0.15)          # chromaticity distance of the background from grey
REGION_VISIBLE = (0.75, 0.45)       # share of a region's polygon that is skin
THRESHOLDS = {
    "face_width_px": FACE_WIDTH_PX, "pose_deg": POSE_DEG, "sharpness": BLUR_SHARPNESS,
    "clipped_fraction": CLIPPED_FRACTION, "skin_luma": SKIN_LUMA,
    "colour_cast": COLOUR_CAST, "region_visible": REGION_VISIBLE,
}


@dataclass(frozen=True)
class QualityItem:
    """One check: ``status`` is ``pass``, ``warn`` or ``fail``."""

    name: str
    value: float
    unit: str
    status: str
    advice: str

    def to_dict(self) -> dict:
        return asdict(self)


def _grade_low(value: float, limits: tuple[float, float]) -> str:
    """Status for a value where *lower* is worse."""
    warn, fail = limits
    return "fail" if value < fail else "warn" if value < warn else "pass"


def _grade_high(value: float, limits: tuple[float, float]) -> str:
    """Status for a value where *higher* is worse."""
    warn, fail = limits
    return "fail" if value > fail else "warn" if value > warn else "pass"


def sharpness(rgb: np.ndarray, skin: np.ndarray, interocular_px: float) -> float:
    """Fine-detail energy on skin relative to a sharp reference, scale-free.

    The image is resampled so that the inter-ocular distance is 256 px, then
    the ratio of Laplacian energy (fine scale, σ≈0.6 px) to band-pass energy
    at a 4× coarser scale is taken on skin.  Blur removes the fine band first,
    so the ratio falls with blur whatever the camera distance.
    """
    return _sharpness(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), skin, interocular_px)


def _sharpness(grey: np.ndarray, skin: np.ndarray, interocular_px: float) -> float:
    """:func:`sharpness` of the ``uint8`` grey image ``grey``."""
    factor = 256.0 / max(interocular_px, 1.0)
    sel = skin.view(np.uint8) if skin.dtype == bool else (skin != 0).view(np.uint8)
    x, y, w, h = cv2.boundingRect(sel)
    if w:  # only the skin's bounding box (grown by a margin) is needed
        pad = int(np.ceil(16.0 / factor))
        x0, y0 = max(x - pad, 0), max(y - pad, 0)
        x1, y1 = min(x + w + pad, sel.shape[1]), min(y + h + pad, sel.shape[0])
        grey, sel = grey[y0:y1, x0:x1], sel[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    small = cv2.resize(grey.astype(np.float32), None, fx=factor, fy=factor, interpolation=interp)
    mask = cv2.resize(sel, small.shape[::-1], interpolation=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    if np.count_nonzero(mask) < 100:
        return 0.0
    fine = small - cv2.GaussianBlur(small, (0, 0), 1.0)
    coarse = cv2.GaussianBlur(small, (0, 0), 1.0) - cv2.GaussianBlur(small, (0, 0), 4.0)
    return float(np.std(fine[mask]) / (np.std(coarse[mask]) + 1e-6))


def colour_cast(rgb: np.ndarray, face_points: np.ndarray) -> float:
    """Shades-of-grey (p=6) illuminant estimate on the background, distance from grey.

    The background is the image minus the face outline (grown by 31 px at a
    working size of about 1000 px: an estimate needs no 12 MP).  Returns the
    Euclidean distance of the estimated illuminant's rg chromaticity from
    neutral (1/3, 1/3); 0 means no cast.

    The mean of ``(v / 255) ** 6`` over 8-bit values is taken from each
    channel's histogram (``cv2.calcHist`` with the background as mask), the
    same number as the per-pixel mean without a float image.
    """
    step = max(1, int(round(max(rgb.shape[:2]) / 1000)))
    small = grid_sample(rgb, step)
    face = polygon_mask(face_points / step, SKIN_OUTLINE, small.shape[:2])
    background = cv2.dilate(face.view(np.uint8), np.ones((31, 31), np.uint8)) == 0
    sel = background.view(np.uint8)
    if cv2.countNonZero(sel) < 100:
        sel = None
    hists = np.stack([cv2.calcHist([small], [c], sel, [256], [0, 256]).ravel() for c in range(3)])
    hists = hists.astype(np.float64)
    power = (np.arange(256) / 255.0) ** 6.0
    illum = np.power(hists @ power / hists.sum(axis=1), 1 / 6.0)
    chroma = illum / max(illum.sum(), 1e-9)
    return float(np.hypot(chroma[0] - 1 / 3, chroma[1] - 1 / 3))


# a pixel is clipped when any channel is >= 250 or all are <= 5: its max channel decides
_CLIP_HIGH, _CLIP_LOW = 250, 5


def assess(rgb: np.ndarray, face: FaceLandmarks, regions: RegionMasks) -> list[QualityItem]:
    """Run every capture-quality check on one photo.

    Pixel checks run on the regions' face box (every mask is False outside
    it) with OpenCV counts and histograms; nothing is converted to float or
    gathered at full resolution.
    """
    items: list[QualityItem] = []
    rows, cols = regions.box
    box_rgb = rgb[rows, cols]
    skin = regions.crop("whole_face")
    width = face.box[2]
    items.append(QualityItem(
        "face_size", float(width), "px", _grade_low(width, FACE_WIDTH_PX),
        "move the camera closer or use a higher resolution: the face should be at least "
        f"{FACE_WIDTH_PX[0]} px wide" if width < FACE_WIDTH_PX[0] else "ok"))
    if face.faces_found > 1:
        items.append(QualityItem(
            "several_faces", float(face.faces_found), "faces", "warn",
            "more than one face in the photo; the largest was analysed — crop to the patient"))
    for axis in ("yaw", "pitch", "roll"):
        angle = float(face.pose.get(axis, 0.0))
        status = _grade_high(abs(angle), POSE_DEG)
        advice = {
            "yaw": "turn the head to face the camera straight on",
            "pitch": "keep the chin level (camera at eye height)",
            "roll": "keep the head upright (eyes level)",
        }[axis] if status != "pass" else "ok"
        items.append(QualityItem(f"head_{axis}", round(angle, 2), "degrees", status, advice))
    grey = cv2.cvtColor(box_rgb, cv2.COLOR_RGB2GRAY)
    sharp = _sharpness(grey, skin, face.interocular_px)
    items.append(QualityItem(
        "sharpness", round(sharp, 4), "ratio", _grade_low(sharp, BLUR_SHARPNESS),
        "the skin is blurred: hold the camera still, focus on the face, use more light"
        if sharp < BLUR_SHARPNESS[0] else "ok"))
    # Clipping is judged on the whole face outline: the skin mask itself drops highlights.
    outline = regions.candidate_crop()
    outline = (outline if outline is not None else skin).view(np.uint8)
    x, y, w, h = cv2.boundingRect(outline)  # the outline's own box: less to look at
    sel, px = outline[y:y + h, x:x + w], box_rgb[y:y + h, x:x + w]
    n_outline = cv2.countNonZero(sel)
    # not clipped: every channel <= 249 and not every channel <= 5
    exposed = cv2.inRange(px, (0, 0, 0), (_CLIP_HIGH - 1,) * 3)
    if cv2.countNonZero(cv2.inRange(grey[y:y + h, x:x + w], 0, _CLIP_LOW)):
        # grey <= 5 wherever every channel is: the 3-channel test only runs if needed
        exposed &= ~cv2.inRange(px, (0, 0, 0), (_CLIP_LOW,) * 3)
    n_ok = cv2.countNonZero(exposed & sel) if n_outline else 0
    clipped = (n_outline - n_ok) / n_outline if n_outline else 1.0
    items.append(QualityItem(
        "clipped_skin", round(clipped, 4), "fraction", _grade_high(clipped, CLIPPED_FRACTION),
        "parts of the skin are over- or under-exposed: lower the exposure or soften the light"
        if clipped > CLIPPED_FRACTION[0] else "ok"))
    # median luma (0.299 R + 0.587 G + 0.114 B) of the outline, from the histogram of
    # OpenCV's grey: within 0.5 of the median of float luma
    hist = cv2.calcHist([grey[y:y + h, x:x + w]], [0], sel, [256], [0, 256]).ravel()
    luma = _hist_median(hist.astype(np.int64)) if n_outline else 0.0
    items.append(QualityItem(
        "skin_brightness", round(luma, 1), "0-255", _grade_low(luma, SKIN_LUMA),
        "the photo is too dark: add light or raise the exposure" if luma < SKIN_LUMA[0] else "ok"))
    cast = colour_cast(rgb, face.points)
    items.append(QualityItem(
        "colour_cast", round(cast, 4), "rg distance", _grade_high(cast, COLOUR_CAST),
        "strong colour cast: use the clinic's usual neutral light or set white balance to daylight"
        if cast > COLOUR_CAST[0] else "ok"))
    for name, visible in regions.visible_fraction().items():
        status = _grade_low(visible, REGION_VISIBLE)
        if status != "pass":
            items.append(QualityItem(
                f"visible_{name}", round(visible, 3), "fraction", status,
                f"the {name.replace('_', ' ')} is partly covered (hair, glasses, hands) or out of "
                "frame: clear it and retake"))
    return items


def overall(items: list[QualityItem]) -> str:
    """Worst status of all items."""
    statuses = {i.status for i in items}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
