"""Every word of the residents' page, in Chinese and in English (one language per page).

The template uses them and ``static/resident*.js`` gets them in the page's
JSON, so the map's own controls, its geolocation errors and its distances
speak the page's language too. ``{name}`` marks a value filled in.
"""
from __future__ import annotations

#: Words of opening hours and their English, longest first; hours whose every Chinese word is here
#: are shown in English on the English page, others in Chinese, marked so.
HOURS_EN: tuple[tuple[str, str], ...] = (
    ("节假日全天", "all day on holidays"), ("周一至周五", "Mon–Fri"), ("周六、周日", "Sat, Sun"),
    ("全天开放", "open all day"), ("24小时", "24 hours"), ("工作日", "weekdays"), ("次日", "next day "),
    ("门诊", "outpatients "), ("急诊", "emergencies "), ("，", ", "), ("、", ", "))

TEXT: dict[str, dict[str, object]] = {
    "zh": {
        "title": "枣庄民生设施地图", "synthetic": "演示数据：设施为合成数据，并非真实地点",
        "skip": "跳到搜索和结果", "hint": "点按地图任意处，或搜索地名、使用定位，查看附近的各类设施",
        "locate": "使用我的位置", "centre_nearest": "查询地图中心附近",
        "search_label": "搜索地名或设施", "search_placeholder": "乡镇、街道、村、道路、设施，或拼音如 dzz",
        "search": "搜索", "switch": "English", "legend": "图例与图层", "legend_help": "勾选要显示和查询的设施",
        "results": "结果", "expand": "展开结果", "collapse": "收起结果", "map_label": "地图：点按任意处查询附近设施",
        "zoom_in": "放大", "zoom_out": "缩小", "attribution_prefix": "Leaflet", "m": "米", "km": "公里",
        "data_attribution": "设施为合成演示数据", "basemap_fallback": "在线底图无法加载，已改用离线地图",
        "cluster_label": "{layer}：{n} 处", "count": "{n} 处", "error": "查询失败：", "in_chinese": "（中文）",
        "amap": "高德导航", "baidu": "百度导航", "geo": "其他地图", "synthetic_tag": "合成数据", "phone": "电话",
        "hours": "开放时间", "capacity": "容量", "here": "你的位置", "map_centre": "地图中心",
        "show_on_map": "在地图上显示：{name}", "more": "更多{layer}", "more_done": "已列出 {n} 个{layer}",
        "no_layers": "请在图例中至少勾选一种设施", "loading": "正在查询…", "nearest": "离你最近",
        "nearest_to": "离“{place}”最近", "you_are_in": "所在区（市）：",
        "outside": "该位置在枣庄市范围之外，结果可能很远", "zoom_cluster": "放大查看（{label}）",
        "isochrone": "步行15分钟可达范围", "isochrone_shown": "已显示步行15分钟可达范围（沿道路）",
        "synthetic_network": "合成路网", "straight_note": "未载入路网：距离为直线距离，实际路程更长",
        "places_found": "找到 {n} 个与“{q}”相关的地点（离地图中心由近到远）", "none": "没有找到“{q}”",
        "more_places": "更多地点", "synthetic_place": "示意位置（合成）", "empty_search": "请输入地名、道路或设施名称",
        "geo_unsupported": "此浏览器不支持定位", "locating": "正在定位…", "no_geo": "无法定位：",
        "geo_denied": "你拒绝了定位权限，可改为搜索地名或查询地图中心附近",
        "geo_unavailable": "暂时无法取得位置，请稍后再试或搜索地名", "geo_timeout": "定位超时，请稍后再试或搜索地名",
        "walk_route": "步行 {d} · 约 {m} 分钟", "drive_route": "驾车 {d} · 约 {m} 分钟",
        "far_route": "约 {d} 公里 · 驾车约 {m} 分钟", "straight_walk": "直线 {d} · 步行至少 {m} 分钟",
        "straight_far": "直线约 {d} 公里 · 驾车至少约 {m} 分钟",
        "offline_labels": "斜体地名为示意位置（合成）",
    },
    "en": {
        "title": "Zaozhuang public service map", "synthetic": "Demo data: facilities are SYNTHETIC, not real places",
        "skip": "Skip to search and results",
        "hint": "Tap anywhere on the map, search a place or use your location to see what is nearby",
        "locate": "Use my location", "centre_nearest": "Nearest to the map centre",
        "search_label": "Search a place or facility",
        "search_placeholder": "Township, street, village, road, facility (or pinyin)", "search": "Search",
        "switch": "中文", "legend": "Legend and layers", "legend_help": "Tick the facilities to show and ask about",
        "results": "Results", "expand": "Show results", "collapse": "Hide results",
        "map_label": "Map: tap anywhere to find nearby facilities", "zoom_in": "Zoom in", "zoom_out": "Zoom out",
        "attribution_prefix": "Leaflet", "m": "m", "km": "km", "data_attribution": "facilities: synthetic demo data",
        "basemap_fallback": "The online map could not be loaded; showing the offline map",
        "cluster_label": "{layer}: {n}", "count": "{n}", "error": "Request failed: ", "in_chinese": " (in Chinese)",
        "amap": "AMap", "baidu": "Baidu Maps", "geo": "Other map app", "synthetic_tag": "synthetic", "phone": "Phone",
        "hours": "Hours", "capacity": "Capacity", "here": "Your position", "map_centre": "the map centre",
        "show_on_map": "Show on the map: {name}", "more": "More {layer}", "more_done": "{n} {layer} listed",
        "no_layers": "Tick at least one kind of facility in the legend", "loading": "Looking…",
        "nearest": "Nearest to you", "nearest_to": "Nearest to {place}", "you_are_in": "District: ",
        "outside": "This position is outside Zaozhuang; results may be far away", "zoom_cluster": "Zoom in ({label})",
        "isochrone": "What I can reach in 15 minutes on foot",
        "isochrone_shown": "Showing what is within a 15-minute walk along the roads",
        "synthetic_network": "synthetic road network",
        "straight_note": "No road network loaded: distances are straight lines; real routes are longer",
        "places_found": "{n} places for “{q}” (nearest to the map centre first)", "none": "Nothing found for “{q}”",
        "more_places": "More places", "synthetic_place": "approximate (synthetic) position",
        "empty_search": "Type a place, road or facility name", "geo_unsupported": "This browser cannot locate you",
        "locating": "Locating…", "no_geo": "Could not locate you: ",
        "geo_denied": "location permission was refused; search a place or use the map centre instead",
        "geo_unavailable": "your position is not available right now; try again or search a place",
        "geo_timeout": "locating took too long; try again or search a place",
        "walk_route": "{d} on foot · about {m} min", "drive_route": "{d} by car · about {m} min",
        "far_route": "about {d} km · about {m} min by car",
        "straight_walk": "{d} in a straight line · at least {m} min on foot",
        "straight_far": "about {d} km in a straight line · at least about {m} min by car",
        "offline_labels": "Names in italics are at approximate (synthetic) positions",
    },
}
