#!/usr/bin/env python3
"""Turns scripts/bench-proxy.sh's raw records (JSON lines) into a markdown report on
stdout and a summary JSON file. A target measured in several rounds is reported by
the median of each figure over its rounds.

usage: report.py RESULTS.jsonl OUT.json
"""
import json
import statistics
import sys

SCENARIOS = ["small", "small-stream", "large-stream"]
SCENARIO_LABEL = {
    "small": "small, non-streaming",
    "small-stream": "small, streaming (200 chunks)",
    "large-stream": "76 KB Claude Code-shaped, streaming",
}
TARGET_ORDER = ["direct", "ccr-setup", "ccr", "litellm"]
TARGET_LABEL = {
    "direct": "nginx direct (floor)",
    "ccr-setup": "ccr-setup proxy",
    "ccr": "claude-code-router 2.0.0",
    "litellm": "LiteLLM proxy",
}


def order(target):
    # ccr-setup@LABEL (one of several builds compared) sorts with ccr-setup.
    base = target.split("@", 1)[0]
    return TARGET_ORDER.index(base) if base in TARGET_ORDER else len(TARGET_ORDER)


def label(target):
    base, _, build = target.partition("@")
    name = TARGET_LABEL.get(base, base)
    return f"{name} ({build})" if build else name


def load_row(r):
    """One wrk run's figures; CPU per request from the proxy's utime+stime over it."""
    w = r["wrk"]
    seconds = w["duration_us"] / 1e6
    errors = w["errors_connect"] + w["errors_read"] + w["errors_write"] + w["errors_timeout"]
    ticks = r.get("cpu_ticks")
    cpu = ticks * 1e3 / r["clk_tck"] / w["requests"] if ticks is not None and w["requests"] else None
    return {
        "requests": w["requests"],
        "rps": w["requests"] / seconds if seconds else 0.0,
        "p50_ms": w["p50_us"] / 1e3,
        "p90_ms": w["p90_us"] / 1e3,
        "p99_ms": w["p99_us"] / 1e3,
        "cpu_ms_per_req": cpu,
        "non_2xx": w["errors_status"],
        "socket_errors": errors,
    }


def median_of(runs, key):
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def merge_rounds(runs):
    """Medians over a target's rounds (errors summed), plus each round's CPU figure."""
    row = {key: median_of(runs, key) for key in ("requests", "rps", "p50_ms", "p90_ms", "p99_ms", "cpu_ms_per_req")}
    row["non_2xx"] = sum(run["non_2xx"] for run in runs)
    row["socket_errors"] = sum(run["socket_errors"] for run in runs)
    row["rounds"] = len(runs)
    row["cpu_ms_per_req_rounds"] = [run["cpu_ms_per_req"] for run in runs]
    return row


def main():
    records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    meta = next((r for r in records if r["kind"] == "meta"), {})
    end = next((r for r in records if r["kind"] == "end"), {})

    runs = {}
    for r in records:
        if r["kind"] == "load":
            runs.setdefault((r["target"], r["scenario"], r["concurrency"]), []).append(load_row(r))
    loads = {}
    for (target, scenario, conc), rounds in runs.items():
        loads[(target, scenario, conc)] = {"target": target, "scenario": scenario, "concurrency": conc,
                                           **merge_rounds(rounds)}
    for row in loads.values():
        floor = loads.get(("direct", row["scenario"], row["concurrency"]))
        ccr = loads.get(("ccr", row["scenario"], row["concurrency"]))
        measured = row["requests"] > 0
        row["added_p50_ms"] = row["p50_ms"] - floor["p50_ms"] if floor and measured else None
        if not measured:
            row["p50_ms"] = row["p99_ms"] = row["p90_ms"] = None
        row["rps_vs_ccr"] = row["rps"] / ccr["rps"] if ccr and ccr["rps"] else None

    rss = {}
    for r in records:
        if r["kind"] != "rss":
            continue
        entry = rss.setdefault(r["target"], {"idle_kib": None, "peak_kib": 0})
        if entry["idle_kib"] is None or r["group"] == "json":
            entry["idle_kib"] = r["idle_kib"]
        entry["peak_kib"] = max(entry["peak_kib"], r["peak_kib"])

    ttfb = {}
    for r in records:
        if r["kind"] != "ttfb" or not r["samples"]:
            continue
        firsts = [s[0] * 1e3 for s in r["samples"]]
        ttfb[r["target"]] = {"median_ms": statistics.median(firsts), "samples": len(firsts)}
    if "direct" in ttfb:
        for t in ttfb.values():
            t["vs_direct_ms"] = t["median_ms"] - ttfb["direct"]["median_ms"]

    first_token = {}
    for r in records:
        if r["kind"] != "first_token":
            continue
        firsts = [x[0] for x in r["result"]["samples"]]
        first_token[r["target"]] = {"median_ms": statistics.median(firsts), "max_ms": max(firsts),
                                    "samples": len(firsts), "pause_ms": r["pause_ms"]}
    if "direct" in first_token:
        for t in first_token.values():
            t["vs_direct_ms"] = t["median_ms"] - first_token["direct"]["median_ms"]

    failed = sorted({(r["target"], r["group"]) for r in records if r["kind"] == "failed"})

    out = {
        "meta": meta,
        "load_avg_after": end.get("load_avg_after"),
        "load": sorted(loads.values(), key=lambda r: (SCENARIOS.index(r["scenario"]), r["concurrency"], order(r["target"]))),
        "rss": rss,
        "ttfb": ttfb,
        "first_token": first_token,
        "failed": [{"target": t, "group": g} for t, g in failed],
    }
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=2)

    m = meta.get("machine", {})
    print(f"Run {meta.get('date', '?')} on {m.get('cpu', '?')} ({m.get('cores', '?')} cores, "
          f"{m.get('memory_gib', '?')} GiB, {m.get('os', '?')}, kernel {m.get('kernel', '?')}); "
          f"load average {meta.get('load_avg_before', '?')} before, {end.get('load_avg_after', '?')} after. "
          f"{meta.get('duration_s', '?')} s per run after {meta.get('warmup_s', '?')} s warmup; "
          f"versions: {', '.join(f'{k} {v}' for k, v in meta.get('versions', {}).items())}.")
    print()
    rounds = meta.get("rounds", 1)
    if rounds > 1:
        print(f"Medians over {rounds} rounds (the floor measured once); CPU per request's rounds in brackets.")
        print()
    print("| scenario | conc | target | req/s | p50 ms | p99 ms | p50 added vs floor | req/s vs ccr | CPU ms/req | non-2xx |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in out["load"]:
        added = f"{r['added_p50_ms']:+.2f} ms" if r["added_p50_ms"] is not None and r["target"] != "direct" else ""
        ratio = f"{r['rps_vs_ccr']:.1f}×" if r["rps_vs_ccr"] is not None and r["target"] not in ("ccr", "direct") else ""
        errs = r["non_2xx"] + r["socket_errors"]
        p50 = f"{r['p50_ms']:.2f}" if r["p50_ms"] is not None else "none completed"
        p99 = f"{r['p99_ms']:.2f}" if r["p99_ms"] is not None else ""
        cpu = f"{r['cpu_ms_per_req']:.3f}" if r["cpu_ms_per_req"] is not None else ""
        if cpu and r["rounds"] > 1:
            cpu += " [" + ", ".join(f"{c:.3f}" for c in r["cpu_ms_per_req_rounds"] if c is not None) + "]"
        print(f"| {SCENARIO_LABEL[r['scenario']]} | {r['concurrency']} | {label(r['target'])} "
              f"| {r['rps']:.0f} | {p50} | {p99} | {added} | {ratio} | {cpu} | {errs} |")
    if rss:
        print()
        print("| target | RSS idle | RSS peak (VmHWM) |")
        print("| --- | ---: | ---: |")
        for t in sorted(rss, key=order):
            e = rss[t]
            print(f"| {label(t)} | {(e['idle_kib'] or 0) / 1024:.1f} MiB | {e['peak_kib'] / 1024:.1f} MiB |")
    if ttfb:
        print()
        print("| target | time to first byte, small stream (median) | vs direct |")
        print("| --- | ---: | ---: |")
        for t in sorted(ttfb, key=order):
            e = ttfb[t]
            vs = f"{e['vs_direct_ms']:+.2f} ms" if t != "direct" and "vs_direct_ms" in e else ""
            print(f"| {label(t)} | {e['median_ms']:.2f} ms ({e['samples']} runs) | {vs} |")
    if first_token:
        pause = next(iter(first_token.values()))["pause_ms"]
        print()
        print(f"| target | first token, upstream pauses {pause} ms after it (median) | vs direct |")
        print("| --- | ---: | ---: |")
        for t in sorted(first_token, key=order):
            e = first_token[t]
            vs = f"{e['vs_direct_ms']:+.2f} ms" if t != "direct" and "vs_direct_ms" in e else ""
            name = "slow upstream direct (floor)" if t == "direct" else label(t)
            print(f"| {name} | {e['median_ms']:.2f} ms ({e['samples']} runs, max {e['max_ms']:.2f}) | {vs} |")
    for t, g in failed:
        print(f"\nFAILED: {label(t)} did not answer the {g} preflight; its rows are missing.")
    print_goals(out, rss)


# ccr-setup's targets (docs/performance.md): (label, measured, limit, higher is better).
def goals(out, rss):
    def load(scenario, conc, key):
        for r in out["load"]:
            if (r["target"], r["scenario"], r["concurrency"]) == ("ccr-setup", scenario, conc):
                return r[key]
        return None
    peak = rss.get("ccr-setup", {}).get("peak_kib")
    return [
        ("small non-streaming, added p50 at 1 (ms)", load("small", 1, "added_p50_ms"), 0.3, False),
        ("76 KB stream, added p50 at 1 (ms)", load("large-stream", 1, "added_p50_ms"), 2.0, False),
        ("76 KB stream, req/s vs claude-code-router at 32 (x)", load("large-stream", 32, "rps_vs_ccr"), 30.0, True),
        ("time to first byte, added (ms)", out["ttfb"].get("ccr-setup", {}).get("vs_direct_ms"), 1.0, False),
        ("peak RSS (MiB)", peak / 1024 if peak else None, 40.0, False),
    ]


def print_goals(out, rss):
    rows = goals(out, rss)
    if all(measured is None for _, measured, _, _ in rows):
        return
    print()
    print("| goal | measured | limit | |")
    print("| --- | ---: | ---: | --- |")
    for label, measured, limit, higher in rows:
        if measured is None:
            print(f"| {label} | not measured | {limit} | |")
            continue
        met = measured >= limit if higher else measured <= limit
        print(f"| {label} | {measured:.2f} | {'≥' if higher else '≤'} {limit} | {'met' if met else 'MISSED'} |")


if __name__ == "__main__":
    main()
