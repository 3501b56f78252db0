"""The planner page's words, in Chinese and English, and its error message in the page's language."""
from __future__ import annotations

from typing import Any

from services.errors import Unavailable

TEXT: dict[str, dict[str, str]] = {
    "zh": {"title": "民生设施覆盖规划", "layer": "设施图层", "radius": "服务半径（米，可选）",
           "as_of": "截至日期", "sites": "建议新增数量", "apply": "更新", "district": "区县", "area": "区域",
           "zone": "规划单元", "population": "人口", "covered": "覆盖人口", "percent": "覆盖率",
           "standard": "对照标准", "threshold": "服务半径", "urban": "城区", "rural": "乡村",
           "legend": "覆盖率（按区域）", "residents": "居民", "all_residents": "全部常住人口",
           "applicable_of": "{cells}人口覆盖率", "all_of": "全部人口覆盖率",
           "gaps": "未覆盖人口聚集区（前{n}个，仅计{cells}网格；点击定位）", "suggest": "建议新增站点",
           "gain": "新增覆盖人口", "cumulative": "累计覆盖率", "download": "下载",
           "table_csv": "表格（CSV）", "table_xlsx": "表格（Excel）", "report": "下载报告（PDF）",
           "map_png": "地图（PNG）", "chart": "各区域覆盖率", "life": "15分钟生活圈（综合）",
           "spaces": "每千人车位（2SFCA）", "no_space": "可达范围内无车位的居民",
           "quartiles": "每千人车位四分位数（按居民）", "villages_own": "无本村卫生室的村",
           "villages_reach": "服务半径内无卫生室的村", "village_rule": "归村规则", "target": "目标",
           "rank": "序号", "no_data": "无数据", "gap_legend": "未覆盖聚集区", "site_legend": "建议站点",
           "facilities": "现有设施", "city": "全市", "overridden": "（已自定义）", "near": "附近村庄",
           "place": "位置", "lonlat": "经度，纬度（WGS-84）", "measure": "距离量算", "by": "距离方式",
           "by_walk": "沿路网（各图层按其出行方式）", "by_drive": "沿驾车路网", "by_straight": "直线距离",
           "by_default": "默认（有路网时沿路网）", "zones": "分区", "zones_none": "区县",
           "compare": "前后对比（日期1,日期2）", "compare_title": "前后对比：{a} → {b}",
           "before": "之前", "after": "之后", "change": "覆盖人口变化", "change_points": "变化（百分点）",
           "area_to_boundary": "公园等面状设施量算至边界",
           "classes_target": "分级以目标（{target}%）为基准：50%、75%、90%、100%",
           "classes_quantiles": "分级为各区域数值的五分位", "classes_fixed": "等距分级（每20个百分点）",
           "method": "方法说明", "working": "正在计算……",
           "sites_working": "正在计算建议站点……", "sites_failed": "建议站点未能计算：",
           "error_title": "参数有误", "busy_title": "暂时无法完成", "back": "返回规划页面",
           "confidence": "", "synthetic_zones": "演示分区为合成数据",
           "method_text": "人口：250米人口网格（合成，区县总数与2020年人口普查一致）。"
                          "城乡：每平方公里1500人及以上的网格为城区，"
                          "其余为乡村；各图层仅在其适用的城区或乡村网格计算（如村卫生室仅计乡村，警务站仅计城区）。"
                          "距离：默认沿道路网量算（步行及“任意方式”用步行路网，驾车用驾车路网，网格中心以最近道路位置接入，"
                          "接入段计入距离）；选择“直线距离”则按EPSG:4548平面直线量算。公园等面状设施量算至其边界。"
                          "“覆盖”指网格中心在该图层服务半径之内。建议站点为最大覆盖选址：贪心选点后逐一交换改进。",
           "plan_note": ""},
    "en": {"title": "Service coverage planner", "layer": "Layer", "radius": "Radius (m, optional)",
           "as_of": "As of", "sites": "New sites", "apply": "Update", "district": "District", "area": "Area",
           "zone": "Zone", "population": "Population", "covered": "Covered", "percent": "Coverage",
           "standard": "Standard", "threshold": "Reach", "urban": "urban", "rural": "rural",
           "legend": "Coverage by area", "residents": "residents", "all_residents": "all residents",
           "applicable_of": "Coverage of {cells} residents", "all_of": "Coverage of all residents",
           "gaps": "Largest uncovered clusters (top {n}, {cells} cells; click to zoom)",
           "suggest": "Suggested new sites", "gain": "Newly covered", "cumulative": "Cumulative coverage",
           "download": "Download", "table_csv": "table (CSV)", "table_xlsx": "table (Excel)",
           "report": "Download report (PDF)", "map_png": "map (PNG)", "chart": "Coverage by area",
           "life": "15-minute life circle (composite)", "spaces": "Spaces per 1,000 residents (2SFCA)",
           "no_space": "Residents with no space in reach", "quartiles": "Quartiles of spaces per 1,000 (by residents)",
           "villages_own": "Villages without their own clinic", "villages_reach": "Villages with no clinic in reach",
           "village_rule": "Assignment", "target": "Target", "rank": "#", "no_data": "no data",
           "gap_legend": "Uncovered cluster", "site_legend": "Suggested site", "facilities": "Existing facilities",
           "city": "City", "overridden": " (overridden)", "near": "Near", "place": "Place",
           "lonlat": "lon, lat (WGS-84)", "measure": "Measured", "by": "Distance",
           "by_walk": "along the roads (each layer by its travel mode)", "by_drive": "along the driving network",
           "by_straight": "straight line", "by_default": "default (along the roads when loaded)", "zones": "Areas",
           "zones_none": "districts", "compare": "Before/after (DATE1,DATE2)",
           "compare_title": "Before and after: {a} → {b}", "before": "before", "after": "after",
           "change": "Change in covered", "change_points": "Change (points)",
           "area_to_boundary": "area facilities (parks) measured to their boundary",
           "classes_target": "classes relative to the target ({target}%): 50%, 75%, 90%, 100% of it",
           "classes_quantiles": "classes: quintiles of the areas' figures",
           "classes_fixed": "classes: equal 20-point steps",
           "method": "Method", "working": "Computing…",
           "sites_working": "Computing the suggested sites…",
           "sites_failed": "Suggested sites could not be computed: ", "error_title": "Bad parameter",
           "busy_title": "Not possible just now", "back": "Back to the planner",
           "confidence": "", "synthetic_zones": "The demo zones are synthetic",
           "method_text": "Population: a 250 m grid (synthetic; district totals match the 2020 census). Urban/rural: "
                          "cells with 1,500 or more people per km² are urban, the rest rural; each layer counts only "
                          "the cells it applies to (village clinics rural cells, police stations urban cells). "
                          "Distance: along the roads by default (walking and 'any mode' on the walking network, "
                          "driving on the driving network; a cell centre joins the nearest road position and that "
                          "access leg counts); 'straight line' measures in EPSG:4548 metres. Parks and other areas "
                          "are measured to their boundary. 'Covered' means the cell centre is within the layer's "
                          "reach. Suggested sites: maximal covering, greedy picks improved by interchange.",
           "plan_note": ""},
}


def error_message(exc: Any, lang: str) -> str:
    """What was wrong, in ``lang``: the parameter, and what is allowed."""
    parameter, allowed = getattr(exc, "parameter", None), getattr(exc, "allowed", None)
    if lang == "en":
        return exc.message
    if isinstance(exc, Unavailable):
        return "服务器暂时无法完成此请求（不是参数的问题），请稍后再试。"
    allowed_text = ""
    if isinstance(allowed, dict):
        words = {"min": "最小", "max": "最大"}
        allowed_text = "，".join(f"{words.get(k, k)}：{v}" for k, v in allowed.items())
    elif allowed:
        allowed_text = "、".join(str(a) for a in allowed)
    head = f"参数“{parameter}”的值无效" if parameter else "请求无效"
    return head + (f"。允许的值：{allowed_text}。" if allowed_text else "。")
