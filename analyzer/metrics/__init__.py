"""Skin metrics: registry and the function that measures every metric on a photo."""
from __future__ import annotations

import numpy as np

from ..face import FaceLandmarks
from ..regions import RegionMasks


def measure_all(rgb: np.ndarray, regions: RegionMasks, face: FaceLandmarks):
    """Measure every registered metric.

    Returns
    -------
    metrics : list of dict
        One entry per (metric, region) with value, unit and direction.
    summary : dict
        ``texture``, ``redness``, ``pigmentation`` indices (``None`` until measured).
    warnings : list of str
    """
    return [], {"texture": None, "redness": None, "pigmentation": None}, []
