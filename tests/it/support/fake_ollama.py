#!/usr/bin/env python3
"""A fake `ollama` executable for tests of `ccr-setup up` (see fake_ollama_bin.rs).

`ollama serve` starts an HTTP server on the address in OLLAMA_HOST that answers like
Ollama (the same shapes as the in-process Rust fake in fake_ollama.rs), and records its
environment so a test can check what `up` passed (OLLAMA_CONTEXT_LENGTH and friends).
The effective context in /api/ps is OLLAMA_CONTEXT_LENGTH (default 4096, as Ollama's
default on small GPUs) capped at the trained context, as real Ollama computes it.

Test-only environment:
  FAKE_OLLAMA_RECORD     append {"argv":…, "env":…, "pid":…} as one JSON line per start
  FAKE_OLLAMA_REQUESTS   append "METHOD PATH" per request
  FAKE_OLLAMA_INSTALLED  comma-separated installed models (default none)
  FAKE_OLLAMA_VERSION    version string (default 0.12.3)
  FAKE_OLLAMA_LIFETIME   seconds before the server exits on its own (default 300)
  FAKE_OLLAMA_START_DELAY  seconds to wait before listening (default 0)
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRAINED = 131072
LAYERS = [3_000_000, 11_000, 7_000]


def parse_host(value):
    value = (value or "").strip().strip("\"'")
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0]
    if not value:
        return "127.0.0.1", 11434
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return host, int(port or 11434)
    if value.count(":") == 1:
        host, port = value.split(":")
        return host or "127.0.0.1", int(port)
    return value, 11434


def norm(name):
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


class State:
    lock = threading.Lock()
    installed = [m for m in os.environ.get("FAKE_OLLAMA_INSTALLED", "").split(",") if m]
    loaded = {}
    context = min(int(os.environ.get("OLLAMA_CONTEXT_LENGTH") or 4096), TRAINED)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-ollama: " + (fmt % args) + "\n")

    def record(self):
        path = os.environ.get("FAKE_OLLAMA_REQUESTS")
        if path:
            with open(path, "a") as f:
                f.write(f"{self.command} {self.path}\n")

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def installed(self, name):
        with State.lock:
            return any(norm(m) == norm(name) for m in State.installed)

    def do_HEAD(self):
        self.record()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.record()
        if self.path == "/":
            body = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/api/version":
            self.send_json({"version": os.environ.get("FAKE_OLLAMA_VERSION", "0.12.3")})
        elif self.path == "/api/tags":
            with State.lock:
                models = [{"name": m, "model": m, "size": sum(LAYERS), "digest": "0" * 64} for m in State.installed]
            self.send_json({"models": models})
        elif self.path == "/api/ps":
            with State.lock:
                models = [{"name": m, "model": m, "size": sum(LAYERS), "size_vram": sum(LAYERS),
                           "context_length": c, "expires_at": "2099-01-01T00:00:00Z"} for m, c in State.loaded.items()]
            self.send_json({"models": models})
        else:
            self.send_json({"error": "not found"}, 404)

    def do_POST(self):
        self.record()
        body = self.body()
        name = body.get("model") or body.get("name") or ""
        if self.path == "/api/show":
            if not self.installed(name):
                return self.send_json({"error": f"model '{name}' not found"}, 404)
            self.send_json({
                "capabilities": ["completion", "tools", "thinking"],
                "model_info": {"general.architecture": "gptoss", "gptoss.context_length": TRAINED,
                               "gptoss.rope.scaling.original_context_length": 4096},
                "details": {"family": "gptoss"},
            })
        elif self.path == "/api/pull":
            self.pull(name)
        elif self.path == "/api/chat":
            if not self.installed(name):
                return self.send_json({"error": f"model '{name}' not found"}, 404)
            with State.lock:
                State.loaded[name] = State.context
            done = "load" if not body.get("messages") else "stop"
            content = "" if done == "load" else "Hello from the fake ollama executable."
            self.send_json({"model": name, "message": {"role": "assistant", "content": content},
                            "done_reason": done, "done": True})
        elif self.path == "/v1/chat/completions":
            self.chat_completions(name, body)
        else:
            self.send_json({"error": "not found"}, 404)

    def pull(self, name):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def line(obj):
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        line({"status": "pulling manifest"})
        if not name.startswith("gpt-oss"):
            line({"error": "pull model manifest: file does not exist"})
        else:
            for i, total in enumerate(LAYERS):
                digest = "sha256:%064x" % (i + 1)
                for done in (0, total // 2, total):
                    line({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": done})
                    time.sleep(0.01)
            line({"status": "verifying sha256 digest"})
            line({"status": "writing manifest"})
            with State.lock:
                if name not in State.installed:
                    State.installed.append(name)
            line({"status": "success"})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def chat_completions(self, name, body):
        if not self.installed(name):
            return self.send_json({"error": {"message": f"model \"{name}\" not found, try pulling it first"}}, 404)
        with State.lock:
            State.loaded[name] = State.context
        tools = body.get("tools") or []
        words = ["Hello ", "from ", "the ", "fake."]
        if tools:
            msg = {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "index": 0, "type": "function",
                   "function": {"name": tools[0]["function"]["name"], "arguments": "{\"timezone\":\"UTC\"}"}}]}
            finish = "tool_calls"
        else:
            msg = {"role": "assistant", "content": "".join(words)}
            finish = "stop"
        usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
        if not body.get("stream"):
            return self.send_json({"id": "chatcmpl-1", "object": "chat.completion", "model": name,
                                   "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(data):
            raw = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()

        def chunk(delta, fin=None):
            return json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": name,
                               "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]})
        if tools:
            event(chunk(msg))
        else:
            for w in words:
                event(chunk({"role": "assistant", "content": w}))
                time.sleep(0.005)
        event(chunk({"role": "assistant", "content": ""}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            event(json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        print("fake ollama: only `ollama serve` is supported", file=sys.stderr)
        return 2
    record = os.environ.get("FAKE_OLLAMA_RECORD")
    if record:
        with open(record, "a") as f:
            f.write(json.dumps({"argv": sys.argv, "env": dict(os.environ), "pid": os.getpid()}) + "\n")
    # A slow start (a big model dir, a cold disk): listen only after this many seconds.
    time.sleep(float(os.environ.get("FAKE_OLLAMA_START_DELAY", "0")))
    host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    lifetime = float(os.environ.get("FAKE_OLLAMA_LIFETIME", "300"))
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    print(f"fake ollama listening on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
