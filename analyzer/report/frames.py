"""Follow-up photos in the baseline frame, cropped to the face, and the time-lapse.

The transform of a follow-up comes from its stored comparison with the
baseline (``result["alignment"]["matrix"]``, follow-up pixel → baseline pixel);
only a pair that was never compared is aligned here (:func:`analyzer.align.align`,
about a second).  Nothing is measured.
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import AnalyzerError, ReportError

CROP_PAD = 0.18          # margin around the face box, share of its size
TIMELAPSE_SIDE = 512     # longest side of a time-lapse frame, px
FRAME_SECONDS = 0.9      # display time of one time-lapse frame


@dataclass
class Frame:
    """One visit's photo in the baseline frame, cropped to the face.

    Attributes
    ----------
    visit : VisitRecord
    photo_id : int
    day : int
        Days since the first visit of the course.
    image : ndarray (H, W, 3) uint8
        The crop (the same window of the baseline frame for every visit).
    aligned : bool
        The photo was warped into the baseline frame (False for the baseline
        itself, for ``aligned=False`` and when it could not be aligned).
    ok : bool or None
        The alignment's own trust check (None: not aligned).
    note : str
        Why it is not aligned or not trusted ("" otherwise).
    source : str
        ``baseline``, ``stored comparison``, ``aligned for this report`` or ``unaligned``.
    """

    visit: object
    photo_id: int
    day: int
    image: np.ndarray
    aligned: bool
    ok: bool | None
    note: str
    source: str


def face_box(result: dict | None, shape: tuple[int, int], pad: float = CROP_PAD
             ) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the stored face box grown by ``pad``, inside the image."""
    h, w = shape[:2]
    box = ((result or {}).get("face") or {}).get("box") or {}
    try:
        x, y, bw, bh = (float(box[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return 0, 0, w, h
    x0, y0 = max(0, int(x - pad * bw)), max(0, int(y - pad * bh))
    x1, y1 = min(w, int(np.ceil(x + bw * (1 + pad)))), min(h, int(np.ceil(y + bh * (1 + pad))))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0, 0, w, h
    return x0, y0, x1, y1


def stored_matrix(comparison: dict | None) -> tuple[np.ndarray | None, bool | None, str]:
    """``(matrix, ok, reason)`` of a stored comparison's alignment (matrix None if absent)."""
    al = ((comparison or {}).get("result") or {}).get("alignment") or {}
    m = al.get("matrix") or al.get("matrix_followup_to_baseline")
    if m is None:
        return None, None, ""
    m = np.asarray(m, np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        return None, None, ""
    return m, al.get("ok"), str(al.get("reason") or "")


def _decode(store, photo_id: int, actor, settings) -> np.ndarray:
    from ..intake import load_photo

    return load_photo(store.photo_bytes(photo_id, actor=actor), settings).pixels


def course_frames(store, course, view: str = "frontal", *, actor, aligned: bool = True,
                  settings=None) -> list[Frame]:
    """Every visit's analysed photo of ``view``, cropped to the baseline's face.

    Parameters
    ----------
    store : Store
    course : Course
        From :func:`analyzer.report.course.load_course`.
    view : str
    actor : Principal or str
        Passed to every store read.
    aligned : bool
        Warp each follow-up into the baseline frame (False: the same crop
        window of the raw follow-up, for comparison).
    settings : Settings, optional
        Decoding limits; default the store's.

    Returns
    -------
    list of Frame
        The baseline first; empty when no photo of ``view`` is analysed.
    """
    from ..align import warp_image

    settings = settings or store.settings
    series = course.series(view)
    if not series:
        return []
    (bvisit, bphoto), rest = series[0], series[1:]
    base = _decode(store, bphoto.id, actor, settings)
    x0, y0, x1, y1 = face_box(bphoto.latest_analysis.result, base.shape)
    shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
    out = [Frame(bvisit, bphoto.id, 0, np.ascontiguousarray(base[y0:y1, x0:x1]), False, None,
                 "", "baseline")]
    base_face = None
    for visit, photo in rest:
        fol = _decode(store, photo.id, actor, settings)
        day = course.day(visit)
        if not aligned:
            crop = _window(fol, x0, y0, x1, y1)
            out.append(Frame(visit, photo.id, day, crop, False, None, "not aligned", "unaligned"))
            continue
        matrix, ok, reason = stored_matrix(course.comparison(bphoto.id, photo.id))
        source = "stored comparison"
        if matrix is None:
            try:
                if base_face is None:
                    from ..face import get_landmarker

                    base_face = get_landmarker(settings.model_path).detect(base)
                from ..align import align

                al = align(base, fol, baseline_face=base_face)
                matrix, ok, reason = al.matrix, al.ok, al.reason
                source = "aligned for this report"
            except AnalyzerError as exc:  # e.g. no face found: shown unaligned, with why
                out.append(Frame(visit, photo.id, day, _window(fol, x0, y0, x1, y1), False, None,
                                 f"could not be aligned: {exc}", "unaligned"))
                continue
        crop = warp_image(fol, shift @ matrix, (y1 - y0, x1 - x0))
        out.append(Frame(visit, photo.id, day, crop, True, ok,
                         "" if ok or ok is None else reason, source))
    return out


def latest_change_maps(store, course, *, actor, settings=None) -> tuple | None:
    """Change heatmaps (:func:`analyzer.views.change_maps`) from the frontal baseline to
    the latest frontal visit with a stored, trusted comparison: ``(visit, maps)``, or
    ``None`` (no such comparison, or the baseline's face is not found again)."""
    from .. import views

    visit, comp = course.latest_comparison("frontal")
    result = (comp or {}).get("result") or {}
    if not (result.get("alignment") or {}).get("ok"):
        return None
    settings = settings or store.settings
    try:
        base = views.face_view(store.photo_bytes(comp["baseline_photo_id"], actor=actor), settings)
    except AnalyzerError:
        return None
    follow = _decode(store, comp["followup_photo_id"], actor, settings)
    before, after, skin = views.aligned_pair(base, follow, result["alignment"]["matrix"])
    return visit, views.change_maps(before, after, skin, result)


def _window(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``img[y0:y1, x0:x1]``, padded with black where it leaves the image."""
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    h, w = img.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def fit(img: np.ndarray, side: int) -> np.ndarray:
    """Downscale so the longest side is at most ``side`` px (never enlarges)."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA)


def frame_label(frame: Frame) -> str:
    """``2026-03-02 · day 0 · treatment`` (what is burnt into a time-lapse frame)."""
    bits = [frame.visit.visit_date.isoformat(), f"day {frame.day}"]
    if frame.visit.procedure:
        bits.append("treatment")
    if frame.source == "unaligned" and frame.day:
        bits.append("not aligned")
    return " · ".join(bits)


def burn_label(img: np.ndarray, text: str) -> np.ndarray:
    """The image with ``text`` on a dark band along its bottom (RGB uint8)."""
    from PIL import Image, ImageDraw, ImageFont

    pil = Image.fromarray(img)
    h, w = img.shape[:2]
    size = max(11, round(w / 26))
    font = ImageFont.load_default(size=size)
    band = round(size * 1.8)
    draw = ImageDraw.Draw(pil, "RGBA")
    draw.rectangle((0, h - band, w, h), fill=(0, 0, 0, 170))
    draw.text((round(size * 0.6), h - band + round((band - size) / 2) - 1), text,
              fill=(255, 255, 255, 255), font=font)
    return np.asarray(pil)


def timelapse_frames(store, course, *, actor, view: str = "frontal", aligned: bool = True,
                     side: int = TIMELAPSE_SIDE) -> list[np.ndarray]:
    """The time-lapse frames (RGB uint8, one per visit with an analysed photo,
    the visit date burnt in).

    Raises
    ------
    ReportError
        No analysed photo of ``view``.
    """
    frames = course_frames(store, course, view, actor=actor, aligned=aligned)
    if not frames:
        raise ReportError(f"patient {course.patient.code} has no analysed {view} photo: "
                          "add and analyse photos before making a time-lapse")
    return [burn_label(fit(f.image, side), frame_label(f)) for f in frames]


def encode_gif(frames: list[np.ndarray], seconds: float = FRAME_SECONDS) -> bytes:
    """An endlessly looping animated GIF, one frame per image (last one held longer)."""
    from PIL import Image

    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
              for f in frames]
    ms = max(20, round(seconds * 1000))
    durations = [ms] * len(images)
    durations[-1] = ms * 2
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=durations, optimize=False, disposal=1)
    return buf.getvalue()


def encode_mp4(frames: list[np.ndarray], seconds: float = FRAME_SECONDS) -> bytes:
    """An MP4 (OpenCV ``mp4v``) at 10 frames per second, each visit held ``seconds``.

    Raises
    ------
    ReportError
        When OpenCV's video writer cannot write MP4 here (use GIF).
    """
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    fps = 10
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise ReportError("MP4 video cannot be written on this system; use GIF")
        try:
            for f in frames:
                bgr = cv2.cvtColor(np.ascontiguousarray(f[:h, :w]), cv2.COLOR_RGB2BGR)
                for _ in range(max(1, round(seconds * fps))):
                    writer.write(bgr)
        finally:
            writer.release()
        data = open(path, "rb").read()
    finally:
        os.unlink(path)
    if len(data) < 100:
        raise ReportError("MP4 video cannot be written on this system; use GIF")
    return data
