"""The shapes of a layer record: what every facility layer declares once.

A :class:`Layer` holds every fact about a facility layer that code elsewhere
needs: names, where its standard applies (urban cells, rural cells or both),
the threshold and its source, the target it is reported against, the extra
figures it gets, its report and demo counts, and where it is stored. Code in
``geo/``, ``db/``, ``services/`` and ``web/`` reads these fields and never
tests a layer's key.

Thresholds are metres in a projected CRS (EPSG:4548), never degrees.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Cell classes a layer's standard can apply to.
CELL_CLASSES: tuple[str, ...] = ("urban", "rural")

#: Extra figures a layer can ask for, beyond coverage (see :attr:`Layer.figures`).
#:
#: * ``supply_ratio``: two-step floating catchment (2SFCA) of the capacity
#:   field per 1,000 residents (needs ``capacity_field``).
#: * ``per_village``: the one-per-administrative-village rule: villages
#:   without a facility of their own and villages with none in reach.
FIGURES: tuple[str, ...] = ("supply_ratio", "per_village")

#: The road network each travel mode of a threshold is measured on: walking and "any mode" (bicycle or
#: e-bike, at its own speed) use the walking network, driving the driving network.
NETWORK_OF_MODE: dict[str, str] = {"walk": "walk", "any": "walk", "drive": "drive"}

#: Placement rules the demo generator knows (``demo/facilities.py``).
DEMO_PLACEMENTS: tuple[str, ...] = (
    "offices", "urban", "parks", "parking", "villages", "towns", "rural", "seats")


@dataclass(frozen=True)
class TravelMode:
    """How a threshold is travelled, with the speed used to turn metres into minutes."""

    key: str
    name_zh: str
    name_en: str
    speed_m_per_min: float
    source: str


@dataclass(frozen=True)
class Threshold:
    """A service reach in metres, with where the figure comes from.

    ``mode`` says how the reach is travelled (a key of
    :data:`layers.modes.MODES`): walking thresholds are measured on foot
    along the roads once a road network is loaded.
    """

    urban_m: float
    rural_m: float
    standard_zh: str
    standard_en: str
    source: str
    confidence: str
    mode: str = "walk"
    rural_mode: str | None = None
    options_m: tuple[float, ...] = ()

    def for_cell(self, urban: bool) -> float:
        return self.urban_m if urban else self.rural_m

    def mode_for(self, urban: bool) -> str:
        """The travel mode of the urban or the rural threshold."""
        return self.mode if urban or self.rural_mode is None else self.rural_mode


@dataclass(frozen=True)
class Target:
    """The share a layer's coverage is reported against (percent of applicable residents)."""

    percent: float | None
    text_zh: str
    text_en: str
    source: str

    def text(self, lang: str) -> str:
        return self.text_en if lang == "en" else self.text_zh


@dataclass(frozen=True)
class Style:
    color: str
    icon: str
    radius: int = 6


@dataclass(frozen=True)
class DemoKind:
    """One kind of a layer's synthetic demo facilities.

    ``count`` is the number of sites at scale 1 (the report's figure);
    ``capacity`` the total capacity they share, when the layer has a
    capacity field; ``flags`` names attributes set true on exactly that many
    of them (e.g. clinics with rehabilitation equipment). ``opened`` is when
    they opened: ``h1_2022`` (new in the report's half-year),
    ``before_2022``, or ``mostly_before_2022`` (some in H1 2022).
    """

    count: int
    name_zh: str
    prefix: str
    hours: str
    opened: str = "before_2022"
    capacity: int | None = None
    flags: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoSpec:
    """How the demo city places this layer's synthetic facilities.

    ``placement`` names a rule of the demo generator (:data:`DEMO_PLACEMENTS`);
    ``kinds`` gives each kind's count and labels.
    """

    placement: str
    kinds: dict[str, DemoKind]

    @property
    def total(self) -> int:
        return sum(k.count for k in self.kinds.values())


@dataclass(frozen=True)
class Layer:
    """One facility layer, declared once (see ``layers/registry.py``)."""

    key: str
    name_zh: str
    name_en: str
    geometry_kind: str  # "point" or "polygon"
    threshold: Threshold
    style: Style
    demo: DemoSpec
    applies_to: tuple[str, ...] = CELL_CLASSES
    in_composite: bool = False
    target: Target | None = None
    figures: tuple[str, ...] = ()
    capacity_field: str | None = None
    capacity_unit_zh: str | None = None
    capacity_unit_en: str | None = None
    kinds: dict[str, tuple[str, str]] = field(default_factory=dict)
    report_count: int | None = None
    report_note_zh: str = ""
    report_note_en: str = ""
    # Where the layer is stored (the export and OGC source): one table for every facility layer.
    table: str = "facility"
    id_field: str = "id"
    geometry_field: str = "geom"

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def report_note(self, lang: str) -> str:
        return self.report_note_en if lang == "en" else self.report_note_zh

    def applies(self, cell_class: str) -> bool:
        return cell_class in self.applies_to

    def as_dict(self) -> dict[str, Any]:
        t = self.threshold
        return {
            "key": self.key,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "geometry": self.geometry_kind,
            "capacity_field": self.capacity_field,
            "capacity_unit": {"zh": self.capacity_unit_zh, "en": self.capacity_unit_en}
            if self.capacity_field else None,
            "kinds": {k: {"zh": v[0], "en": v[1]} for k, v in self.kinds.items()},
            "applies_to": list(self.applies_to),
            "in_composite": self.in_composite,
            "figures": list(self.figures),
            "threshold": {
                "urban_m": t.urban_m,
                "rural_m": t.rural_m,
                "mode": t.mode,
                "rural_mode": t.rural_mode or t.mode,
                "options_m": list(t.options_m),
                "standard_zh": t.standard_zh,
                "standard_en": t.standard_en,
                "source": t.source,
                "confidence": t.confidence,
            },
            "target": None if self.target is None else {
                "percent": self.target.percent, "text_zh": self.target.text_zh,
                "text_en": self.target.text_en, "source": self.target.source},
            "report_count": self.report_count,
            "report_note_zh": self.report_note_zh,
            "report_note_en": self.report_note_en,
            "style": {"color": self.style.color, "icon": self.style.icon},
        }
