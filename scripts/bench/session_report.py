#!/usr/bin/env python3
"""Turns replay_session.py rows into markdown tables (stdout) and a JSON summary.

    session_report.py ROWS.jsonl SUMMARY.json [--ideal IDEAL.json]

The ideal for a request is what it adds to the previous request of the same
conversation (the main loop, or the subagent's own loop): its whole prompt minus the
previous prompt of that conversation, as llama-server counted them. The first request
of a conversation and every background request (title and the like) are ideal at their
whole prompt. A proxy whose prompts stay byte-stable and a server that keeps each
conversation's cache reach ratio 1.00; each cache miss adds a whole re-prefill.
"""
import argparse
import json


def ideal(rows):
    prev = {}
    out = []
    for r in rows:
        n_prompt = r.get("n_prompt")
        if n_prompt is None:
            out.append(None)
            continue
        conv = r["kind"] if r["kind"] in ("main", "subagent") else f"bg{r['n']}"
        before = prev.get(conv)
        out.append(n_prompt - before if before is not None and n_prompt >= before else n_prompt)
        prev[conv] = n_prompt
    return out


def simulated(rows, sim):
    """The simulated ideal of each row (None for a row that did not reach llama-server)."""
    by_n = {r["n"]: r["ideal"] for r in sim["requests"]}
    return [by_n.get(r["n"]) if r.get("n_prompt") is not None else None for r in rows]


def clears(rows):
    """Requests at which the proxy's clear point moved (None when its log was not read)."""
    if not any("edit" in r for r in rows):
        return None
    return sum(1 for r in rows if r.get("edit"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows")
    ap.add_argument("summary")
    ap.add_argument("--ideal", help="session_ideal.py's output: the simulated ideal")
    args = ap.parse_args()
    sim = json.load(open(args.ideal)) if args.ideal else None
    sim_by_n = {r["n"]: r for r in sim["requests"]} if sim else {}
    rows = [json.loads(line) for line in open(args.rows) if line.strip()]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    by_label = {lab: [r for r in rows if r["label"] == lab] for lab in labels}
    summary = {}
    for lab, rs in by_label.items():
        ideals = simulated(rs, sim) if sim else ideal(rs)
        for r, i in zip(rs, ideals):
            r["ideal"] = i
        evaluated = sum(r.get("prompt_n") or 0 for r in rs)
        ideal_total = sum(i or 0 for i in ideals)
        summary[lab] = {
            "requests": len(rs),
            "failed": sum(1 for r in rs if not r["ok"]),
            "missing_timings": sum(1 for r in rs if r.get("prompt_n") is None),
            "prompt_n": evaluated,
            "cache_n": sum(r.get("cache_n") or 0 for r in rs),
            "ideal": ideal_total,
            "ratio": round(evaluated / ideal_total, 3) if ideal_total else None,
            "wall_s": round(sum(r["wall_s"] for r in rs), 1),
            "clears": clears(rs),
            "clears_min": sim["clears"] if sim else None,
            "rows": rs,
        }

    head = "| run | requests | prompt tokens evaluated | served from cache | ideal | evaluated / ideal |"
    if sim:
        head += " clears (minimum) |"
    print(head + " wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if sim else "") + " ---: |")
    for lab, s in summary.items():
        note = f" ({s['failed']} failed)" if s["failed"] else ""
        ratio = f"{s['ratio']:.2f}×" if s["ratio"] else "–"
        made = ""
        if sim:
            made = f" {'–' if s['clears'] is None else s['clears']} ({s['clears_min']}) |"
        print(f"| {lab}{note} | {s['requests']} | {s['prompt_n']:,} | {s['cache_n']:,} | "
              f"{s['ideal']:,} | {ratio} |{made} {s['wall_s']:.0f} s |")
    print()
    if sim:
        print(f"Ideal: simulated from the fixture alone (a clear only when a request's o200k input "
              f"exceeds {sim['limit']:,} = {sim['window']:,} - reserve, oldest tool results "
              f"first, down to {sim['target']:,}; what follows the clear point re-evaluated), in "
              f"llama-server's tokens: {sim['ideal']:,}, {sim['clears']} clears.")
        print()
        print("Per request: prompt tokens evaluated (served from cache), `✂` where the proxy")
        print("moved its clear point; o200k is the simulated request's input before → after")
        print("its edit, llama the simulated prompt in llama-server's tokens.")
        print()
        print("| # | kind | o200k | llama | ideal | " + " | ".join(labels) + " |")
        print("| ---: | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in labels) + " |")
    else:
        print("Per request: prompt tokens evaluated (served from cache); the ideal column is the")
        print(f"first run's ({labels[0]}).")
        print()
        print("| # | kind | ideal | " + " | ".join(labels) + " |")
        print("| ---: | --- | ---: | " + " | ".join("---:" for _ in labels) + " |")
    first = by_label[labels[0]]
    for i, r0 in enumerate(first):
        cells = []
        for lab in labels:
            rs = by_label[lab]
            if i >= len(rs):
                cells.append("–")
            elif rs[i].get("prompt_n") is None:
                cells.append("not on llama-server" if rs[i]["ok"] else f"HTTP {rs[i]['status']}")
            else:
                cut = " ✂" if rs[i].get("edit") else ""
                cells.append(f"{rs[i]['prompt_n']:,} ({rs[i]['cache_n']:,}){cut}")
        if sim:
            q = sim_by_n.get(r0["n"], {})
            o200k = f"{q['o200k']:,} → {q['o200k_edited']:,}" if q else "–"
            llama = f"{q['llama_tokens']:,}" if q else "–"
            ideal0 = f"{q['ideal']:,}{' ✂' if q.get('cleared') else ''}" if q else "–"
            print(f"| {r0['n']} | {r0['kind']} | {o200k} | {llama} | {ideal0} | "
                  + " | ".join(cells) + " |")
            continue
        ideal0 = f"{r0['ideal']:,}" if r0.get("ideal") is not None else "–"
        print(f"| {r0['n']} | {r0['kind']} | {ideal0} | " + " | ".join(cells) + " |")
    with open(args.summary, "w") as f:
        json.dump({"ideal": sim, "runs": summary} if sim else summary, f, indent=1)


if __name__ == "__main__":
    main()
