"""The six county-level divisions of Zaozhuang (枣庄市, 370400)."""
from __future__ import annotations

#: adcode → (Chinese name, English name)
DISTRICTS: dict[str, tuple[str, str]] = {
    "370402": ("市中区", "Shizhong District"),
    "370403": ("薛城区", "Xuecheng District"),
    "370404": ("峄城区", "Yicheng District"),
    "370405": ("台儿庄区", "Tai'erzhuang District"),
    "370406": ("山亭区", "Shanting District"),
    "370481": ("滕州市", "Tengzhou City"),
}

DISTRICT_CODES: tuple[str, ...] = tuple(DISTRICTS)
CITY_CODE = "370400"
CITY_NAME = ("枣庄市", "Zaozhuang City")
