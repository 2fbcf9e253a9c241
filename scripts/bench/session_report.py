#!/usr/bin/env python3
"""Turns replay_session.py rows into markdown tables (stdout) and a JSON summary.

    session_report.py ROWS.jsonl SUMMARY.json

The ideal for a request is what it adds to the previous request of the same
conversation (the main loop, or the subagent's own loop): its whole prompt minus the
previous prompt of that conversation, as llama-server counted them. The first request
of a conversation and every background request (title and the like) are ideal at their
whole prompt. A proxy whose prompts stay byte-stable and a server that keeps each
conversation's cache reach ratio 1.00; each cache miss adds a whole re-prefill.
"""
import json
import sys


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


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    by_label = {lab: [r for r in rows if r["label"] == lab] for lab in labels}
    summary = {}
    for lab, rs in by_label.items():
        ideals = ideal(rs)
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
            "rows": rs,
        }

    print("| run | requests | prompt tokens evaluated | served from cache | ideal | evaluated / ideal | wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for lab, s in summary.items():
        note = f" ({s['failed']} failed)" if s["failed"] else ""
        ratio = f"{s['ratio']:.2f}×" if s["ratio"] else "–"
        print(f"| {lab}{note} | {s['requests']} | {s['prompt_n']:,} | {s['cache_n']:,} | "
              f"{s['ideal']:,} | {ratio} | {s['wall_s']:.0f} s |")
    print()
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
                cells.append(f"{rs[i]['prompt_n']:,} ({rs[i]['cache_n']:,})")
        ideal0 = f"{r0['ideal']:,}" if r0.get("ideal") is not None else "–"
        print(f"| {r0['n']} | {r0['kind']} | {ideal0} | " + " | ".join(cells) + " |")
    with open(sys.argv[2], "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
