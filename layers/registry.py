"""Facility layers as data: one record per layer, and every fact about it.

Each :class:`~layers.model.Layer` is one record: its key, names in Chinese and
English, where its standard applies (urban cells, rural cells or both),
the service threshold with its source (from the project's standards), the
target it is reported against, the extra figures it gets, the capacity field
where capacity means something, its report and demo counts, and a map style.
A change to a threshold, a target or a count touches one record here and
nothing else; a new facility type is one new record (and the demo generator
places it by its ``demo.placement`` rule).

Thresholds are metres in a projected CRS (EPSG:4548), never degrees.
"""
from __future__ import annotations

from layers.errors import UnknownLayerError
from layers.model import DemoKind, DemoSpec, Layer, Style, Target, Threshold

#: People per km² at or above which a demand cell counts as urban (GHSL
#: Degree of Urbanisation "urban centre" density). A setting, not a constant.
URBAN_DENSITY_PER_KM2 = 1500.0

LAYERS: dict[str, Layer] = {
    layer.key: layer
    for layer in (
        Layer(
            key="service_office", name_zh="政务服务网点", name_en="Government service offices",
            geometry_kind="point", in_composite=True,
            threshold=Threshold(
                urban_m=1000, rural_m=3000, mode="walk", rural_mode="any",
                standard_zh="山东“1530”政务服务圈：城区步行15分钟（约1000米），乡村30分钟（约3000米）",
                standard_en="Shandong '1530' government-service circle: 15-minute walk in town "
                            "(about 1,000 m), 30 minutes in the countryside (about 3,000 m)",
                source="Shandong county government pages (e.g. Boxing, Dezhou); 15-minute walk "
                       "≈ 800–1,000 m as cited with GB 50180-2018. Metres are a conversion.",
                confidence="circle confirmed locally; metres are a conversion"),
            style=Style(color="#1f77b4", icon="building"),
            report_count=2500, report_note_zh="政务服务地图上的2500个政务服务网点",
            report_note_en="2,500 offices on the government-service map",
            demo=DemoSpec("offices", {"service_office": DemoKind(
                2500, "政务服务网点", "SO", "周一至周五 09:00-12:00, 13:30-17:00", "mostly_before_2022")})),
        Layer(
            key="police_station", name_zh="便民警务站", name_en="Convenience police stations",
            geometry_kind="point", applies_to=("urban",), in_composite=True,
            threshold=Threshold(
                urban_m=1500, rural_m=1500, mode="drive",
                standard_zh="地方“1-3-5分钟”快速响应圈（非国家标准）：3分钟巡逻车程约1500米",
                standard_en="Local '1-3-5 minute' rapid-response circles (local practice, not a "
                            "national standard): 3 minutes at patrol speed ≈ 1,500 m",
                source="Hunan province; Wuhan's 465 response circles. No national norm found.",
                confidence="local practice, not a national standard"),
            style=Style(color="#d62728", icon="shield"),
            report_count=37, report_note_zh="新建或改造便民警务站37处",
            report_note_en="37 new or rebuilt convenience police stations",
            demo=DemoSpec("urban", {"police_station": DemoKind(37, "便民警务站", "PS", "24小时", "h1_2022")})),
        Layer(
            key="pocket_park", name_zh="口袋公园与公园", name_en="Pocket parks and parks",
            geometry_kind="polygon", applies_to=("urban",), in_composite=True,
            threshold=Threshold(
                urban_m=500, rural_m=500, mode="walk", options_m=(300.0,),
                standard_zh="GB/T 51346-2019 第4.3.4条：公园500米服务半径（“300米见绿、500米见园”）",
                standard_en="GB/T 51346-2019 clause 4.3.4: 500 m to a park or plaza "
                            "('300 m to green, 500 m to a park')",
                source="GB/T 51346-2019 clause 4.3.4 (500 m, national standard); 300 m is the "
                       "traditional green-space indicator.",
                confidence="500 m: national standard; 300 m: traditional indicator"),
            target=Target(90.0, "GB/T 51346-2019：公园500米覆盖率高于90%",
                          "GB/T 51346-2019: above 90% within 500 m of a park",
                          "GB/T 51346-2019 clause 4.3.4 (new districts 100%, old 80%)"),
            style=Style(color="#23762b", icon="tree"),
            kinds={"pocket_park": ("口袋公园", "Pocket park"), "park": ("公园", "Park")},
            report_count=73, report_note_zh="新建或改造口袋公园61处、公园12处",
            report_note_en="61 new or rebuilt pocket parks plus 12 parks",
            demo=DemoSpec("parks", {
                "pocket_park": DemoKind(61, "口袋公园", "PP", "全天开放", "h1_2022"),
                "park": DemoKind(12, "公园", "PK", "06:00-22:00", "before_2022")})),
        Layer(
            key="parking", name_zh="公共停车场", name_en="Public parking",
            geometry_kind="point", applies_to=("urban",), in_composite=True, figures=("supply_ratio",),
            capacity_field="capacity", capacity_unit_zh="个车位", capacity_unit_en="spaces",
            threshold=Threshold(
                urban_m=500, rural_m=500, mode="walk",
                standard_zh="步行500米（假设，无国家标准），按车位数做两步移动搜索法（2SFCA）",
                standard_en="500 m walk (an assumption: no standard found), weighted by spaces "
                            "in a two-step floating catchment (2SFCA)",
                source="No standard found; 300–500 m is the usual acceptable walk from a car park.",
                confidence="assumption"),
            style=Style(color="#7a4fa0", icon="car"),
            kinds={"government_offhours": ("机关事业单位错时开放", "Government lot opened off-hours"),
                   "new_public": ("新增公共停车位", "New public spaces")},
            report_count=None, report_note_zh="机关事业单位错时开放停车位6235个，新增公共停车位3528个",
            report_note_en="6,235 government spaces opened off-hours plus 3,528 new spaces",
            demo=DemoSpec("parking", {
                "government_offhours": DemoKind(110, "机关事业单位错时开放停车场", "PG",
                                                "工作日 18:00-次日08:00，节假日全天", "mostly_before_2022",
                                                capacity=6235),
                "new_public": DemoKind(60, "公共停车场", "PN", "24小时", "h1_2022", capacity=3528)})),
        Layer(
            key="village_clinic", name_zh="村卫生室", name_en="Village clinics",
            geometry_kind="point", applies_to=("rural",), in_composite=True, figures=("per_village",),
            threshold=Threshold(
                urban_m=2500, rural_m=2500, mode="any",
                standard_zh="《村卫生室管理办法（试行）》第十三条：原则上每个行政村一所；"
                            "2500米约为骑行15分钟（假设）",
                standard_en="Village Clinic Management Method (trial, 2014) art. 13: one clinic "
                            "per administrative village; 2,500 m ≈ 15 minutes by bicycle (assumption)",
                source="Village Clinic Management Method (2014) art. 13; NHC (2022) county "
                       "'15-minute medical and health service circle'.",
                confidence="one-per-village: national rule; metres: assumption"),
            target=Target(None, "每个行政村均有村卫生室服务", "Every administrative village served by a clinic",
                          "Village Clinic Management Method (trial, 2014) art. 13"),
            style=Style(color="#a85100", icon="plus-square"),
            report_count=1496, report_note_zh="村卫生室1496处，其中1211处配备康复设备",
            report_note_en="1,496 village clinics, 1,211 with rehabilitation equipment",
            demo=DemoSpec("villages", {"village_clinic": DemoKind(
                1496, "村卫生室", "VC", "08:00-12:00, 14:00-17:30", "mostly_before_2022",
                flags={"rehab_equipment": 1211})})),
        Layer(
            key="rehab_home", name_zh="如康家园残疾人之家", name_en="Rukang homes for people with disabilities",
            geometry_kind="point",
            threshold=Threshold(
                urban_m=3000, rural_m=5000, mode="any",
                standard_zh="无距离标准：山东“如康家园”按乡镇（街道）设置残疾人之家；"
                            "城区3000米、乡村5000米约为一个乡镇（街道）的服务范围（假设）",
                standard_en="No distance standard: Shandong's 'Rukang Homes' are set up per township or "
                            "street; 3,000 m in town and 5,000 m in the countryside approximate one "
                            "township's reach (assumption)",
                source="No national or provincial distance standard found. Shandong Disabled Persons' "
                       "Federation 'Rukang Homes' (如康家园) programme: homes at township/street level.",
                confidence="assumption: no distance standard exists"),
            style=Style(color="#8c564b", icon="wheelchair"),
            report_count=21, report_note_zh="如康家园残疾人之家21处",
            report_note_en="21 Rukang homes for people with disabilities",
            demo=DemoSpec("towns", {"rehab_home": DemoKind(
                21, "如康家园残疾人之家", "RH", "周一至周五 08:30-17:00", "h1_2022")})),
        Layer(
            key="children_station", name_zh="留守儿童成长站", name_en="Growth stations for left-behind children",
            geometry_kind="point", applies_to=("rural",),
            threshold=Threshold(
                urban_m=3000, rural_m=3000, mode="any",
                standard_zh="无距离标准：农村留守儿童关爱服务设在村、镇；3000米约为骑行15分钟（假设）",
                standard_en="No distance standard: care for left-behind children is given in villages and "
                            "townships; 3,000 m ≈ 15 minutes by bicycle (assumption)",
                source="No distance standard found for left-behind children's stations; the rural-only "
                       "scope follows the programme (children whose parents work away live in villages).",
                confidence="assumption: no distance standard exists"),
            style=Style(color="#a23b72", icon="child"),
            report_count=10, report_note_zh="留守儿童成长站10处",
            report_note_en="10 growth stations for left-behind children",
            demo=DemoSpec("rural", {"children_station": DemoKind(
                10, "留守儿童成长站", "CS", "周六、周日 09:00-17:00", "h1_2022")})),
        Layer(
            key="micro_fire_station", name_zh="微型消防站（3A级以上景区）",
            name_en="Micro fire stations at 3A+ scenic spots", geometry_kind="point",
            threshold=Threshold(
                urban_m=1000, rural_m=1000, mode="any",
                standard_zh="《消防安全重点单位微型消防站建设标准（试行）》（公安部消防局，2015）：“3分钟到场”；"
                            "1000米为3分钟的距离换算（假设）",
                standard_en="Micro fire station building standard (trial), MPS Fire Bureau 2015: on the "
                            "scene within 3 minutes; 1,000 m is a conversion of those 3 minutes (assumption)",
                source="Ministry of Public Security Fire Bureau (2015), micro fire station standards (trial) "
                       "for key units and communities: '3 minutes to the scene'. Metres: conversion.",
                confidence="3 minutes: national guidance; metres: conversion"),
            style=Style(color="#b03000", icon="fire-extinguisher"),
            report_count=16, report_note_zh="3A级以上景区微型消防站16处",
            report_note_en="16 micro fire stations at scenic spots rated 3A and above",
            demo=DemoSpec("rural", {"micro_fire_station": DemoKind(
                16, "景区微型消防站", "MF", "24小时", "h1_2022")})),
        Layer(
            key="hospice", name_zh="安宁疗护服务试点机构", name_en="Hospice care pilot institutions",
            geometry_kind="point",
            threshold=Threshold(
                urban_m=10000, rural_m=10000, mode="drive",
                standard_zh="无距离标准：国家卫生健康委安宁疗护试点以县（区）为单位布局；"
                            "10000米约为驾车20分钟（假设）",
                standard_en="No distance standard: the National Health Commission's hospice-care pilots are "
                            "planned per county or district; 10,000 m ≈ a 20-minute drive (assumption)",
                source="No distance standard found. National Health Commission hospice (palliative) care "
                       "pilot programme.",
                confidence="assumption: no distance standard exists"),
            style=Style(color="#5b4a9e", icon="heart"),
            report_count=26, report_note_zh="安宁疗护服务试点机构26家",
            report_note_en="26 hospice care pilot institutions",
            demo=DemoSpec("urban", {"hospice": DemoKind(
                26, "安宁疗护试点机构", "HO", "24小时", "before_2022")})),
        Layer(
            key="tertiary_hospital", name_zh="三级公立医院", name_en="Tertiary public hospitals",
            geometry_kind="point",
            threshold=Threshold(
                urban_m=15000, rural_m=15000, mode="drive",
                standard_zh="无距离标准：三级医院按地市人口规划设置；15000米约为驾车30分钟（假设）",
                standard_en="No distance standard: tertiary hospitals are planned by a city's population; "
                            "15,000 m ≈ a 30-minute drive (assumption)",
                source="No distance standard found; tertiary hospitals are planned per city population "
                       "(medical institution planning guidance).",
                confidence="assumption: no distance standard exists"),
            style=Style(color="#006d77", icon="hospital"),
            report_count=8, report_note_zh="三级公立医院8家",
            report_note_en="8 tertiary public hospitals",
            demo=DemoSpec("seats", {"tertiary_hospital": DemoKind(
                8, "三级公立医院", "TH", "门诊 08:00-17:00，急诊24小时", "before_2022")})),
    )
}

#: The keys as the registry was loaded (for command-line choices and tests).
LAYER_KEYS: tuple[str, ...] = tuple(LAYERS)


def layer_keys() -> tuple[str, ...]:
    """The keys of the registry as it is now (what request handling checks against)."""
    return tuple(LAYERS)


def get_layer(key: object) -> Layer:
    """The layer record for ``key``; the error lists the allowed keys."""
    if isinstance(key, str) and key in LAYERS:
        return LAYERS[key]
    raise UnknownLayerError(key, LAYER_KEYS)
