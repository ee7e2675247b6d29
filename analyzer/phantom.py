"""Skin phantom: synthetic faces with known skin and known capture variance.

Real before/after photos with measured truth do not exist for us, so every
metric and the alignment are validated on faces whose changes we injected.
The base face is scikit-image's astronaut portrait (NASA, public domain),
shipped inside scikit-image, cropped and enlarged; fine skin texture (pores
and roughness) is added because the enlarged photo has none at that scale.
Physical scale follows the assumption used everywhere in the package:
inter-ocular (iris-to-iris) distance = 63 mm.
"""
from __future__ import annotations

import cv2
import numpy as np

# Crop of skimage.data.astronaut() holding the head: (y0, y1, x0, x1).
ASTRONAUT_HEAD = (20, 240, 120, 330)


def smooth_noise(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float32)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), max(sigma_px, 0.3))
    return out / (out.std() + 1e-8)


def feather(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Soft version (0..1 float32) of a boolean mask."""
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(sigma_px, 0.5)), 0, 1)


def base_face(scale: float = 4.0, seed: int = 0) -> np.ndarray:
    """The phantom's base face: the astronaut head enlarged ``scale`` times, with skin texture.

    Parameters
    ----------
    scale : float
        Enlargement of the 210×220 px crop (4 gives a face about 365 px wide,
        8 about 730 px).
    seed : int
        Seed of the skin texture.

    Returns
    -------
    ndarray, RGB uint8
    """
    from skimage import data

    from .face import get_landmarker
    from .regions import SKIN_OUTLINE, feature_exclusion, polygon_mask

    y0, y1, x0, x1 = ASTRONAUT_HEAD
    head = data.astronaut()[y0:y1, x0:x1]
    big = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_LANCZOS4)
    face = get_landmarker().detect(big)
    shape = big.shape[:2]
    px_per_mm = face.interocular_px / 63.0
    skin = polygon_mask(face.points, SKIN_OUTLINE, shape)
    skin &= ~feature_exclusion(face.points, shape, 0.02 * face.interocular_px)
    weight = feather(skin, 2.0 * px_per_mm)
    rng = np.random.default_rng(seed)
    # Roughness: relative luminance modulation at ~0.15 mm and ~0.5 mm.
    rough = 0.020 * smooth_noise(shape, 0.15 * px_per_mm, rng) + 0.015 * smooth_noise(
        shape, 0.5 * px_per_mm, rng)
    # Pores: small dark dots, about 20 per cm², 0.12 mm radius.
    pores = np.zeros(shape, np.float32)
    area_cm2 = skin.sum() / (px_per_mm * 10) ** 2
    ys, xs = np.nonzero(skin)
    pick = rng.choice(len(ys), size=int(20 * area_cm2), replace=False)
    pores[ys[pick], xs[pick]] = 1.0
    pores = cv2.GaussianBlur(pores, (0, 0), 0.12 * px_per_mm)
    pores = pores / (pores.max() + 1e-8)
    modulation = 1.0 + weight * (rough - 0.12 * pores)
    out = big.astype(np.float32) * modulation[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
