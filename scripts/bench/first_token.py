#!/usr/bin/env python3
"""Time to the first token of a streamed answer, for scripts/bench-proxy.sh.

usage: first_token.py URL BODY_FILE SAMPLES

POSTs the body SAMPLES times and prints JSON {"samples": [[first_ms, total_ms], ...]}:
first_ms is when the first "Hello" (the upstream's first token) arrives, whatever the
wire format (OpenAI chunks direct, Anthropic text_delta through a proxy).
"""
import http.client
import json
import os
import sys
import time
from urllib.parse import urlsplit


def one(url, body):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    start = time.perf_counter()
    conn.request("POST", parts.path, body=body, headers={
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": os.environ.get("BENCH_API_KEY", "sk-bench-key"),
    })
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {resp.read(300)!r}")
    first = None
    seen = b""
    while True:
        data = resp.read1(65536)
        if not data:
            break
        if first is None:
            seen += data
            if b"Hello" in seen:
                first = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    if first is None:
        raise SystemExit("the stream never carried the first token")
    return [(first - start) * 1e3, (end - start) * 1e3]


def main():
    url, body_file, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
    body = open(body_file, "rb").read()
    print(json.dumps({"samples": [one(url, body) for _ in range(samples)]}))


if __name__ == "__main__":
    main()
