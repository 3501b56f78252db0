"""Which column of a facility table holds which field, found by the names people give them.

Agencies name their columns in Chinese or English, with units or a CRS in
brackets (``经度(GCJ-02)``), in full-width forms: :func:`detect_columns` maps
each field (lon, lat, name, source_id, ...) to a header by the usual names.
"""
from __future__ import annotations

import re

from etl.errors import ETLError
from geo.parse import to_halfwidth

#: Usual header names per field, most specific first. Matching ignores case,
#: spaces, underscores, hyphens and full-width forms; a bracketed suffix such
#: as ``经度(GCJ-02)`` is ignored on a second pass.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "lon": ("经度", "lng", "lon", "long", "longitude", "x", "x坐标", "东经", "经度坐标", "坐标x",
            "pointx", "xcoord", "gcj经度", "gcj02经度", "wgs84经度", "百度经度", "bd09经度"),
    "lat": ("纬度", "lat", "latitude", "y", "y坐标", "北纬", "纬度坐标", "坐标y",
            "pointy", "ycoord", "gcj纬度", "gcj02纬度", "wgs84纬度", "百度纬度", "bd09纬度"),
    "source_id": ("机构编号", "站点编号", "设施编号", "编号", "机构代码", "代码", "编码", "id", "code",
                  "sourceid", "uid", "poiid"),
    "name": ("机构名称", "站点名称", "公园名称", "停车场名称", "卫生室名称", "警务站名称", "网点名称",
             "单位名称", "设施名称", "场所名称", "名称", "名字", "name", "title"),
    "address": ("地址", "详细地址", "所在地址", "位置", "address", "addr"),
    "phone": ("联系电话", "电话", "电话号码", "办公电话", "联系方式", "phone", "tel", "telephone"),
    "opening_hours": ("办公时间", "开放时间", "营业时间", "开放时段", "服务时间", "工作时间",
                      "openinghours", "hours"),
    "capacity": ("车位数", "泊位数", "停车位数", "车位", "泊位", "容量", "capacity", "spaces"),
    "opened_on": ("建成时间", "建成日期", "开放日期", "启用时间", "启用日期", "opened", "openedon",
                  "日期"),
    "kind": ("类型", "类别", "种类", "分类", "kind", "type"),
}
#: One column holding "lon,lat" together.
PAIR_NAMES = ("经纬度", "经纬度坐标", "坐标", "lnglat", "lonlat", "coordinates", "location")


def _header_key(header: object, drop_brackets: bool = False) -> str:
    text = to_halfwidth(str(header)).strip().lower()
    if drop_brackets:
        text = re.sub(r"[(\[【].*?[)\]】]", "", text)
    return re.sub(r"[\s_\-.]+", "", text)


def detect_columns(headers: list[str], *, need_coordinates: bool = True) -> dict[str, str]:
    """Map each field (lon, lat, name, source_id, ...) to a header, by usual names.

    Parameters
    ----------
    headers : list of str
        The file's header names, as read.
    need_coordinates : bool
        True for tables: a lon/lat pair (or one combined ``经纬度`` column) must
        be found.

    Raises
    ------
    ETLError
        When coordinates are needed and not found; the message lists the
        headers seen and the names looked for.
    """
    found: dict[str, str] = {}
    taken: set[str] = set()
    for drop_brackets in (False, True):
        keys = {h: _header_key(h, drop_brackets) for h in headers}
        for fld, candidates in FIELD_NAMES.items():
            if fld in found:
                continue
            for cand in candidates:
                match = next((h for h in headers if h not in taken and keys[h] == _header_key(cand)), None)
                if match is not None:
                    found[fld] = match
                    taken.add(match)
                    break
    if need_coordinates:
        _require_coordinates(headers, found, taken)
    return found


def _require_coordinates(headers: list[str], found: dict[str, str], taken: set[str]) -> None:
    if "lon" in found and "lat" in found:
        return
    pair = next((h for h in headers if h not in taken
                 and _header_key(h, True) in {_header_key(p) for p in PAIR_NAMES}), None)
    if pair is not None and "lon" not in found and "lat" not in found:
        found["lon"] = found["lat"] = pair
        return
    raise ETLError(
        f"no coordinate columns found among {', '.join(map(str, headers))}; expected a longitude "
        f"column named one of {', '.join(FIELD_NAMES['lon'][:7])} and a latitude column named one "
        f"of {', '.join(FIELD_NAMES['lat'][:7])} (or one column {PAIR_NAMES[0]} holding 'lon,lat')")
