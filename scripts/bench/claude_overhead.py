#!/usr/bin/env python3
"""Measures Claude Code's fixed prompt: what its first request weighs before the user
has said anything, by configuration (default tools, MCP servers, disallowed tools).

    claude_overhead.py --claude BIN --ccr-setup BIN [--out DIR]

For each scenario it runs the real Claude Code headless (`claude -p hi`) in an empty
HOME against a loopback upstream that records the request body and answers "ok", then
counts the body's input tokens with the ccr-setup proxy's o200k estimator
(`POST /v1/messages/count_tokens`, which answers locally for a non-Anthropic provider).
The MCP servers are this file run as `--mcp-server N`: a stdio server speaking MCP's
JSON-RPC with four tools of ordinary size. Scenarios: default tools, one and three MCP
servers, a disabled server, `--disallowedTools`, `permissions.deny`, and the tool list of
`ccr-setup code --lean`. Prints one JSON object per scenario:
    {"scenario", "tokens", "tools", "tool_names", "tools_bytes"}
No network beyond loopback.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The tools each fake MCP server offers, shaped like a typical small server's
# (a ticket tracker): a paragraph of description and a few typed parameters.
MCP_TOOLS = [
    ("search_issues", "Search issues in the tracker by text, label and state. Returns at most `limit` issues with their number, title, state and labels, newest first.",
     {"query": ("string", "Text to search for in titles and bodies."),
      "state": ("string", "open, closed or all."),
      "labels": ("array", "Only issues carrying all of these labels."),
      "limit": ("integer", "How many issues to return (1-100, default 20).")}),
    ("get_issue", "Read one issue with its body, comments, labels, assignees and linked pull requests.",
     {"number": ("integer", "The issue number."),
      "include_comments": ("boolean", "Also return the comments (default true).")}),
    ("create_issue", "Open a new issue. The body is Markdown. Labels that do not exist are created.",
     {"title": ("string", "A one-line title."),
      "body": ("string", "The issue text, in Markdown."),
      "labels": ("array", "Labels to add."),
      "assignees": ("array", "Logins to assign.")}),
    ("add_comment", "Add a comment to an issue or pull request.",
     {"number": ("integer", "The issue or pull request number."),
      "body": ("string", "The comment, in Markdown.")}),
]


def mcp_tool(server, name, description, params):
    props = {}
    for key, (kind, desc) in params.items():
        props[key] = {"type": kind, "description": desc}
        if kind == "array":
            props[key]["items"] = {"type": "string"}
    return {"name": f"{name}_{server}" if server else name, "description": description,
            "inputSchema": {"type": "object", "properties": props,
                            "required": [next(iter(params))]}}


def mcp_server(n):
    """A stdio MCP server: newline-delimited JSON-RPC 2.0 on stdin/stdout."""
    tools = [mcp_tool(n, *t) for t in MCP_TOOLS]
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "id" not in msg:
            continue  # a notification (notifications/initialized)
        method = msg.get("method")
        if method == "initialize":
            result = {"protocolVersion": msg.get("params", {}).get("protocolVersion", "2025-06-18"),
                      "capabilities": {"tools": {}},
                      "serverInfo": {"name": f"tracker{n}", "version": "1.0.0"}}
        elif method == "tools/list":
            result = {"tools": tools}
        elif method in ("resources/list", "prompts/list"):
            result = {method.split("/")[0]: []}
        else:
            reply = {"jsonrpc": "2.0", "id": msg["id"],
                     "error": {"code": -32601, "message": f"no method {method}"}}
            print(json.dumps(reply), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def ok_stream(model):
    usage = {"input_tokens": 1, "output_tokens": 1}
    return b"".join([
        sse("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": "ok"}}),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta",
                              "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": 1}}),
        sse("message_stop", {"type": "message_stop"}),
    ])


class Recorder:
    def __init__(self):
        self.bodies = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_HEAD(self):
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                recorder.bodies.append(body)
                data = ok_stream(body.get("model", "m"))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mcp_config(servers):
    me = os.path.abspath(__file__)
    return {"mcpServers": {f"tracker{n}": {"type": "stdio", "command": sys.executable,
                                          "args": [me, "--mcp-server", str(n)]}
                           for n in servers}}


def run_claude(claude, upstream, args, home, settings=None, claude_json=None):
    """The main request Claude Code sent for `claude -p hi ARGS` (the one with tools)."""
    os.makedirs(os.path.join(home, ".claude"), exist_ok=True)
    project = os.path.join(home, "project")
    os.makedirs(project, exist_ok=True)
    doc = {"hasCompletedOnboarding": True}
    doc.update(claude_json(project) if claude_json else {})
    with open(os.path.join(home, ".claude.json"), "w") as f:
        json.dump(doc, f)
    if settings is not None:
        with open(os.path.join(home, ".claude", "settings.json"), "w") as f:
            json.dump(settings, f)
    env = {"PATH": os.environ["PATH"], "HOME": home,
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{upstream.port}",
           "ANTHROPIC_AUTH_TOKEN": "x", "ANTHROPIC_API_KEY": "",
           "CLAUDE_CODE_ATTRIBUTION_HEADER": "0", "CLAUDE_CODE_TOTAL_TOKENS_REMINDER": "off",
           "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "64"}
    start = len(upstream.bodies)
    subprocess.run([claude, "-p", "hi", *args], env=env, cwd=project, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180, check=False)
    mains = [b for b in upstream.bodies[start:] if b.get("tools")]
    if not mains:
        raise SystemExit(f"no request with tools for args {args}")
    return mains[0]


def count_tokens(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/messages/count_tokens",
                                 data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["input_tokens"]


def start_proxy(ccr_setup, work):
    port = free_port()
    config = os.path.join(work, "ccr-setup.json")
    with open(config, "w") as f:
        json.dump({"HOST": "127.0.0.1", "PORT": port, "LEDGER": False,
                   "Providers": [{"name": "local", "api_base_url":
                                  "http://127.0.0.1:9/v1/chat/completions",
                                  "api_key": "local", "models": ["m"]}],
                   "Router": {"default": "local,m"}}, f)
    env = dict(os.environ, HOME=os.path.join(work, "proxy-home"))
    proc = subprocess.Popen([ccr_setup, "--quiet", "--config", config, "proxy"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the ccr-setup proxy did not answer /health")


def lean_tools():
    """`ccr-setup code --lean`'s list, read from the crate so the two cannot drift."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src",
                       "context_budget.rs")
    with open(src) as f:
        block = re.search(r"LEAN_DISALLOWED_TOOLS: &\[&str\] = &\[(.*?)\];", f.read(), re.S)
    return re.findall(r'"(\w+)"', block.group(1))


def scenarios(work):
    one, three = (os.path.join(work, f"mcp{k}.json") for k in (1, 3))
    for path, servers in ((one, [1]), (three, [1, 2, 3])):
        with open(path, "w") as f:
            json.dump(mcp_config(servers), f)
    return [
        ("default", [], None, None),
        ("mcp:1", ["--mcp-config", one], None, None),
        ("mcp:3", ["--mcp-config", three], None, None),
        ("mcp:3, one disabled in ~/.claude.json", ["--mcp-config", three], None,
         lambda project: {"projects": {project: {"disabledMcpServers": ["tracker3"]}}}),
        ("--disallowedTools WebFetch", ["--disallowedTools", "WebFetch"], None, None),
        ("settings permissions.deny WebFetch", [], {"permissions": {"deny": ["WebFetch"]}}, None),
        ("--disallowedTools mcp__tracker1", ["--mcp-config", one, "--disallowedTools",
                                             "mcp__tracker1"], None, None),
        ("ccr-setup code --lean", ["--disallowedTools=" + ",".join(lean_tools())], None, None),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--claude")
    ap.add_argument("--ccr-setup", help="count tokens with this binary's proxy (else bytes only)")
    ap.add_argument("--mcp-server", type=int)
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME=ARGS: another scenario, claude's ARGS split on spaces")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.mcp_server is not None:
        return mcp_server(a.mcp_server)
    upstream = Recorder()
    with tempfile.TemporaryDirectory() as work:
        proxy, port = start_proxy(a.ccr_setup, work) if a.ccr_setup else (None, None)
        try:
            runs = scenarios(work) + [
                (name, args.split(), None, None)
                for name, _, args in (e.partition("=") for e in a.extra)]
            for i, (name, args, settings, cj) in enumerate(runs):
                body = run_claude(a.claude, upstream, args, os.path.join(work, f"home{i}"),
                                  settings, cj)
                names = [t["name"] for t in body["tools"]]
                row = {"scenario": name, "tokens": count_tokens(port, body) if port else None,
                       "tools": len(names), "tool_names": names,
                       "tools_bytes": len(json.dumps(body["tools"]))}
                print(json.dumps(row), flush=True)
                if a.out:
                    os.makedirs(a.out, exist_ok=True)
                    with open(os.path.join(a.out, f"{i}.json"), "w") as f:
                        json.dump(body, f)
        finally:
            if proxy:
                proxy.terminate()
                proxy.wait()


if __name__ == "__main__":
    main()
