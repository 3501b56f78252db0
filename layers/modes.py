"""Travel modes: how a threshold is travelled and the speed that turns metres into minutes.

Each speed is declared once here. A deployment can override the walking
speed with ``MINSHENG_WALK_SPEED_M_PER_MIN`` (read by the web app's config).
"""
from __future__ import annotations

from layers.model import TravelMode

WALK = TravelMode(
    key="walk", name_zh="步行", name_en="walking", speed_m_per_min=80.0,
    source="4.8 km/h, the usual planning pace behind '15-minute walk ≈ 1,000-1,200 m' (GB 50180-2018 guidance)")
DRIVE = TravelMode(
    key="drive", name_zh="驾车", name_en="driving", speed_m_per_min=500.0,
    source="30 km/h, an urban average with signals and congestion (assumption)")
ANY = TravelMode(
    key="any", name_zh="任意方式", name_en="any mode", speed_m_per_min=250.0,
    source="15 km/h, bicycle or e-bike (assumption), for thresholds stated in minutes by any mode")

MODES: dict[str, TravelMode] = {m.key: m for m in (WALK, DRIVE, ANY)}

#: Walking speed in metres per minute (the default; configurable per deployment).
WALK_SPEED_M_PER_MIN = WALK.speed_m_per_min
