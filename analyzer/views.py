"""Pictures the dashboard shows: the aligned pair, change heatmaps, region tints.

The dashboard holds no image maths: everything it draws is computed here,
from stored photos and stored comparison results (the follow-up → baseline
matrix and each photo's colour correction), so nothing is re-measured.

Change maps are drawn in the baseline frame on skin seen in both photos:
follow-up minus baseline of hemoglobin density (redness), melanin density
(pigmentation) and local band-pass energy of luminance density (texture, the
0.3–1 mm band of ``texture_index``), each smoothed over about 1.5 mm and
coloured with fixed limits (``CHANGE_LIMITS``) so a colour means the same
change on every pair: blue = less, red = more.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np

from . import colour
from .align import warp_image
from .config import Settings
from .face import FaceLandmarks, get_landmarker
from .intake import encode_jpeg, encode_png, load_photo
from .regions import REGION_COLOURS, RegionMasks, build_regions

# Symmetric colour limits of the change maps (follow-up − baseline).
CHANGE_LIMITS = {"redness": 0.12, "pigmentation": 0.10, "texture": 0.012}
CHANGE_UNITS = {"redness": "OD", "pigmentation": "OD", "texture": "OD"}
SMOOTH_MM = 1.5
TEXTURE_BAND_MM = (0.3, 1.0)
TEXTURE_WINDOW_MM = 3.0


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


def _linear(rgb: np.ndarray, colour_summary: dict | None) -> np.ndarray:
    lin = colour.srgb_to_linear(rgb)
    matrix = (colour_summary or {}).get("matrix")
    if matrix is None:
        return lin
    m = np.asarray(matrix, np.float32)
    return (lin.reshape(-1, 3) @ m.T).reshape(lin.shape)


def _smooth(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    w = mask.astype(np.float32)
    num = cv2.GaussianBlur(values * w, (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)
    return num / np.maximum(den, 1e-3)


def _texture_energy(lin: np.ndarray, mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    y = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    d = -np.log(np.clip(y, 1e-4, None)).astype(np.float32)
    lo, hi = (px_per_mm * mm / 2 for mm in TEXTURE_BAND_MM)
    band = cv2.GaussianBlur(d, (0, 0), max(lo, 0.3)) - cv2.GaussianBlur(d, (0, 0), hi)
    return np.sqrt(np.maximum(_smooth(band * band, mask, px_per_mm * TEXTURE_WINDOW_MM / 2), 0))


def change_maps(baseline_rgb: np.ndarray, followup_rgb: np.ndarray, skin: np.ndarray,
                comparison: dict, px_per_mm: float | None = None) -> dict[str, np.ndarray]:
    """Heatmaps (RGB uint8, over the baseline) of the change in redness,
    pigmentation and texture between two aligned, equally cropped photos.

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
    """
    bsum = (comparison.get("baseline") or {}).get("summary") or {}
    fsum = (comparison.get("followup") or {}).get("summary") or {}
    px_per_mm = float(px_per_mm or bsum.get("px_per_mm") or 4.0)
    lin_b = _linear(baseline_rgb, bsum.get("colour"))
    lin_f = _linear(followup_rgb, fsum.get("colour"))
    dens_b, dens_f = colour.chromophores(lin_b), colour.chromophores(lin_f)
    sigma = SMOOTH_MM * px_per_mm
    diffs = {
        "redness": _smooth(dens_f[..., 1], skin, sigma) - _smooth(dens_b[..., 1], skin, sigma),
        "pigmentation": _smooth(dens_f[..., 0], skin, sigma) - _smooth(dens_b[..., 0], skin, sigma),
        "texture": _texture_energy(lin_f, skin, px_per_mm) - _texture_energy(lin_b, skin, px_per_mm),
    }
    out = {}
    for key, diff in diffs.items():
        limit = CHANGE_LIMITS[key]
        out[key] = colour.heatmap(baseline_rgb, diff, skin, -limit, limit, alpha=0.6)
    return out


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
