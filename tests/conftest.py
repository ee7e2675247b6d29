import os

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")


@pytest.fixture(scope="session")
def face_rgb() -> np.ndarray:
    """Phantom base face, about 365 px wide (RGB uint8)."""
    from analyzer.phantom import base_face

    return base_face(scale=4.0, seed=0)


@pytest.fixture(scope="session")
def landmarker():
    from analyzer.face import get_landmarker

    return get_landmarker()
