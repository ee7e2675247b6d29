"""The metric registry: every metric registered once, with unit, regions, direction and method.

A metric is a function ``(image, mask, scale) -> float`` where ``image`` is a
:class:`~analyzer.metrics.image.SkinImage` (float32 maps of the face crop,
computed once per photo), ``mask`` a boolean region mask of the crop and
``scale`` the physical scale in pixels per millimetre.  Its docstring says
what is measured.  The README metric table is generated from this registry
(:func:`markdown_table`), so the documentation cannot drift from the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

ALL_REGIONS = ("forehead", "glabella", "right_cheek", "left_cheek", "nose", "right_under_eye",
               "left_under_eye", "perioral", "chin", "whole_face")
LINE_REGIONS = ("forehead", "right_under_eye", "left_under_eye", "perioral", "whole_face")
PORE_REGIONS = ("right_cheek", "left_cheek", "nose", "whole_face")
DIRECTIONS = ("more texture", "more redness", "more pigmentation", "darker tone", "lighter tone",
              "less even tone")


@dataclass(frozen=True)
class Metric:
    """One registered metric."""

    name: str
    func: Callable
    unit: str
    regions: tuple[str, ...]
    direction: str     # what a larger value means
    reference: str     # method citation
    family: str        # texture, redness or pigmentation

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    @property
    def summary_line(self) -> str:
        """First sentence of the docstring."""
        return " ".join(self.doc.split("\n\n")[0].split())


REGISTRY: dict[str, Metric] = {}


def register(name: str, *, unit: str, regions: tuple[str, ...], direction: str, reference: str,
             family: str):
    """Decorator: register a metric function under ``name`` (once)."""
    def wrap(func: Callable) -> Callable:
        if name in REGISTRY:
            raise ValueError(f"metric {name!r} registered twice")
        unknown = set(regions) - set(ALL_REGIONS)
        if unknown:
            raise ValueError(f"metric {name!r}: unknown regions {sorted(unknown)}")
        REGISTRY[name] = Metric(name, func, unit, tuple(regions), direction, reference, family)
        return func
    return wrap


def _regions_text(regions: tuple[str, ...]) -> str:
    if tuple(regions) == ALL_REGIONS:
        return "all"
    return ", ".join(r.replace("_", " ") for r in regions)


def markdown_table() -> str:
    """The README metric table, one row per registered metric."""
    rows = ["| metric | unit | region | direction | method |", "|---|---|---|---|---|"]
    for m in REGISTRY.values():
        rows.append(f"| `{m.name}` | {m.unit} | {_regions_text(m.regions)} | larger = {m.direction} "
                    f"| {m.summary_line} {m.reference} |")
    return "\n".join(rows)

