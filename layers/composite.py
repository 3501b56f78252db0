"""The composite "15-minute life circle": the layers' thresholds taken together.

A resident counts as inside the life circle when every layer that is part of
it (``Layer.in_composite``) and applies to their cell (``Layer.applies_to``)
reaches them. With the registry as it stands that means, in urban cells, a
service office, a convenience police station, a park and a car park within
reach; in rural cells, a service office and a village clinic. Town residents
use community health centres (not a layer here) and the countryside is
served by township police stations (not a layer here either).
"""
from __future__ import annotations

from dataclasses import dataclass

from layers.model import Target


@dataclass(frozen=True)
class Composite:
    key: str
    name_zh: str
    name_en: str
    rule_zh: str
    rule_en: str
    target: Target

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def rule(self, lang: str) -> str:
        return self.rule_en if lang == "en" else self.rule_zh


LIFE_CIRCLE = Composite(
    key="composite", name_zh="15分钟生活圈（综合）", name_en="15-minute life circle (composite)",
    rule_zh="城区：政务服务网点、便民警务站、公园、停车场均在服务半径内；乡村：政务服务网点与村卫生室均在服务半径内",
    rule_en="urban cells: service office, police station, park and parking within reach; "
            "rural cells: service office and village clinic within reach",
    target=Target(85.0, "全国2025年目标：15分钟步行覆盖率85%", "National 2025 target: 85% within a 15-minute walk",
                  "15-minute walking coverage of community facilities: 85% nationally by 2025"),
)
