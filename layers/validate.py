"""Checks that every layer record is complete (``flask layers validate`` and a test run them)."""
from __future__ import annotations

import re

from layers.model import CELL_CLASSES, DEMO_PLACEMENTS, FIGURES, Layer
from layers.modes import MODES
from layers.registry import LAYERS


def validate_registry(layers: dict[str, Layer] | None = None) -> list[str]:
    """Check every record; return the problems found (empty when all is well)."""
    layers = LAYERS if layers is None else layers
    problems: list[str] = []
    for key, layer in layers.items():
        where = f"layer {key!r}"
        if key != layer.key:
            problems.append(f"{where}: registered under a different key than its own ({layer.key!r})")
        problems += [f"{where}: {p}" for p in _problems(layer)]
    return problems


def _problems(layer: Layer) -> list[str]:
    out: list[str] = []
    if not re.fullmatch(r"[a-z][a-z_]*", layer.key) or layer.key in ("all", "composite", "population",
                                                                      "village", "roads"):
        out.append("key must be lower-case letters and underscores, and not a reserved collection name")
    if not layer.name_zh or not layer.name_en:
        out.append("needs both a Chinese and an English name")
    if layer.geometry_kind not in ("point", "polygon"):
        out.append(f"geometry_kind is {layer.geometry_kind!r}, expected point or polygon")
    out += _threshold_problems(layer)
    if not layer.applies_to or set(layer.applies_to) - set(CELL_CLASSES):
        out.append(f"applies_to is {layer.applies_to!r}, expected a non-empty subset of {CELL_CLASSES}")
    unknown = set(layer.figures) - set(FIGURES)
    if unknown:
        out.append(f"figures {sorted(unknown)} are unknown; known: {', '.join(FIGURES)}")
    if "supply_ratio" in layer.figures and not layer.capacity_field:
        out.append("the supply_ratio figure needs a capacity_field")
    if layer.target is not None and layer.target.percent is not None and not 0 < layer.target.percent <= 100:
        out.append(f"target percent {layer.target.percent} is not in (0, 100]")
    if layer.target is not None and not (layer.target.text_zh and layer.target.text_en and layer.target.source):
        out.append("a target needs its text (zh/en) and source")
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", layer.style.color):
        out.append(f"style colour {layer.style.color!r} is not #rrggbb")
    if layer.capacity_field and not (layer.capacity_unit_zh and layer.capacity_unit_en):
        out.append("a capacity field needs its unit in zh and en")
    if not (layer.report_note_zh and layer.report_note_en):
        out.append("needs the report's note in zh and en (what the report counts)")
    out += _demo_problems(layer)
    return out


def _threshold_problems(layer: Layer) -> list[str]:
    t = layer.threshold
    out: list[str] = []
    for name, value in (("urban_m", t.urban_m), ("rural_m", t.rural_m), *((f"option {v}", v) for v in t.options_m)):
        if not (0 < value <= 50_000):
            out.append(f"threshold {name} is {value}, expected metres in (0, 50000]")
    if not t.source or not t.standard_zh or not t.standard_en or not t.confidence:
        out.append("the threshold needs its standard (zh/en), source and confidence")
    for mode in (t.mode, t.rural_mode or t.mode):
        if mode not in MODES:
            out.append(f"threshold mode {mode!r} is unknown; known: {', '.join(MODES)}")
    return out


def _demo_problems(layer: Layer) -> list[str]:
    demo = layer.demo
    out: list[str] = []
    if demo.placement not in DEMO_PLACEMENTS:
        out.append(f"demo placement {demo.placement!r} is unknown; known: {', '.join(DEMO_PLACEMENTS)}")
    if not demo.kinds:
        out.append("the demo needs at least one kind")
    if layer.kinds and set(demo.kinds) - set(layer.kinds):
        out.append(f"demo kinds {sorted(set(demo.kinds) - set(layer.kinds))} are not kinds of the layer")
    for kind, spec in demo.kinds.items():
        if spec.count < 0 or not spec.name_zh or not re.fullmatch(r"[A-Z]{2,4}", spec.prefix):
            out.append(f"demo kind {kind!r} needs a count >= 0, a Chinese name and a 2-4 letter prefix")
        if (spec.capacity is not None) != bool(layer.capacity_field):
            out.append(f"demo kind {kind!r}: a capacity total goes with a capacity field, and only then")
        if spec.opened not in ("h1_2022", "before_2022", "mostly_before_2022"):
            out.append(f"demo kind {kind!r}: opened is {spec.opened!r}")
        if any(n > spec.count or n < 0 for n in spec.flags.values()):
            out.append(f"demo kind {kind!r}: a flag count exceeds the kind's count")
    if layer.report_count is not None and layer.report_count != demo.total:
        out.append(f"the demo places {demo.total} but the report counts {layer.report_count}")
    return out
