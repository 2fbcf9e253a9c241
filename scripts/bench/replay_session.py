#!/usr/bin/env python3
"""Replays a recorded Claude Code session, in order, to one target and reads what the
llama-server behind it evaluated for each request.

    replay_session.py --fixture F.jsonl --url http://…/v1/messages \
                      --llama http://127.0.0.1:PORT --label NAME --out rows.jsonl

Each request goes as recorded, with `max_tokens` lowered (--max-tokens) so the run
measures prefill, not generation. After each answer, llama-server's `GET /slots` gives
the slot that ran it (the highest task id) and `n_prompt_tokens` (the whole prompt);
the growth of `/metrics`' `llamacpp:prompt_tokens_total` over the request is what it
evaluated (timings.prompt_n); the rest of the prompt came from the cache (cache_n).
(/slots' own per-request counters read 0 once a task is done.) Requests are sent one
at a time, so the newest task is always this request's.

With --proxy-log (ccr-setup's log file), the `context editing …` lines the proxy wrote
while a request was in flight go into that request's row (`edit`): requests are sent one
at a time, so each line belongs to the request that was running.

One JSON row per request is appended to --out.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def post(url, body, timeout):
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "authorization": "Bearer bench-token",
        "x-api-key": "bench-token",
    })
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def prompt_tokens_total(llama):
    """llama-server's `llamacpp:prompt_tokens_total` (needs --metrics): prompt tokens
    evaluated since start. Its growth over one request is that request's prompt_n."""
    with urllib.request.urlopen(f"{llama}/metrics", timeout=30) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("llamacpp:prompt_tokens_total"):
                return int(float(line.split()[-1]))
    raise SystemExit("replay: llama-server /metrics has no llamacpp:prompt_tokens_total")


def newest_slot(llama):
    with urllib.request.urlopen(f"{llama}/slots", timeout=30) as resp:
        slots = json.load(resp)
    done = [s for s in slots if "id_task" in s]
    return max(done, key=lambda s: s["id_task"]) if done else None


def new_edit_lines(path, offset):
    """`context editing` lines appended to the proxy log since `offset`; new offset."""
    if not path:
        return [], offset
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    lines = [ln.decode("utf-8", "replace") for ln in data.splitlines()]
    edits = [ln[ln.index("context editing"):].strip() for ln in lines if "context editing" in ln]
    return edits, offset + len(data)


def answer_ok(status, raw, stream):
    if status != 200:
        return False
    if stream:
        return b"message_stop" in raw and b"event: error" not in raw
    return b'"type":"error"' not in raw.replace(b" ", b"")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--llama", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--subagent-model",
                    help="send subagent requests with this model, as Claude Code does "
                         "under CLAUDE_CODE_SUBAGENT_MODEL (which `ccr-setup code` sets "
                         "when Router.background exists)")
    ap.add_argument("--proxy-log", help="ccr-setup's log: its context-editing lines per request")
    args = ap.parse_args()

    records = [json.loads(line) for line in open(args.fixture) if line.strip()]
    before = newest_slot(args.llama)
    last_task = before["id_task"] if before else -1
    failures = 0
    _, log_offset = new_edit_lines(args.proxy_log, 0)
    with open(args.out, "a") as out:
        for rec in records:
            body = dict(rec["body"])
            body["max_tokens"] = args.max_tokens
            if args.subagent_model and rec["kind"] == "subagent":
                body["model"] = args.subagent_model
            evaluated_before = prompt_tokens_total(args.llama)
            t0 = time.monotonic()
            status, raw = post(args.url, body, args.timeout)
            wall = time.monotonic() - t0
            ok = answer_ok(status, raw, body.get("stream", False))
            slot = newest_slot(args.llama)
            row = {"label": args.label, "n": rec["n"], "kind": rec["kind"], "status": status,
                   "ok": ok, "wall_s": round(wall, 3)}
            if slot and slot["id_task"] != last_task:
                last_task = slot["id_task"]
                prompt_n = prompt_tokens_total(args.llama) - evaluated_before
                n_prompt = slot.get("n_prompt_tokens")
                row.update(slot=slot["id"], n_prompt=n_prompt, prompt_n=prompt_n,
                           cache_n=max(0, n_prompt - prompt_n))
            if args.proxy_log:
                time.sleep(0.2)  # the log line is written before the answer; let it land
                row["edit"], log_offset = new_edit_lines(args.proxy_log, log_offset)
            if not ok:
                failures += 1
                row["error"] = raw[:300].decode("utf-8", "replace")
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"replay {args.label}: #{rec['n']} {rec['kind']:<10} HTTP {status} "
                  f"{wall:6.1f}s prompt_n={row.get('prompt_n')} cache_n={row.get('cache_n')}"
                  + "".join(f" [{e}]" for e in row.get("edit", [])),
                  file=sys.stderr)
    if failures:
        print(f"replay {args.label}: {failures} request(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
