"""Facility layers as data.

Each :class:`Layer` is one record: its key, names in Chinese and English, the
service threshold with its source (from the project's standards), the capacity
field where capacity means something, and a map style. A change to a threshold
touches one record here and nothing else.

Thresholds are metres in a projected CRS (EPSG:4548), never degrees.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from layers.errors import RegistryError, UnknownLayerError

#: People per km² at or above which a demand cell counts as urban (GHSL
#: Degree of Urbanisation "urban centre" density). A setting, not a constant.
URBAN_DENSITY_PER_KM2 = 1500.0


@dataclass(frozen=True)
class Threshold:
    """A service reach in metres, with where the figure comes from."""

    urban_m: float
    rural_m: float
    standard_zh: str
    standard_en: str
    source: str
    confidence: str
    options_m: tuple[float, ...] = ()

    def for_cell(self, urban: bool) -> float:
        return self.urban_m if urban else self.rural_m


@dataclass(frozen=True)
class Style:
    color: str
    icon: str
    radius: int = 6


@dataclass(frozen=True)
class Layer:
    key: str
    name_zh: str
    name_en: str
    table: str
    id_field: str
    geometry_field: str
    geometry_kind: str  # "point" or "polygon"
    threshold: Threshold
    style: Style
    capacity_field: str | None = None
    capacity_unit_zh: str | None = None
    capacity_unit_en: str | None = None
    kinds: dict[str, tuple[str, str]] = field(default_factory=dict)
    report_count: int | None = None
    report_note_en: str = ""

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def as_dict(self) -> dict:
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
            "threshold": {
                "urban_m": t.urban_m,
                "rural_m": t.rural_m,
                "options_m": list(t.options_m),
                "standard_zh": t.standard_zh,
                "standard_en": t.standard_en,
                "source": t.source,
                "confidence": t.confidence,
            },
            "style": {"color": self.style.color, "icon": self.style.icon},
        }


_FACILITY = dict(table="facility", id_field="id", geometry_field="geom")

LAYERS: dict[str, Layer] = {
    layer.key: layer
    for layer in (
        Layer(
            key="service_office", name_zh="政务服务网点", name_en="Government service offices",
            geometry_kind="point", **_FACILITY,
            threshold=Threshold(
                urban_m=1000, rural_m=3000,
                standard_zh="山东“1530”政务服务圈：城区步行15分钟（约1000米），乡村30分钟（约3000米）",
                standard_en="Shandong '1530' government-service circle: 15-minute walk in town "
                            "(about 1,000 m), 30 minutes in the countryside (about 3,000 m)",
                source="Shandong county government pages (e.g. Boxing, Dezhou); 15-minute walk "
                       "≈ 800–1,000 m as cited with GB 50180-2018. Metres are a conversion.",
                confidence="circle confirmed locally; metres are a conversion"),
            style=Style(color="#1f77b4", icon="building"),
            report_count=2500, report_note_en="2,500 offices on the government-service map"),
        Layer(
            key="police_station", name_zh="便民警务站", name_en="Convenience police stations",
            geometry_kind="point", **_FACILITY,
            threshold=Threshold(
                urban_m=1500, rural_m=1500,
                standard_zh="地方“1-3-5分钟”快速响应圈（非国家标准）：3分钟巡逻车程约1500米",
                standard_en="Local '1-3-5 minute' rapid-response circles (local practice, not a "
                            "national standard): 3 minutes at patrol speed ≈ 1,500 m",
                source="Hunan province; Wuhan's 465 response circles. No national norm found.",
                confidence="local practice, not a national standard"),
            style=Style(color="#d62728", icon="shield"),
            report_count=37, report_note_en="37 new or rebuilt convenience police stations"),
        Layer(
            key="pocket_park", name_zh="口袋公园与公园", name_en="Pocket parks and parks",
            geometry_kind="polygon", **_FACILITY,
            threshold=Threshold(
                urban_m=500, rural_m=500, options_m=(300.0,),
                standard_zh="GB/T 51346-2019 第4.3.4条：公园500米服务半径（“300米见绿、500米见园”）",
                standard_en="GB/T 51346-2019 clause 4.3.4: 500 m to a park or plaza "
                            "('300 m to green, 500 m to a park')",
                source="GB/T 51346-2019 clause 4.3.4 (500 m, national standard); 300 m is the "
                       "traditional green-space indicator.",
                confidence="500 m: national standard; 300 m: traditional indicator"),
            style=Style(color="#2ca02c", icon="tree"),
            kinds={"pocket_park": ("口袋公园", "Pocket park"), "park": ("公园", "Park")},
            report_count=73, report_note_en="61 new or rebuilt pocket parks plus 12 parks"),
        Layer(
            key="parking", name_zh="公共停车场", name_en="Public parking",
            geometry_kind="point", **_FACILITY,
            capacity_field="capacity", capacity_unit_zh="个车位", capacity_unit_en="spaces",
            threshold=Threshold(
                urban_m=500, rural_m=500,
                standard_zh="步行500米（假设，无国家标准），按车位数做两步移动搜索法（2SFCA）",
                standard_en="500 m walk (an assumption: no standard found), weighted by spaces "
                            "in a two-step floating catchment (2SFCA)",
                source="No standard found; 300–500 m is the usual acceptable walk from a car park.",
                confidence="assumption"),
            style=Style(color="#9467bd", icon="car"),
            kinds={"government_offhours": ("机关事业单位错时开放", "Government lot opened off-hours"),
                   "new_public": ("新增公共停车位", "New public spaces")},
            report_count=None,
            report_note_en="6,235 government spaces opened off-hours plus 3,528 new spaces"),
        Layer(
            key="village_clinic", name_zh="村卫生室", name_en="Village clinics",
            geometry_kind="point", **_FACILITY,
            threshold=Threshold(
                urban_m=2500, rural_m=2500,
                standard_zh="《村卫生室管理办法（试行）》第十三条：原则上每个行政村一所；"
                            "2500米约为骑行15分钟（假设）",
                standard_en="Village Clinic Management Method (trial, 2014) art. 13: one clinic "
                            "per administrative village; 2,500 m ≈ 15 minutes by bicycle (assumption)",
                source="Village Clinic Management Method (2014) art. 13; NHC (2022) county "
                       "'15-minute medical and health service circle'.",
                confidence="one-per-village: national rule; metres: assumption"),
            style=Style(color="#ff7f0e", icon="plus-square"),
            report_count=1496, report_note_en="1,496 village clinics, 1,211 with rehabilitation equipment"),
    )
}

LAYER_KEYS: tuple[str, ...] = tuple(LAYERS)


def get_layer(key: object) -> Layer:
    """The layer record for ``key``; the error lists the allowed keys."""
    if isinstance(key, str) and key in LAYERS:
        return LAYERS[key]
    raise UnknownLayerError(key, LAYER_KEYS)


def validate_registry(layers: dict[str, Layer] | None = None) -> list[str]:
    """Check every record; return the problems found (empty when all is well)."""
    layers = LAYERS if layers is None else layers
    problems: list[str] = []
    for key, layer in layers.items():
        where = f"layer {key!r}"
        if key != layer.key:
            problems.append(f"{where}: registered under a different key than its own ({layer.key!r})")
        if not re.fullmatch(r"[a-z][a-z_]*", layer.key):
            problems.append(f"{where}: key must be lower-case letters and underscores")
        if not layer.name_zh or not layer.name_en:
            problems.append(f"{where}: needs both a Chinese and an English name")
        if layer.geometry_kind not in ("point", "polygon"):
            problems.append(f"{where}: geometry_kind is {layer.geometry_kind!r}, expected point or polygon")
        t = layer.threshold
        for name, value in (("urban_m", t.urban_m), ("rural_m", t.rural_m), *((f"option {v}", v) for v in t.options_m)):
            if not (0 < value <= 50_000):
                problems.append(f"{where}: threshold {name} is {value}, expected metres in (0, 50000]")
        if not t.source or not t.standard_zh or not t.standard_en:
            problems.append(f"{where}: the threshold needs its standard (zh/en) and source")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", layer.style.color):
            problems.append(f"{where}: style colour {layer.style.color!r} is not #rrggbb")
        if layer.capacity_field and not (layer.capacity_unit_zh and layer.capacity_unit_en):
            problems.append(f"{where}: a capacity field needs its unit in zh and en")
    return problems
