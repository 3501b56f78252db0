"""The fields of a facility table besides its position, parsed as people type them.

Text trimmed (blanks become None), capacities as whole numbers (full-width
digits, ``120个``), dates in the usual Chinese forms, kind labels mapped to
the layer's kind keys, and the columns nobody asked for kept as ``attrs``
(是/否 columns as booleans).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from geo.parse import parse_integer, to_halfwidth
from layers import Layer

_YES = {"是", "有", "yes", "y", "true", "√", "✓", "t"}
_NO = {"否", "无", "没有", "no", "n", "false", "×", "✗", "f"}


def column_text(frame: pd.DataFrame, column: str | None) -> list:
    """Column values with surrounding whitespace removed; blanks become None."""
    if column is None:
        return [None] * len(frame)
    series = frame[column]
    if pd.api.types.infer_dtype(series, skipna=False) == "string":  # every cell text (a CSV): one pass in C
        stripped = series.str.strip().to_numpy(dtype=object, copy=True)
        stripped[stripped == ""] = None
        return stripped.tolist()
    out: list = []
    append = out.append
    for value in series.tolist():
        if value is None or value != value:  # None or NaN
            append(None)
            continue
        text = value.strip() if isinstance(value, str) else str(value).strip()
        append(text or None)
    return out


def _capacity(values: list) -> list:
    """Whole numbers as int; other text kept as given for validate to reject.

    Plain integers take a vectorised path; only the rest (``１２０``, ``120个``,
    ``1,200``, ``abc``) are parsed one by one.
    """
    series = pd.Series(values, dtype=object)
    fast = np.array(pd.to_numeric(series, errors="coerce"), dtype=float)
    whole = np.isfinite(fast) & (np.mod(fast, 1) == 0)
    out = np.empty(len(values), dtype=object)
    out[:] = None
    out[whole] = [int(v) for v in fast[whole]]
    for i in np.flatnonzero(~whole & series.notna().to_numpy()):
        parsed = parse_integer(values[i])
        out[i] = values[i] if parsed is None else parsed
    return out.tolist()


def parse_dates(values: list) -> tuple[list, list[int]]:
    """Dates such as 2022-03-01, 2022/3/1, 2022年3月1日, 20220301, 2022-03 (first day).

    Returns the dates (``datetime.date`` or None) and the indices of non-empty
    values that are not dates.
    """
    text = pd.Series(values, dtype=object).map(lambda v: None if v is None else to_halfwidth(str(v)).strip())
    clean = (text.fillna("").str.replace(r"[年月/.]", "-", regex=True)
             .str.replace(r"(日|[T ]\d{1,2}:\d{2}.*)$", "", regex=True).str.strip("-"))
    parsed = pd.to_datetime(clean, format="%Y-%m-%d", errors="coerce")
    compact = parsed.isna() & clean.str.fullmatch(r"\d{8}")
    parsed[compact] = pd.to_datetime(clean[compact], format="%Y%m%d", errors="coerce")
    month = parsed.isna() & clean.str.fullmatch(r"\d{4}-\d{1,2}")
    parsed[month] = pd.to_datetime(clean[month] + "-1", format="%Y-%m-%d", errors="coerce")
    dates = [None if pd.isna(ts) else ts.date() for ts in parsed]
    bad = np.flatnonzero(parsed.isna().to_numpy() & (clean != "").to_numpy()).tolist()
    return dates, bad


def _kinds(values: list, layer: Layer) -> list:
    """Kind labels mapped to the layer's kind keys where they match; other text kept."""
    lookup = {}
    for key, (zh, en) in layer.kinds.items():
        lookup.update({key.lower(): key, zh.lower(): key, en.lower(): key})
    return [None if v is None else lookup.get(v.lower(), v) for v in values]


def field_values(frame: pd.DataFrame, columns: dict[str, str], layer: Layer,
            rows: np.ndarray) -> tuple[dict[str, list], list[str]]:
    notes: list[str] = []
    fields = {f: column_text(frame, columns.get(f)) for f in ("address", "phone", "opening_hours")}
    capacity, kind = column_text(frame, columns.get("capacity")), column_text(frame, columns.get("kind"))
    fields["capacity"] = _capacity(capacity) if "capacity" in columns else capacity
    fields["kind"] = _kinds(kind, layer) if "kind" in columns else kind
    raw_dates = column_text(frame, columns.get("opened_on"))
    fields["opened_on"], bad = parse_dates(raw_dates) if "opened_on" in columns else (raw_dates, [])
    if bad:
        shown = ", ".join(f"row {rows[i]} {raw_dates[i]!r}" for i in bad[:5])
        notes.append(f"{columns['opened_on']}: {len(bad)} value(s) are not dates ({shown}); left empty")
    return fields, notes


def _bool_column(values: list) -> list | None:
    """The column as booleans when every filled cell is 是/否, yes/no...; else None."""
    filled = {str(v).strip().lower() for v in values if v is not None}
    if not filled or not filled <= (_YES | _NO):
        return None
    return [None if v is None else str(v).strip().lower() in _YES for v in values]


def extra_attrs(frame: pd.DataFrame, columns: dict[str, str]) -> list[dict]:
    """Unused columns per row, keyed by original header; 是/否 columns as booleans."""
    used = set(columns.values())
    unused = [c for c in frame.columns if c not in used]
    if not unused:
        return [{} for _ in range(len(frame))]
    lists = []
    for column in unused:
        values = column_text(frame, column)
        lists.append(_bool_column(values) or values)
    keys = [str(c) for c in unused]
    return [dict(zip(keys, vals, strict=True)) for vals in zip(*lists, strict=True)]
