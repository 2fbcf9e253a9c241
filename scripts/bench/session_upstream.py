"""A scripted Anthropic Messages API for recording a Claude Code session.

Every request body is kept (in arrival order) and answered from a fixed script, so a
real Claude Code in interactive mode runs a realistic coding session against it:

* the main loop (the request that offers the Edit tool and carries the session's first
  prompt) gets, by how many assistant turns its history holds: Read, Bash (the test
  fails), Edit, Bash (it passes), a subagent (Task/Agent), Bash, a final text; then,
  after the second prompt, an Edit and a final text;
* the long session's main loop (the request carrying LONG_PROMPT) gets one Read per file
  of LONG_FILES, in order, then a final text;
* a subagent (history starting with the subagent prompt) gets one Bash call, then text;
* anything else (title, topic and other background requests) gets a short text.

Used by record_session.py; no network beyond the loopback listener.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIRST_PROMPT = "The test in test_app.py fails. Find out why and fix app.py."
SECOND_PROMPT = "Now add a one-line docstring to the add function."
SUBAGENT_PROMPT = "List the Python files in the project directory and report their names."

# The long session: a read-heavy task that outgrows a 32k window (each file about
# 5-7k o200k tokens as Read numbers its lines; record_session.py copies them into the
# project as they were at LONG_FILES_COMMIT of this repository).
LONG_FILES_COMMIT = "aae66815831e7e619cc7c109eeec5399b51d4aca"
LONG_FILES = [
    "src/commands/stats.rs",
    "src/proxy/plan.rs",
    "src/provision/router_config.rs",
    "src/ledger/stats.rs",
    "src/service/mod.rs",
    "src/proxy/tokens/mod.rs",
    "src/ollama/client.rs",
    "src/proxy/anthropic/mod.rs",
    "src/proxy/translate/request.rs",
]
LONG_PROMPT = ("Read the files under src/ that I list, one at a time with the Read tool, then "
               "summarise what each does: " + ", ".join(LONG_FILES) + ".")


def main_loop_script(project):
    """(tool name or None, input or text) per assistant turn of the main loop."""
    app = f"{project}/app.py"
    return [
        ("Read", {"file_path": app}),
        ("Bash", {"command": "python3 test_app.py", "description": "Run the failing test"}),
        ("Edit", {"file_path": app, "old_string": "return a - b", "new_string": "return a + b"}),
        ("Bash", {"command": "python3 test_app.py", "description": "Run the test again"}),
        ("@agent", {"description": "List Python files", "prompt": SUBAGENT_PROMPT,
                    "subagent_type": "general-purpose"}),
        ("Bash", {"command": "wc -l app.py test_app.py", "description": "Count lines"}),
        (None, "Fixed: `add` subtracted instead of adding. The test passes now."),
        ("Edit", {"file_path": app, "old_string": "def add(a, b):\n",
                  "new_string": "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n"}),
        (None, "Added the docstring."),
    ]


def long_script(project):
    """The long session's main loop: a Read per file, then a final text."""
    reads = [("Read", {"file_path": f"{project}/{f}"}) for f in LONG_FILES]
    return reads + [(None, f"Read all {len(LONG_FILES)} files; each is summarised above.")]


SUBAGENT_SCRIPT = [
    ("Bash", {"command": "ls *.py", "description": "List Python files"}),
    (None, "The project has app.py and test_app.py."),
]


def user_texts(body):
    """All text of the user messages, for classifying a request."""
    out = []
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out.extend(b.get("text", "") for b in c if isinstance(b, dict))
    return "\n".join(out)


def tool_names(body):
    return [t.get("name") for t in body.get("tools", []) or []]


def classify(body):
    """main, subagent or background."""
    names = tool_names(body)
    first = ""
    for m in body.get("messages", []):
        if m.get("role") == "user":
            first = user_texts({"messages": [m]})
            break
    if SUBAGENT_PROMPT in first and names:
        return "subagent"
    if (FIRST_PROMPT in first or LONG_PROMPT in first) and "Edit" in names:
        return "main"
    return "background"


def assistant_turns(body):
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


class Session:
    """The recorded requests and the turn-done signal for the driver."""

    def __init__(self, project, long=False):
        self.project = project
        self.long = long
        self.lock = threading.Lock()
        self.requests = []  # (path, body)
        self.turn_done = threading.Event()
        self.errors = []

    def answer(self, path, body):
        kind = classify(body)
        with self.lock:
            self.requests.append({"path": path, "kind": kind, "body": body})
            n = len(self.requests)
        if kind == "main":
            script = (long_script if self.long else main_loop_script)(self.project)
            step = assistant_turns(body)
            if step >= len(script):
                self.errors.append(f"request {n}: main loop past its script (step {step})")
                return None, "Done."
            tool, arg = script[step]
            if tool is None:
                self.turn_done.set()
            elif tool == "@agent":
                names = tool_names(body)
                tool = "Agent" if "Agent" in names else "Task"
            return tool, arg
        if kind == "subagent":
            step = min(assistant_turns(body), len(SUBAGENT_SCRIPT) - 1)
            return SUBAGENT_SCRIPT[step]
        fmt = (body.get("output_config") or {}).get("format")
        if fmt:
            return None, json.dumps({"title": "Fix the failing add test", "isNewTopic": True})
        return None, "Fix the failing add test"


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_answer(model, tool, arg, tool_id):
    usage = {"input_tokens": 100, "output_tokens": 1, "cache_read_input_tokens": 0,
             "cache_creation_input_tokens": 0}
    out = [sse("message_start", {"type": "message_start", "message": {
        "id": "msg_" + tool_id, "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}})]
    if tool is None:
        out.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}}))
        out.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": arg}}))
        stop = "end_turn"
    else:
        out.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "tool_use", "id": tool_id,
                                                                 "name": tool, "input": {}}}))
        out.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": json.dumps(arg)}}))
        stop = "tool_use"
    out.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": 12}}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def json_answer(model, tool, arg, tool_id):
    if tool is None:
        content, stop = [{"type": "text", "text": arg}], "end_turn"
    else:
        content, stop = [{"type": "tool_use", "id": tool_id, "name": tool, "input": arg}], "tool_use"
    return json.dumps({"id": "msg_" + tool_id, "type": "message", "role": "assistant",
                       "model": model, "content": content, "stop_reason": stop,
                       "stop_sequence": None,
                       "usage": {"input_tokens": 100, "output_tokens": 12}}).encode()


def make_handler(session):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def reply(self, status, ctype, data):
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self):
            self.reply(404, "application/json", b'{"type":"error","error":{"type":"not_found_error","message":"no"}}')

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            path = self.path.split("?")[0]
            try:
                body = json.loads(raw)
            except ValueError:
                self.reply(400, "application/json", b'{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}')
                return
            if path.endswith("/count_tokens"):
                self.reply(200, "application/json", b'{"input_tokens": 1000}')
                return
            tool, arg = session.answer(path, body)
            tool_id = f"toolu_{len(session.requests):02d}recorded"
            model = body.get("model", "claude")
            if body.get("stream"):
                self.reply(200, "text/event-stream", stream_answer(model, tool, arg, tool_id))
            else:
                self.reply(200, "application/json", json_answer(model, tool, arg, tool_id))

    return Handler


def serve(session):
    """Start the fake on a free loopback port in a daemon thread; returns the server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(session))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    # Stand-alone: a stand-in for a cloud Anthropic provider in the replay benchmark.
    # Prints its port, then serves until killed.
    import sys
    import time

    srv = serve(Session("/home/user/project"))
    print(srv.server_address[1], flush=True)
    sys.stdout.close()
    while True:
        time.sleep(3600)
