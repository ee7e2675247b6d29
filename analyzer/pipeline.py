"""The one path every shell shares: ``analyze(photo)`` and ``compare(a, b)``.

Results are plain dataclasses that serialise to JSON, carry the algorithm
version and the settings that produced them, and are what the CLI prints,
the store saves and the UI draws.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import quality as quality_mod
from .config import Settings
from .face import FaceLandmarks, get_landmarker
from .intake import CaptureInfo, Photo, load_photo
from .regions import RegionMasks, build_regions
from .version import ALGORITHM_VERSION


@dataclass
class Analysis:
    """Everything measured on one photo (JSON-serialisable via ``to_dict``)."""

    algorithm_version: str
    capture: dict
    face: dict
    quality: dict
    regions: dict
    summary: dict
    metrics: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AnalysedPhoto:
    """In-memory products of analysing one photo, for compare and the UI."""

    photo: Photo
    face: FaceLandmarks
    regions: RegionMasks
    result: Analysis
    # The colour correction the metrics used (analyzer.colour.ColourCorrection):
    # compare reuses it instead of detecting the colour checker again.
    correction: object | None = None
    # The photo's work frame and metric maps (analyzer.metrics.image.SkinImage):
    # compare measures on them again with the common-skin masks.
    skin_image: object | None = None
    # The chroma its JPEG holds over the colour window (analyzer.jpegchroma.ExactChroma)
    exact_chroma: object | None = None

    def exact(self):
        """:attr:`exact_chroma`, worked out on first use (``None`` unless the photo is a
        plain sRGB JPEG)."""
        if self.exact_chroma is None:
            self.exact_chroma = exact_chroma_of(self.photo, self.face)
        return self.exact_chroma


def exact_chroma_of(photo: Photo, face: FaceLandmarks):
    """The chroma ``photo``'s JPEG holds over the part its colour is read from (the
    face and the background around it), or ``None`` for a photo that is not a
    plain sRGB JPEG (:mod:`analyzer.jpegchroma`)."""
    from . import colour
    from .jpegchroma import exact_chroma

    if photo.chroma is None:
        return None
    return exact_chroma(photo.pixels, colour.colour_window(photo.pixels.shape[:2], face), photo.chroma)


def analyse_pixels(rgb: np.ndarray, info: CaptureInfo | None = None,
                   settings: Settings | None = None, chroma=None, *, measure: bool = True) -> AnalysedPhoto:
    """Analyse RGB ``uint8`` pixels: landmarks, regions, quality and metrics.

    ``chroma``: how the JPEG they were decoded from coded its chroma
    (:attr:`analyzer.intake.Photo.chroma`), so colour is read without the
    decode's rounding.  ``measure=False`` leaves the photo's own metrics out
    (``summary`` ``{}``, ``metrics`` ``[]``; ``settings["metrics"]`` says so) and
    keeps everything a comparison needs: ``compare`` measures both photos again
    on the skin they share, so a photo analysed only to be compared (the CLI's
    ``compare``) saves ~150 ms of a 12 MP photo's analysis.
    """
    settings = settings or Settings()
    if info is None:
        info = CaptureInfo(sha256="", format="array", width=rgb.shape[1], height=rgb.shape[0],
                           captured_at=None, camera=None, orientation=1, colour_profile=None,
                           source_mode="RGB")
    face = get_landmarker(settings.model_path).detect(rgb)
    from . import colour
    from .metrics import measure_all, skin_image  # metrics depend on regions; imported lazily

    photo = Photo(rgb, info, chroma)

    def colour_of_photo():
        exact = exact_chroma_of(photo, face)
        return exact, colour.colour_correction(rgb, face, exact=exact)

    # colour needs only the face: read side by side with the regions and the quality
    # checks (OpenCV and NumPy release the GIL; ~60 ms of a 12 MP photo's analysis)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="colour") as pool:
        colour_job = pool.submit(colour_of_photo)
        regions = build_regions(rgb, face)
        items = quality_mod.assess(rgb, face, regions)
        exact, correction = colour_job.result()
    image = skin_image(rgb, face, regions, correction, exact=exact)
    metrics, summary, metric_warnings = measure_all(rgb, regions, face, image=image) if measure else ([], {}, [])
    x, y, w, h = face.box
    warnings = [f"{i.name}: {i.advice}" for i in items if i.status != "pass"] + metric_warnings
    result = Analysis(
        algorithm_version=ALGORITHM_VERSION,
        capture=info.to_dict(),
        face={"box": {"x": x, "y": y, "width": w, "height": h},
              "landmarks": int(len(face.points)), "faces_found": face.faces_found,
              "interocular_px": round(face.interocular_px, 2),
              "pose_deg": {k: round(v, 2) for k, v in face.pose.items()}},
        quality={"overall": quality_mod.overall(items),
                 "items": [i.to_dict() for i in items],
                 "thresholds": quality_mod.THRESHOLDS},
        regions={name: {"area_px": a} for name, a in regions.area_px().items()},
        summary=summary,
        metrics=metrics,
        warnings=warnings,
        settings={"max_pixels": settings.max_pixels, "max_file_bytes": settings.max_file_bytes,
                  "model": str(settings.model_path or "bundled"),
                  # where colour was read: the JPEG's quantised chroma (analyzer.jpegchroma)
                  # or the decoded 8-bit pixels (not a plain sRGB JPEG)
                  "chroma": "jpeg coefficients" if exact is not None else "decoded pixels",
                  "metrics": "measured" if measure else "not measured (analysed to be compared)"},
    )
    return AnalysedPhoto(photo=photo, face=face, regions=regions, result=result,
                         correction=correction, skin_image=image, exact_chroma=exact)


def analyze(source: str | Path | bytes, settings: Settings | None = None, *, measure: bool = True) -> AnalysedPhoto:
    """Decode a photo file (or bytes) and analyse it (``measure``: as :func:`analyse_pixels`).

    Raises
    ------
    IntakeError, FaceNotFoundError
        With a message a person can act on.
    """
    settings = settings or Settings()
    photo = load_photo(source, settings)
    return analyse_pixels(photo.pixels, photo.info, settings, photo.chroma, measure=measure)


def compare(baseline: str | Path | bytes | AnalysedPhoto, followup: str | Path | bytes | AnalysedPhoto,
            settings: Settings | None = None, *, days_since_treatment: int | None = None,
            local: bool = False):
    """Align a follow-up photo to its baseline and say what changed.

    Parameters
    ----------
    baseline, followup : path, bytes or AnalysedPhoto
    days_since_treatment : int, optional
        Days between the last treatment and the follow-up photo; within
        ``compare.POST_PROCEDURE_DAYS`` redness is flagged as expected.
    local : bool
        Also estimate a local (non-rigid) residual correction, reported separately.

    Returns
    -------
    comparison : analyzer.compare.Comparison
    alignment : analyzer.align.Alignment
    """
    from .compare import compare_analysed

    b, f = analyze_pair(baseline, followup, settings, measure=False)
    return compare_analysed(b, f, days_since_treatment=days_since_treatment, local=local)


def analyze_pair(baseline: str | Path | bytes | AnalysedPhoto, followup: str | Path | bytes | AnalysedPhoto,
                 settings: Settings | None = None, *, measure: bool = True) -> tuple[AnalysedPhoto, AnalysedPhoto]:
    """Both photos of a pair analysed (those not analysed yet side by side; ``measure``:
    as :func:`analyse_pixels`, False when they are analysed only to be compared)."""
    settings = settings or Settings()
    if isinstance(baseline, AnalysedPhoto) or isinstance(followup, AnalysedPhoto):
        b = baseline if isinstance(baseline, AnalysedPhoto) else analyze(baseline, settings, measure=measure)
        f = followup if isinstance(followup, AnalysedPhoto) else analyze(followup, settings, measure=measure)
        return b, f
    # The two analyses are independent: run them side by side (OpenCV and
    # NumPy release the GIL; the landmarker serialises its own calls).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="analyze") as pool:
        jobs = [pool.submit(analyze, source, settings, measure=measure) for source in (baseline, followup)]
        b, f = (job.result() for job in jobs)
    return b, f
