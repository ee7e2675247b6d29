"""Per-pixel maps of what the three summary indices measure.

Each map is the quantity its summary averages, so a heatmap shows where a
summary's value comes from, and the difference of two visits' maps shows
where it changed:

- ``redness``: hemoglobin density (OD); ``redness_index`` is its mean.
- ``pigmentation``: melanin excess above 0.02 OD over the 2 mm local skin
  background (OD); ``pigmentation_index`` is its mean (in mOD).
- ``texture``: local RMS (Gaussian window σ = 1.5 mm) of the 0.5–1.5 mm band of
  the texture density (OD); ``texture_index`` is the RMS of that band (in mOD).
"""
from __future__ import annotations

import numpy as np

from .image import SkinImage, masked_smooth
from .pigmentation import burden_map
from .texture import EDGE_MARGIN_MM, TEXTURE_INDEX_BAND_MM

TEXTURE_WINDOW_MM = 1.5   # σ of the window the texture map's local RMS is taken over

MAP_UNITS = {"redness": "OD", "pigmentation": "OD", "texture": "OD"}
MAP_LABELS = {"redness": "hemoglobin density",
              "pigmentation": "melanin excess over the 2 mm skin background",
              "texture": "local RMS of the 0.5–1.5 mm texture band"}


def summary_maps(img: SkinImage) -> dict[str, np.ndarray]:
    """The maps behind the summaries of ``img`` (float32, its pixels; see the module).

    Returns
    -------
    dict
        ``redness``, ``pigmentation``, ``texture`` → (H, W) float32 maps in OD,
        and ``skin`` → (H, W) bool: where every map is defined (skin 2 mm
        inside its edge, as the texture index uses).
    """
    skin = img.inner(EDGE_MARGIN_MM)
    band = img.bandpass_denoised(*TEXTURE_INDEX_BAND_MM)
    texture = np.sqrt(np.maximum(masked_smooth(band * band, skin, img.px(TEXTURE_WINDOW_MM)), 0))
    return {"redness": img.hemoglobin, "pigmentation": burden_map(img)[0],
            "texture": texture.astype(np.float32), "skin": skin}
