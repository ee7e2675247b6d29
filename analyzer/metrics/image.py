"""Float maps of one face crop, computed once and shared by all metrics.

Densities are natural-log optical densities (OD = −ln reflectance) of the
colour-corrected linear image; "mOD" is 1/1000 of that.  Filter sizes are in
millimetres and converted with ``px_per_mm`` (inter-ocular distance = 63 mm),
so camera distance does not change the numbers.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import cached_property

import cv2
import numpy as np
from skimage.morphology import remove_small_holes

from .. import colour

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
DENOISE_MM = 0.15   # pre-smoothing (in sRGB) of the density used by the texture summary
# Channel weights of the texture density: fixed weights on per-channel optical
# density, so melanin and hemoglobin add a fixed amount whatever else changes
# (a weighted sum of linear light, like luminance, does not: redder skin shifts
# the weight of freckles).  Red is weighted most: melanin and hemoglobin absorb
# it least, and it is the brightest, least noisy channel on dark skin.
TEXTURE_OD_WEIGHTS = np.array([0.6, 0.3, 0.1], np.float32)


# Holes in the measured skin smaller than this get no edge margin (SkinImage.inner).
# 2 mm² (a disc ~1.6 mm across): one-pixel highlights and colour outliers, not a
# real highlight or mole.  Measured: the same dark-skin phantom photo shifted by
# 2–5 px read +1.5 % texture and pigmentation without it, ≤ 0.4 % with it.
INNER_HOLE_MM2 = 2.0
LARGE_SIGMA_PX = 16.0   # wider Gaussians run on an area-downsampled copy (see gaussian)


def gaussian(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur (float32); ``sigma_px`` < 0.3 returns the input.

    From :data:`LARGE_SIGMA_PX` up (the 8–10 mm skin backgrounds), the blur
    runs on a copy area-averaged by ``f = σ // 6`` and is linearly
    interpolated back: the box average already adds (f² − 1)/12 px² of
    variance, the rest is a Gaussian at the small scale.  That is ~15× faster
    and differs from the full-size blur by < 0.5 % of the blurred values.
    """
    if sigma_px < 0.3:
        return img
    if sigma_px < LARGE_SIGMA_PX:
        return cv2.GaussianBlur(img, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT)
    f = int(sigma_px // 6)
    h, w = img.shape[:2]
    small = cv2.resize(img, (-(-w // f), -(-h // f)), interpolation=cv2.INTER_AREA)
    s = np.sqrt(sigma_px ** 2 - (f * f - 1) / 12.0) / f
    small = cv2.GaussianBlur(small, (0, 0), s, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def masked_smooth(img: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Normalised convolution: Gaussian mean of ``img`` over ``mask`` pixels only."""
    w = mask.astype(np.float32)
    num = gaussian(img * w, sigma_px)
    den = gaussian(w, sigma_px)
    return num / np.maximum(den, 1e-3)


def _window_mean(mask: np.ndarray, radius_px: int):
    """Mean over the ``mask`` pixels of each (2r + 1)² window, as a function of an image."""
    w = mask.astype(np.float32)
    size = (2 * int(radius_px) + 1,) * 2
    count = np.maximum(cv2.boxFilter(w, -1, size, borderType=cv2.BORDER_REFLECT), 1e-3)
    return lambda a: cv2.boxFilter(a * w, -1, size, borderType=cv2.BORDER_REFLECT) / count


def guided_slope(guide: np.ndarray, src: np.ndarray, mask: np.ndarray, radius_px: int,
                 eps: float) -> np.ndarray:
    """The slope ``a`` of :func:`guided_filter`'s fit ``src ≈ a · guide + b`` in the window
    around each pixel (``eps`` shrinks it where ``guide`` is flat)."""
    mean = _window_mean(mask, radius_px)
    mean_g, mean_s = mean(guide), mean(src)
    var_g = np.maximum(mean(guide * guide) - mean_g * mean_g, 0)
    return (mean(guide * src) - mean_g * mean_s) / (var_g + np.float32(eps))


def guided_filter(guide: np.ndarray, src: np.ndarray, mask: np.ndarray, radius_px: int,
                  eps: float, slope: np.ndarray | None = None) -> np.ndarray:
    """Guided filter (He, Sun and Tang, "Guided image filtering", IEEE TPAMI 35, 2013) whose
    windows count only ``mask`` pixels.

    Within each (2r + 1)² window ``src`` is fitted as ``a · guide + b`` by least
    squares (``eps`` shrinks ``a`` where ``guide`` is flat); the output is
    ``mean(a) · guide + mean(b)``: ``src`` with the fine detail of ``guide`` where
    the two agree locally, and a local mean of ``src`` where they do not.
    ``slope`` (a map of ``a``, e.g. from :func:`guided_slope` of another photo
    of the same skin) is used instead of fitting ``a``; ``b`` still fits ``src``.
    Written here because ``cv2.ximgproc.guidedFilter`` has no mask: its windows
    would fit skin together with eyes, lips and hair.
    """
    mean = _window_mean(mask, radius_px)
    a = guided_slope(guide, src, mask, radius_px, eps) if slope is None else slope
    b = mean(src) - a * mean(guide)
    return (mean(a) * guide + mean(b)).astype(np.float32)


@dataclass
class SkinImage:
    """A colour-corrected face crop and the maps metrics read.

    Parameters
    ----------
    linear : ndarray (H, W, 3) float32
        Colour-corrected linear sRGB of the face crop.
    px_per_mm : float
    skin : ndarray (H, W) bool
        Whole-face skin mask of the crop (used as support for local backgrounds).
    """

    linear: np.ndarray
    px_per_mm: float
    skin: np.ndarray
    srgb: np.ndarray | None = None          # the uncorrected sRGB crop (uint8), if available
    colour: object | None = None            # the ColourCorrection (analyzer.colour) applied to ``srgb``
    frame: object | None = None             # the WorkFrame (analyzer.metrics) it covers
    own_masks: tuple | None = None          # (RegionMasks, their work-frame masks) of this photo
    measured: np.ndarray | None = None      # whole-face mask of the current measurement (see measuring)
    cache: dict = field(default_factory=dict, repr=False)
    local: dict = field(default_factory=dict, repr=False)  # per-measurement results (see measuring)

    # Maps that a global gain on linear light leaves unchanged: chromophore
    # densities (the neutral component takes the gain), the erythema index (a
    # ratio), and every band-pass, ridge, local-excess and blob map in ``cache``
    # (a gain adds a constant to a density, which they remove).
    GAIN_INVARIANT = ("_chromophores", "erythema")

    def px(self, mm: float) -> float:
        return float(mm * self.px_per_mm)

    @property
    def resolved_px_per_mm(self) -> float:
        """Pixels per mm the photo itself has here: the work scale, or less when the photo
        was enlarged to it (detail finer than the photo's pixels is not there)."""
        photo = getattr(self.frame, "photo_px_per_mm", None)
        return float(min(self.px_per_mm, photo)) if photo else float(self.px_per_mm)

    def measuring(self, whole_face: np.ndarray) -> "SkinImage":
        """A view of this image for measuring on ``whole_face`` (e.g. the skin common to
        two photos): maps and their ``cache`` are shared, while edge margins
        (:meth:`inner`) and per-mask results (``local``) follow ``whole_face``."""
        view = copy.copy(self)
        view.measured = whole_face
        view.local = self.local if whole_face is self.measured else {}
        return view

    def keep_maps_of(self, view: "SkinImage") -> None:
        """Keep the maps first computed on ``view`` (one of :meth:`measuring`'s views of
        this image: ``lab``, chromophores, ...) for every later measurement."""
        for name, value in view.__dict__.items():
            self.__dict__.setdefault(name, value)

    @property
    def support(self) -> np.ndarray:
        """The skin being measured: :attr:`measured` when set, else :attr:`skin`.

        Local skin backgrounds, skin-bounded components and edge margins use
        it, so in a comparison both photos use the same (common) skin for
        them; pure filters (band-pass, ridges, chromophores) do not depend on
        it and are shared through ``cache``.
        """
        return self.skin if self.measured is None else self.measured

    def inner(self, mm: float) -> np.ndarray:
        """Measured skin (:attr:`measured`, else :attr:`skin`) at least ``mm`` inside its
        edge: away from eyes, lips, hair, and in a comparison from skin the other
        photo does not show or has clipped.

        Holes smaller than :data:`INNER_HOLE_MM2` (a stray highlight or colour
        outlier pixel) are left out themselves but get no margin: a one-pixel
        hole would otherwise remove a disc of 2 mm around it, and such holes
        come and go between two photos of the same skin (the follow-up's masks
        are the baseline's, resampled), so the two would measure different skin.
        """
        key = ("inner", mm)
        if key not in self.local:
            if ("filled",) not in self.local:  # shared by every margin
                self.local[("filled",)] = remove_small_holes(
                    self.support, max_size=int(INNER_HOLE_MM2 * self.px_per_mm ** 2))
            self.local[key] = erode_mm(self.local[("filled",)], mm, self.px_per_mm) & self.support
        return self.local[key]

    def with_gain(self, gain, colour_correction=None) -> "SkinImage":
        """This image with linear light multiplied by ``gain`` (an exposure change), or by
        per-channel ``gain`` (R, G, B; exposure and white balance).

        Used by ``compare`` to put a follow-up on the baseline's footing
        without recomputing what the gain cannot change: a scalar gain keeps
        :attr:`GAIN_INVARIANT` and every map in ``cache``; per-channel gains add
        a constant to each channel's density, so only the band-passes of the
        texture density (fixed per-channel weights) are kept, and chromophores,
        luminance and ridge maps are recomputed.  ``colour_correction`` is the
        correction the result stands for (its matrix is ``diag(gain)`` × this one's).
        """
        g = np.asarray(gain, np.float32)
        chromatic = g.size == 3 and not np.allclose(g, g.flat[0], rtol=1e-9, atol=0)
        cache = {k: v for k, v in self.cache.items()
                 if not chromatic or (isinstance(k, tuple) and k[0] == "band_dn")}
        out = replace(self, linear=self.linear * g, colour=colour_correction, cache=cache)
        for name in () if chromatic else self.GAIN_INVARIANT:
            if name in self.__dict__:
                out.__dict__[name] = self.__dict__[name]
        return out

    @cached_property
    def _chromophores(self) -> tuple[np.ndarray, np.ndarray]:
        d = colour.chromophores(self.linear)
        return np.ascontiguousarray(d[..., 0]), np.ascontiguousarray(d[..., 1])

    @property
    def melanin(self) -> np.ndarray:
        return self._chromophores[0]

    @property
    def hemoglobin(self) -> np.ndarray:
        return self._chromophores[1]

    @cached_property
    def lum_density(self) -> np.ndarray:
        """−ln(luminance): achromatic density; gains and smooth light add only a slow term."""
        y = self.linear @ _LUMA
        return -np.log(np.clip(y, 1e-4, None)).astype(np.float32)

    @cached_property
    def lum_density_denoised(self) -> np.ndarray:
        """Texture density: optical density weighted 0.6 / 0.3 / 0.1 (R, G, B) of the photo
        smoothed by σ = 0.15 mm *in sRGB* before linearising.

        Sensor noise is additive in the encoded (gamma) values; linearising and
        taking logs first turns it into a large, brightness-dependent density
        noise on dark skin.  Smoothing the encoded values first averages the
        noise while it is still zero-mean, and keeps neutral texture neutral
        (the sRGB curve is close to a power law).  Falls back to
        :attr:`lum_density` when the sRGB crop is not available.
        """
        if self.srgb is None:
            lin = gaussian(self.linear, self.px(DENOISE_MM))
        else:
            enc = gaussian(self.srgb.astype(np.float32) / 255.0, self.px(DENOISE_MM))
            lin = colour.srgb_to_linear(enc)
            if self.colour is not None:
                lin = (lin.reshape(-1, 3) @ np.asarray(self.colour.matrix, np.float32).T).reshape(lin.shape)
        return (-np.log(np.clip(lin, 1e-4, None)) @ TEXTURE_OD_WEIGHTS).astype(np.float32)

    def bandpass_denoised(self, lo_mm: float, hi_mm: float) -> np.ndarray:
        """As :meth:`bandpass` on :attr:`lum_density_denoised`."""
        key = ("band_dn", lo_mm, hi_mm)
        if key not in self.cache:
            d = self.lum_density_denoised
            self.cache[key] = gaussian(d, self.px(lo_mm / 2)) - gaussian(d, self.px(hi_mm / 2))
        return self.cache[key]

    @cached_property
    def lab(self) -> np.ndarray:
        return colour.to_lab(self.linear)

    @cached_property
    def ita(self) -> np.ndarray:
        """Individual typology angle map (degrees)."""
        return colour.ita_degrees(self.lab)

    @cached_property
    def erythema(self) -> np.ndarray:
        return colour.erythema_index(self.linear)

    @cached_property
    def melanin_idx(self) -> np.ndarray:
        return colour.melanin_index(self.linear)

    def bandpass(self, lo_mm: float, hi_mm: float) -> np.ndarray | None:
        """Luminance density band-passed to structures of size ``lo_mm``..``hi_mm``.

        Difference of Gaussians with σ = size / 2.  ``None`` when the band's
        upper σ is under 0.5 of the photo's own pixels (not resolved at this
        camera distance; see :attr:`resolved_px_per_mm`).
        """
        key = ("band", lo_mm, hi_mm)
        if key not in self.cache:
            s_lo, s_hi = self.px(lo_mm / 2), self.px(hi_mm / 2)
            if hi_mm / 2 * self.resolved_px_per_mm < 0.5:
                self.cache[key] = None
            else:
                d = self.lum_density
                self.cache[key] = gaussian(d, s_lo) - gaussian(d, s_hi)
        return self.cache[key]

    def excess(self, name: str, background_mm: float) -> np.ndarray:
        """Map ``name`` (``melanin`` or ``hemoglobin``) minus its local background over
        the measured skin (:attr:`support`)."""
        key = ("excess", name, background_mm)
        if key not in self.local:
            m = getattr(self, name)
            self.local[key] = m - masked_smooth(m, self.support, self.px(background_mm))
        return self.local[key]

    def blobs(self, key: str, response: np.ndarray, threshold: float, min_area_mm2: float,
              max_area_mm2: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Connected components of ``response > threshold`` within the skin.

        Returns the label image, each kept component's area (mm²) and the
        (row, col) of its strongest pixel.  Components outside the area limits
        are dropped.
        """
        ck = ("blobs", key)
        if ck not in self.local:
            binary = ((response > threshold) & self.support).view(np.uint8)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4,
                                                                   ltype=cv2.CV_32S)
            area = stats[1:, cv2.CC_STAT_AREA] / self.px_per_mm ** 2
            # strongest pixel of each component (the first in raster order on ties) without
            # sorting: ndimage.maximum_position argsorts the whole image
            fg = np.flatnonzero(labels)
            lab, val = labels.ravel()[fg], response.ravel()[fg]
            best = np.full(n, -np.inf, val.dtype)
            np.maximum.at(best, lab, val)
            hit = fg[val == best[lab]]
            first = np.unique(labels.ravel()[hit], return_index=True)[1]
            peaks = np.column_stack(np.unravel_index(hit[first], labels.shape)).astype(int)
            keep = (area >= min_area_mm2) & (area <= max_area_mm2)
            self.local[ck] = (labels, area[keep], peaks[keep].reshape(-1, 2))
        return self.local[ck]


def _gaussian_kernel(sigma: float, order: int, truncate: float = 8.0) -> np.ndarray:
    """Sampled Gaussian (order 0) or its first derivative (order 1), as
    ``scipy.ndimage.gaussian_filter1d`` builds it, flipped for correlation."""
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    if order == 1:
        phi = -x / sigma ** 2 * phi
    return phi[::-1].astype(np.float32)


def sato_ridges(img: np.ndarray, sigmas) -> np.ndarray:
    """Sato tubeness of bright ridges in 2-D (``skimage.filters.sato(img, sigmas,
    black_ridges=False, mode="reflect")``), computed with OpenCV.

    Written here because scikit-image builds its Gaussian-derivative kernels
    with ``truncate=100`` for σ ≤ 1 px (hundreds of taps: ~0.5 s on a face at
    4 px/mm); the same two successive first-derivative filters of σ/√2,
    truncated at 8σ and run by ``cv2.sepFilter2D``, agree with it to 1e-7 and
    take ~20 ms.  Per scale: σ² × max(0, largest eigenvalue of −Hessian);
    the maximum over scales is returned.
    """
    img = np.asarray(img, np.float32)
    out = np.zeros_like(img)

    def sep(a, kx, ky):
        return cv2.sepFilter2D(a, cv2.CV_32F, kx, ky, borderType=cv2.BORDER_REFLECT)

    for s in sigmas:
        g0, g1 = _gaussian_kernel(s / np.sqrt(2), 0), _gaussian_kernel(s / np.sqrt(2), 1)
        grad_r, grad_c = sep(img, g0, g1), sep(img, g1, g0)
        a, b, c = -sep(grad_r, g0, g1), -sep(grad_r, g1, g0), -sep(grad_c, g1, g0)  # −H (rr, rc, cc)
        largest = 0.5 * (a + c) + np.sqrt(0.25 * (a - c) ** 2 + b * b)
        np.maximum(out, np.float32(s * s) * np.maximum(largest, 0), out=out)
    return out


CLIPPED_SRGB = colour.CLIPPED_SRGB   # a channel this bright is clipped: no chromophore can be measured there
CLIPPED_MARGIN_MM = 0.5


def clipped_near(rgb: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Pixels of an sRGB ``uint8`` image within 0.5 mm of a clipped channel (≥ 250)."""
    clipped = cv2.bitwise_not(cv2.inRange(np.ascontiguousarray(rgb), (0, 0, 0), (CLIPPED_SRGB - 1,) * 3))
    k = max(1, int(round(CLIPPED_MARGIN_MM * px_per_mm)))
    return cv2.dilate(clipped, np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0


def erode_mm(mask: np.ndarray, mm: float, px_per_mm: float) -> np.ndarray:
    """Erode a boolean mask by ``mm`` (keeps filters away from eyes, lips and hair).

    A round erosion as one distance transform (pixels farther than the radius
    from the outside), O(N) whatever the radius.  The image border does not
    count as outside.
    """
    k = int(round(mm * px_per_mm))
    if k < 1:
        return mask
    padded = np.pad(mask.astype(np.uint8), 1, constant_values=1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return dist > k


def area_cm2(mask: np.ndarray, px_per_mm: float) -> float:
    return float(mask.sum()) / (px_per_mm * 10.0) ** 2
