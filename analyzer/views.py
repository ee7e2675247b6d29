"""Pictures the dashboard shows: the aligned pair, change heatmaps, region tints.

The dashboard holds no image maths: everything it draws is computed here,
from stored photos and stored comparison results (the follow-up → baseline
matrix and each photo's colour correction), so nothing is re-measured.

Maps show what the summaries measure (``analyzer.metrics.maps``): hemoglobin
density (redness), melanin excess over the local skin background
(pigmentation) and the local RMS of the texture band (texture).  A photo's
maps are coloured with fixed limits (``MAP_LIMITS``); change maps are drawn
in the baseline frame on skin seen in both photos, follow-up minus baseline
of each map smoothed over 1.5 mm, with fixed limits (``CHANGE_LIMITS``), so a
colour means the same value on every photo and pair: blue = less, red = more.
Both are drawn at the metrics' working scale (4 px/mm of face).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from . import colour
from .align import warp_image
from .config import Settings
from .face import FaceLandmarks, get_landmarker
from .intake import encode_jpeg, encode_png, load_photo
from .metrics import WORK_PX_PER_MM, corrected_skin_image
from .metrics.image import SkinImage, masked_smooth
from .metrics.maps import MAP_LABELS, MAP_UNITS, summary_maps
from .metrics.pigmentation import share_burden_slope
from .regions import REGION_COLOURS, RegionMasks, build_regions

# Colour limits of a photo's maps, and symmetric ones of the change maps (follow-up − baseline).
MAP_LIMITS = {"redness": (0.0, 0.8), "pigmentation": (0.0, 0.15), "texture": (0.0, 0.05)}
CHANGE_LIMITS = {"redness": 0.25, "pigmentation": 0.05, "texture": 0.01}
CHANGE_UNITS = MAP_UNITS
SMOOTH_MM = 1.5


@dataclass
class FaceView:
    """A decoded stored photo with its landmarks and region masks."""

    rgb: np.ndarray
    face: FaceLandmarks
    regions: RegionMasks


def decode(data: bytes, settings: Settings | None = None) -> np.ndarray:
    """RGB uint8 pixels of a stored photo."""
    return load_photo(data, settings or Settings()).pixels


def face_view(data: bytes, settings: Settings | None = None) -> FaceView:
    """Decode a stored photo and find its face and regions (no metrics)."""
    settings = settings or Settings()
    rgb = decode(data, settings)
    face = get_landmarker(settings.model_path).detect(rgb)
    return FaceView(rgb, face, build_regions(rgb, face))


def face_crop_box(mask: np.ndarray, pad: float = 0.08) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` around a mask with ``pad`` × its size of margin."""
    if not mask.any():
        return 0, 0, mask.shape[1], mask.shape[0]
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    p = int(pad * max(w, h))
    return (max(0, x - p), max(0, y - p), min(mask.shape[1], x + w + p),
            min(mask.shape[0], y + h + p))


def crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])


def aligned_pair(baseline: FaceView, followup_rgb: np.ndarray, matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Baseline and follow-up (resampled into the baseline frame with the stored
    follow-up → baseline ``matrix``), both cropped to the face, and the crop's
    mask of skin present in both."""
    warped = warp_image(followup_rgb, np.asarray(matrix, np.float64), baseline.rgb.shape)
    covered = warp_image(np.full(followup_rgb.shape, 255, np.uint8),
                         np.asarray(matrix, np.float64), baseline.rgb.shape)[..., 0] > 128
    skin = baseline.regions["whole_face"] & covered
    box = face_crop_box(baseline.regions["whole_face"])
    return crop(baseline.rgb, box), crop(warped, box), skin[box[1]:box[3], box[0]:box[2]]


def photo_maps(img: SkinImage) -> dict[str, np.ndarray]:
    """Heatmaps (RGB uint8, over the photo's work-frame crop ``img.srgb``) of the
    maps behind its summaries, coloured with the fixed :data:`MAP_LIMITS`."""
    maps = summary_maps(img)
    shown = {"redness": maps["skin"], "texture": maps["skin"],
             "pigmentation": maps["skin"] & (maps["pigmentation"] > 0)}  # spots only: the rest is 0
    return {key: colour.heatmap(img.srgb, maps[key], shown[key], *MAP_LIMITS[key])
            for key in MAP_LIMITS}


def _at_work_scale(pixels: np.ndarray, px_per_mm: float) -> np.ndarray:
    """An image (or bool mask) area-averaged down to the metrics' 4 px/mm; a smaller
    one is drawn as it is (enlarging would only make the picture bigger)."""
    f = WORK_PX_PER_MM / px_per_mm
    if f >= 1:
        return pixels
    size = (max(1, round(pixels.shape[1] * f)), max(1, round(pixels.shape[0] * f)))
    if pixels.dtype == bool:
        return cv2.resize(pixels.astype(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_AREA) >= 128
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _work_skin_image(rgb: np.ndarray, skin: np.ndarray, summary: dict) -> SkinImage:
    """A SkinImage of an sRGB face crop at work scale, with the photo's stored colour
    correction (``summary["colour"]["matrix"]``) and scale (``summary["px_per_mm"]``)."""
    px_per_mm = float(summary.get("px_per_mm") or WORK_PX_PER_MM)
    matrix = (summary.get("colour") or {}).get("matrix")
    m = np.eye(3, dtype=np.float32) if matrix is None else np.asarray(matrix, np.float32)
    return corrected_skin_image(rgb, partial(_at_work_scale, px_per_mm=px_per_mm),
                                colour.ColourCorrection(m, "stored", calibrated=False),
                                min(px_per_mm, WORK_PX_PER_MM), _at_work_scale(skin, px_per_mm))


def stored_skin_image(view: FaceView, summary: dict) -> SkinImage:
    """A stored photo's face crop at work scale, with the colour correction and scale of
    its stored analysis ``summary`` (nothing is re-measured)."""
    box = face_crop_box(view.regions["whole_face"])
    return _work_skin_image(crop(view.rgb, box), crop(view.regions["whole_face"], box), summary)


def stored_photo_maps(view: FaceView, summary: dict) -> dict[str, np.ndarray]:
    """:func:`photo_maps` of a stored photo (see :func:`stored_skin_image`)."""
    return photo_maps(stored_skin_image(view, summary))


def change_values(baseline_rgb: np.ndarray, followup_rgb: np.ndarray, skin: np.ndarray,
                  comparison: dict, px_per_mm: float | None = None) -> dict[str, np.ndarray]:
    """Follow-up minus baseline of each summary map, smoothed by 1.5 mm, at work scale.

    Parameters
    ----------
    baseline_rgb, followup_rgb : ndarray (H, W, 3) uint8
        From :func:`aligned_pair`.
    skin : ndarray (H, W) bool
        Skin present in both.
    comparison : dict
        The stored comparison result; its ``baseline`` / ``followup`` summaries
        give each photo's colour correction (the follow-up's on the baseline's
        footing) and the scale.

    Returns
    -------
    dict
        ``redness``, ``pigmentation``, ``texture`` → float32 change (OD);
        ``baseline`` → the baseline crop and ``skin`` → the common skin, both at
        the same (work) scale.
    """
    bsum = (comparison.get("baseline") or {}).get("summary") or {}
    fsum = (comparison.get("followup") or {}).get("summary") or {}
    px_per_mm = float(px_per_mm or bsum.get("px_per_mm") or WORK_PX_PER_MM)
    img_b = _work_skin_image(baseline_rgb, skin, {**bsum, "px_per_mm": px_per_mm})
    img_f = _work_skin_image(followup_rgb, skin, {**fsum, "px_per_mm": px_per_mm})  # in the baseline frame
    share_burden_slope(img_b, img_f, np.eye(3))  # as compare measures them (one frame here)
    maps_b, maps_f = summary_maps(img_b), summary_maps(img_f)
    common = maps_b["skin"] & maps_f["skin"]
    sigma = img_b.px(SMOOTH_MM)
    out = {key: masked_smooth(maps_f[key], common, sigma) - masked_smooth(maps_b[key], common, sigma)
           for key in CHANGE_LIMITS}
    return {**out, "baseline": img_b.srgb, "skin": common}


def change_maps(baseline_rgb: np.ndarray, followup_rgb: np.ndarray, skin: np.ndarray,
                comparison: dict, px_per_mm: float | None = None) -> dict[str, np.ndarray]:
    """Heatmaps (RGB uint8, over the baseline at work scale) of :func:`change_values`,
    coloured with the fixed :data:`CHANGE_LIMITS`."""
    values = change_values(baseline_rgb, followup_rgb, skin, comparison, px_per_mm)
    return {key: colour.heatmap(values["baseline"], values[key], values["skin"], -limit, limit, alpha=0.6)
            for key, limit in CHANGE_LIMITS.items()}


def region_tint(rgb: np.ndarray, regions: RegionMasks, name: str, alpha: float = 0.45) -> np.ndarray:
    """The photo with one region tinted in its colour and the rest dimmed."""
    out = rgb.astype(np.float32)
    mask = regions.masks.get(name)
    if mask is None:
        return rgb
    out[~mask] *= 0.55
    col = np.array(REGION_COLOURS.get(name, (255, 255, 255)), np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * col
    return np.clip(out, 0, 255).astype(np.uint8)


def legend(width: int = 360, height: int = 18) -> np.ndarray:
    """The change-map colour bar (left: less, middle: no change, right: more)."""
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8), (height, 1))
    return cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)[..., ::-1].copy()


def thumbnail(rgb: np.ndarray, max_side: int = 900) -> np.ndarray:
    """Downscaled copy (area interpolation) with the longer side at most ``max_side``."""
    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)


def data_uri(rgb: np.ndarray, fmt: str = "jpeg") -> str:
    """``data:image/...;base64,...`` of an RGB image (for HTML components)."""
    data = encode_jpeg(rgb, 88) if fmt == "jpeg" else encode_png(rgb)
    return f"data:image/{fmt};base64,{base64.b64encode(data).decode('ascii')}"


def before_after_html(before_uri: str, after_uri: str, *, before_label: str = "before",
                      after_label: str = "after", height: int = 520, start: int = 50) -> str:
    """Self-contained HTML/CSS/JS before-after slider (no network)."""
    def esc(s: str) -> str:
        return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace('"', "&quot;"))
    return f"""<!doctype html><html><head><style>
html,body{{margin:0;background:transparent;font-family:sans-serif}}
.ba{{position:relative;height:{height}px;overflow:hidden;user-select:none;background:#111}}
.ba img{{position:absolute;top:0;left:0;width:100%;height:100%;object-fit:contain}}
.ba .top{{clip-path:inset(0 {100 - start}% 0 0)}}
.ba .bar{{position:absolute;top:0;bottom:0;left:{start}%;width:3px;background:#fff;
  box-shadow:0 0 4px #000;pointer-events:none}}
.ba .lab{{position:absolute;top:8px;padding:2px 8px;background:rgba(0,0,0,.55);color:#fff;
  font-size:13px;border-radius:4px}}
.ba input{{position:absolute;bottom:8px;left:5%;width:90%;margin:0}}
</style></head><body>
<div class="ba" id="ba" data-testid="before-after-slider">
 <img class="bottom" alt="{esc(after_label)}" src="{after_uri}">
 <img class="top" id="top" alt="{esc(before_label)}" src="{before_uri}">
 <div class="bar" id="bar"></div>
 <span class="lab" style="left:8px">{esc(before_label)}</span>
 <span class="lab" style="right:8px">{esc(after_label)}</span>
 <input type="range" min="0" max="100" value="{start}" id="pos" aria-label="before/after position">
</div>
<script>
const pos=document.getElementById('pos'),top=document.getElementById('top'),bar=document.getElementById('bar');
function set(v){{top.style.clipPath='inset(0 '+(100-v)+'% 0 0)';bar.style.left=v+'%';}}
pos.addEventListener('input',e=>set(e.target.value));
const box=document.getElementById('ba');
function drag(e){{if(e.buttons!==1&&e.type!=='click')return;const r=box.getBoundingClientRect();
 const v=Math.max(0,Math.min(100,100*(e.clientX-r.left)/r.width));pos.value=v;set(v);}}
box.addEventListener('mousemove',drag);box.addEventListener('click',drag);
</script></body></html>"""


def alignment_overlay(baseline: FaceView, followup_rgb: np.ndarray, comparison: dict) -> np.ndarray:
    """:func:`analyzer.align.write_overlay` of a stored comparison (checkerboard
    and red/cyan difference), rebuilt from the stored matrix without re-aligning."""
    from .align import Alignment, write_overlay

    al = comparison.get("alignment") or {}
    matrix = np.asarray(al["matrix"], np.float64)
    warped = warp_image(followup_rgb, matrix, baseline.rgb.shape)
    covered = warp_image(np.full(followup_rgb.shape, 255, np.uint8), matrix,
                         baseline.rgb.shape)[..., 0] > 128
    alignment = Alignment(matrix=matrix, warped=warped,
                          valid=baseline.regions["whole_face"] & covered,
                          residual_px=float(al.get("residual_px") or 0.0),
                          ncc=float(al.get("ncc") or 0.0), ok=bool(al.get("ok")),
                          reason=str(al.get("reason") or ""), method=str(al.get("method") or ""),
                          seconds=0.0)
    return write_overlay(baseline.rgb, alignment)
