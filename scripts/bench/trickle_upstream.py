#!/usr/bin/env python3
"""A slow OpenAI-compatible streaming upstream for scripts/bench-proxy.sh.

usage: trickle_upstream.py PORT PAUSE_MS

Every POST gets a chat.completion.chunk stream: the role chunk and one content chunk
("Hello") at once, then a pause of PAUSE_MS, then the rest and [DONE]. A proxy that
forwards without buffering shows the first token about as soon as a direct client does;
a buffering one shows it after the pause. Binds 127.0.0.1 only.
"""
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chunk(delta, finish=None):
    body = {
        "id": "chatcmpl-trickle",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if finish:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
    return ("data: " + json.dumps(body, separators=(",", ":")) + "\n\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Like Go's and most servers' sockets: no Nagle delay between the chunks.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            self.send_chunk(chunk({"role": "assistant", "content": ""}) + chunk({"content": "Hello"}))
            time.sleep(PAUSE)
            for word in [" from", " a", " slow", " upstream", "."]:
                self.send_chunk(chunk({"content": word}))
            self.send_chunk(chunk({}, finish="stop") + b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_HEAD = do_GET


if __name__ == "__main__":
    PAUSE = int(sys.argv[2]) / 1000.0
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
