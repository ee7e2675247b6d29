"""Face landmarks (MediaPipe Face Landmarker, 478 points) and head pose.

The model file ``face_landmarker.task`` (Google, Apache-2.0) is vendored in
``analyzer/models`` and checked against its SHA-256 before use; nothing is
downloaded at run time.  A different file can be given by path
(``Settings.model_path``); its checksum is then not enforced.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import FaceNotFoundError, ModelError

MODEL_PATH = Path(__file__).with_name("models") / "face_landmarker.task"
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
N_LANDMARKS = 478
# Photos are shown to MediaPipe at most this large (long side, px).
DETECT_MAX_SIDE = 2000
# Assumed adult iris-to-iris distance: the package's pixels -> millimetres scale.
INTEROCULAR_MM = 63.0
# Landmark indices used across the package (MediaPipe canonical face mesh).
RIGHT_IRIS_CENTRE = 468  # subject's right eye = image left in a frontal photo
LEFT_IRIS_CENTRE = 473
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


@dataclass(frozen=True)
class FaceLandmarks:
    """Landmarks of one face.

    Attributes
    ----------
    points : ndarray, shape (478, 2), float32
        ``(x, y)`` pixel coordinates in the analysed image.
    depth : ndarray, shape (478,)
        MediaPipe's relative depth (same scale as x), smaller = nearer.
    pose : dict
        ``yaw``, ``pitch``, ``roll`` in degrees (0 = frontal; roll > 0 means the
        head is tilted counter-clockwise as seen in the image).
    faces_found : int
        How many faces the detector saw (the largest is returned).
    """

    points: np.ndarray
    depth: np.ndarray
    pose: dict = field(default_factory=dict)
    faces_found: int = 1

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Bounding box ``(x, y, width, height)`` of the landmarks in pixels."""
        lo = np.floor(self.points.min(axis=0)).astype(int)
        hi = np.ceil(self.points.max(axis=0)).astype(int)
        return int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])

    @property
    def interocular_px(self) -> float:
        """Distance between the iris centres in pixels."""
        return float(np.linalg.norm(self.points[LEFT_IRIS_CENTRE] - self.points[RIGHT_IRIS_CENTRE]))


class Landmarker:
    """A loaded Face Landmarker; thread-safe ``detect`` (one call at a time)."""

    def __init__(self, model_path: Path | None = None, max_faces: int = 4):
        path = Path(model_path) if model_path else MODEL_PATH
        if not path.is_file():
            raise ModelError(f"face landmark model not found at {path}")
        blob = path.read_bytes()
        if model_path is None and hashlib.sha256(blob).hexdigest() != MODEL_SHA256:
            raise ModelError(f"face landmark model at {path} does not match its SHA-256; reinstall")
        from mediapipe.tasks.python import BaseOptions, vision

        self._options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=blob),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=0.5,
            min_face_presence_confidence=0.5,
            output_facial_transformation_matrixes=True,
        )
        self._impl = None
        self._lock = threading.Lock()
        with _quiet_stderr():  # the first detection logs too
            self.detect_all(np.full((64, 64, 3), 128, np.uint8))  # load and warm up

    def close(self) -> None:
        """Release the native MediaPipe task; the next detection loads it again."""
        with self._lock:
            if self._impl is not None:
                self._impl.close()
                self._impl = None

    def detect_all(self, rgb: np.ndarray):
        """Raw MediaPipe result for an RGB ``uint8`` image (may hold no face)."""
        import mediapipe as mp
        from mediapipe.tasks.python import vision

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock:
            if self._impl is None:
                with _quiet_stderr():  # MediaPipe's C++ start-up chatter goes to fd 2
                    self._impl = vision.FaceLandmarker.create_from_options(self._options)
            return self._impl.detect(image)

    def detect(self, rgb: np.ndarray) -> FaceLandmarks:
        """Find the largest face in an RGB ``uint8`` image.

        Raises
        ------
        FaceNotFoundError
            When no face is found.
        """
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("detect expects an RGB uint8 image of shape (H, W, 3)")
        h, w = rgb.shape[:2]
        f = DETECT_MAX_SIDE / max(h, w)
        # MediaPipe reads the face from a 256 px crop: a large photo only costs time
        # (landmarks come back normalised to the image, so they map back to full size)
        small = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else rgb
        result = self.detect_all(small)
        if not result.face_landmarks:
            raise FaceNotFoundError(
                "no face found; take a frontal photo with the whole face in frame and well lit"
            )
        faces = []
        for i, lms in enumerate(result.face_landmarks):
            arr = np.array([(p.x * w, p.y * h, p.z * w) for p in lms], dtype=np.float32)
            span = arr[:, :2].max(axis=0) - arr[:, :2].min(axis=0)
            faces.append((float(span[0] * span[1]), i, arr))
        _, index, arr = max(faces, key=lambda f: f[0])
        matrices = result.facial_transformation_matrixes
        pose = head_pose(np.asarray(matrices[index])) if matrices else {}
        return FaceLandmarks(
            points=np.ascontiguousarray(arr[:, :2]),
            depth=arr[:, 2].copy(),
            pose=pose,
            faces_found=len(faces),
        )


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (native code logging) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_LOADED: dict[Path | None, Landmarker] = {}   # the process's loaded models, by path
_LOADING = threading.Lock()


def get_landmarker(model_path: Path | None = None) -> Landmarker:
    """Load a :class:`Landmarker` once per model path (loading takes ~0.1 s)."""
    with _LOADING:
        if model_path not in _LOADED:
            _LOADED[model_path] = Landmarker(model_path)
        return _LOADED[model_path]


def close_landmarkers() -> None:
    """Release every loaded :class:`Landmarker` (each reloads on its next detection).

    The CLI calls this before it returns: left to MediaPipe's ``__del__``,
    the native task is closed during interpreter shutdown, after MediaPipe's
    own dispatcher is gone, which now and then printed "Exception ignored
    ... TypeError" after a command.
    """
    with _LOADING:
        for landmarker in _LOADED.values():
            landmarker.close()


def head_pose(matrix: np.ndarray) -> dict:
    """Yaw, pitch and roll in degrees from MediaPipe's 4×4 face transform.

    The matrix maps the canonical face model into camera space; its rotation
    is decomposed as R = Rz(roll) · Ry(yaw) · Rx(pitch).
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    scale = np.cbrt(abs(np.linalg.det(r))) or 1.0
    r = r / scale
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return {"yaw": float(yaw), "pitch": float(pitch), "roll": float(roll)}
