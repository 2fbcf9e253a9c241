#!/usr/bin/env python3
"""The ideal prompt evaluation of a recorded session under context editing, computed
from the fixture alone (independent of what the proxy under test does).

    session_ideal.py --fixture F.jsonl --ccr-setup-bin BIN --llama http://127.0.0.1:PORT \
                     --out IDEAL.json [--window 32768] [--reserve 4096] [--target-percent 70]

The stated rule, simulated per conversation (the main loop, the subagent, each
background request on its own): a request is edited only when it would not fit, that is when its o200k input
(exact: `POST /v1/messages/count_tokens` of a ccr-setup proxy with no context_window,
which counts what an OpenAI-kind target receives) exceeds window - reserve. Then the
oldest tool results not yet cleared, never those of the last message, are replaced by
the proxy's stub (same wording) one by one until the input is at most target-percent of
the window. Cleared results stay cleared in later requests (the clear point only moves
forward), so the edited history is the same bytes from turn to turn.

Each simulated request is then put in llama-server's own tokens: the same ccr-setup
proxy translates it to the OpenAI chat body it would send (captured by a loopback
stand-in for the upstream), llama-server's `/apply-template` renders it with the
model's chat template and `/tokenize` counts it. The ideal evaluation of a request is
its token sequence minus the longest common prefix with the previous simulated prompt
of the same conversation: what each request adds, and at a clear everything after the
clear point. A conversation's first request and background requests count whole.

Writes IDEAL.json: the budget, per request n, kind, o200k input before and after the
simulated edit, results cleared by it, llama-server tokens and the ideal; and `clears`,
the number of requests at which the clear point moved (the minimum under the rule).
"""
import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MIN_GAIN = 32  # the proxy leaves a result whose clearing saves less than this


def post(url, body, timeout=120):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          "anthropic-version": "2023-06-01",
                                          "authorization": "Bearer ideal"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


class Capture:
    """A stand-in OpenAI upstream that keeps the last chat body it was sent."""

    def __init__(self):
        self.last = None
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                capture.last = body
                if body.get("stream"):
                    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                             "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                 "content": "ok"},
                                          "finish_reason": "stop"}]}
                    data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
                    ctype = "text/event-stream"
                else:
                    data = json.dumps({"id": "c", "object": "chat.completion", "model": "m",
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant",
                                                                "content": "ok"}}],
                                       "usage": {"prompt_tokens": 1,
                                                 "completion_tokens": 1}}).encode()
                    ctype = "application/json"
                self.send_response(200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proxy:
    """A ccr-setup proxy with no context_window (so it edits nothing) in front of Capture."""

    def __init__(self, binary, upstream_port, work):
        self.port = free_port()
        config = os.path.join(work, "ideal-config.json")
        with open(config, "w") as f:
            json.dump({"HOST": "127.0.0.1", "PORT": self.port,
                       "Providers": [{"name": "llama", "api_key": "local", "models": ["smollm2"],
                                      "api_base_url": f"http://127.0.0.1:{upstream_port}/v1/chat/completions"}],
                       "Router": {"default": "llama,smollm2"}}, f)
        self.log = open(os.path.join(work, "ideal-proxy.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--quiet", "--config", config, "proxy", "--host", "127.0.0.1",
             "--port", str(self.port)],
            env=dict(os.environ, HOME=os.path.join(work, "home")),
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit("session_ideal: the ccr-setup proxy exited at start")
                time.sleep(0.1)
        sys.exit("session_ideal: the ccr-setup proxy did not answer")

    def count(self, body):
        b = {k: v for k, v in body.items() if k not in ("stream", "max_tokens")}
        return json.loads(post(f"http://127.0.0.1:{self.port}/v1/messages/count_tokens", b))[
            "input_tokens"]

    def translate(self, body, capture):
        b = dict(body, stream=False, max_tokens=1)
        capture.last = None
        post(f"http://127.0.0.1:{self.port}/v1/messages", b)
        if capture.last is None:
            sys.exit("session_ideal: the proxy sent nothing upstream")
        return capture.last

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def stub(tool, tool_input, tokens):
    """The proxy's stub (crates/ccr-proxy/src/proxy/context_edit/stubs.rs, cleared_result)."""
    path = (tool_input or {}).get("file_path") if isinstance(tool_input, dict) else None
    read_only = ("Read", "Grep", "Glob", "LS", "WebFetch", "WebSearch", "NotebookRead")
    if tool == "Read" and path:
        what = f"the contents of {path}"
    elif path:
        what = f"the output of {tool} on {path}"
    else:
        what = f"the output of this {tool} call"
    if tool == "Read":
        again = "If you need it again, Read the file again."
    elif tool in read_only:
        again = f"If you need it again, make the same {tool} call again."
    else:
        again = "It is no longer available; do not repeat the call only to see it again."
    return (f"[ccr-setup cleared this result (about {tokens} tokens) to keep the conversation "
            f"within the local model's context window. It held {what}. {again}]")


def results(body):
    """(message index, block index, tool_use_id, tool, input) of each tool result."""
    calls, out = {}, []
    for m, msg in enumerate(body["messages"]):
        if not isinstance(msg.get("content"), list):
            continue
        for b, block in enumerate(msg["content"]):
            if block.get("type") == "tool_use":
                calls[block["id"]] = (block.get("name", "tool"), block.get("input"))
            elif block.get("type") == "tool_result":
                tool, tool_input = calls.get(block["tool_use_id"], ("tool", None))
                out.append((m, b, block["tool_use_id"], tool, tool_input))
    return out


def apply_clears(body, cleared, proxy):
    """`body` with the results in `cleared` (id -> stub) replaced."""
    body = copy.deepcopy(body)
    for m, b, tid, _, _ in results(body):
        if tid in cleared:
            body["messages"][m]["content"][b]["content"] = cleared[tid]
    return body


def simulate(body, cleared, limit, target, proxy):
    """Edit `body` by the rule; returns (edited body, input before, after, newly cleared)."""
    edited = apply_clears(body, cleared, proxy)
    before = proxy.count(edited)
    now, newly = before, []
    if before <= limit:
        return edited, before, now, newly
    last = len(body["messages"]) - 1
    for m, b, tid, tool, tool_input in results(body):
        if now <= target:
            break
        if m == last or tid in cleared:
            continue
        empty = copy.deepcopy(edited)
        empty["messages"][m]["content"][b]["content"] = ""
        tokens = now - proxy.count(empty)
        trial = copy.deepcopy(edited)
        text = stub(tool, tool_input, tokens)
        trial["messages"][m]["content"][b]["content"] = text
        after = proxy.count(trial)
        if after + MIN_GAIN > now:
            continue
        cleared[tid] = text
        edited, now = trial, after
        newly.append(tid)
    return edited, before, now, newly


def llama_tokens(llama, chat):
    chat = {k: v for k, v in chat.items() if k not in ("stream", "stream_options")}
    prompt = json.loads(post(f"{llama}/apply-template", chat))["prompt"]
    # As llama-server tokenizes a chat prompt: special tokens added and parsed.
    return json.loads(post(f"{llama}/tokenize", {"content": prompt, "add_special": True,
                                                 "parse_special": True}))["tokens"]


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--ccr-setup-bin", required=True)
    ap.add_argument("--llama", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=int, default=32768)
    ap.add_argument("--reserve", type=int, default=4096)
    ap.add_argument("--target-percent", type=int, default=70)
    args = ap.parse_args()
    limit = args.window - min(args.reserve, args.window // 2)
    target = min(args.window * args.target_percent // 100, limit)

    records = [json.loads(line) for line in open(args.fixture) if line.strip()]
    work = tempfile.mkdtemp(prefix="ccr-ideal-")
    capture = Capture()
    proxy = Proxy(args.ccr_setup_bin, capture.port, work)
    convs = {}  # first message -> {"cleared": {id: stub}, "tokens": [...]}
    rows, clears = [], 0
    try:
        for rec in records:
            body = rec["body"]
            # One conversation per kind (main loop, subagent), as session_report.py's
            # ideal has it; each background request is its own.
            key = rec["kind"] if rec["kind"] in ("main", "subagent") else f"bg{rec['n']}"
            conv = convs.setdefault(key, {"cleared": {}, "tokens": None})
            edited, before, after, newly = simulate(body, conv["cleared"], limit, target, proxy)
            tokens = llama_tokens(args.llama, proxy.translate(edited, capture))
            background = rec["kind"] not in ("main", "subagent")
            prev = None if background else conv["tokens"]
            shared = common_prefix(tokens, prev) if prev else 0
            conv["tokens"] = tokens
            clears += 1 if newly else 0
            rows.append({"n": rec["n"], "kind": rec["kind"], "o200k": before,
                         "o200k_edited": after, "cleared": len(newly),
                         "cleared_total": len(conv["cleared"]) if not background else 0,
                         "llama_tokens": len(tokens), "ideal": len(tokens) - shared})
            print(f"ideal: #{rec['n']} {rec['kind']:<10} o200k {before:>6} -> {after:>6}"
                  f"{f' (cleared {len(newly)})' if newly else '':<14} llama {len(tokens):>6}"
                  f" ideal {len(tokens) - shared:>6}", file=sys.stderr)
    finally:
        proxy.stop()
        capture.server.shutdown()
    with open(args.out, "w") as f:
        json.dump({"window": args.window, "limit": limit, "target": target, "clears": clears,
                   "ideal": sum(r["ideal"] for r in rows), "requests": rows}, f, indent=1)


if __name__ == "__main__":
    main()
