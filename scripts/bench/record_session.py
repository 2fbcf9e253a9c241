#!/usr/bin/env python3
"""Records a real Claude Code session (interactive mode, in a PTY) against the scripted
upstream of session_upstream.py and writes the request bodies as a fixture.

    record_session.py --claude BIN --env-file FILE --out FIXTURE.jsonl

FILE holds `export K='V'` lines, as `ccr-setup env` prints them: the session runs with
exactly the environment `ccr-setup code` sets (ANTHROPIC_BASE_URL is pointed at the
scripted upstream). Two prompts are typed; each ends when the script's final text went
out and Claude Code's own follow-up requests have settled.

The fixture is one JSON object per line, in arrival order:
    {"n": 1, "kind": "main|subagent|background", "path": "/v1/messages", "body": {...}}
with the temporary paths, user and session ids scrubbed to fixed values, so a re-record
on another machine differs only where Claude Code itself changed.
"""
import argparse
import json
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import session_upstream as up  # noqa: E402

ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>]")
FAKE_HOME = "/home/user"
FAKE_PROJECT = "/home/user/project"

APP_PY = "def add(a, b):\n    return a - b\n"
TEST_PY = (
    "from app import add\n\n"
    "assert add(2, 3) == 5, f\"add(2, 3) = {add(2, 3)}\"\n"
    "print(\"ok\")\n"
)


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("export "):
                continue
            key, _, value = line[len("export "):].partition("=")
            parts = shlex.split(value) if value else [""]
            env[key] = parts[0] if parts else ""
    return env


class Pty:
    """Claude Code in a pseudo-terminal; the screen text (ANSI stripped) accumulates."""

    def __init__(self, argv, env, cwd):
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        self.screen = b""
        self.last_output = time.monotonic()
        os.set_blocking(fd, False)
        # 120x40 so Ink lays out normally.
        import fcntl
        import struct
        import termios
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    def pump(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], max(0.0, min(0.2, end - time.monotonic())))
            if not r:
                continue
            try:
                data = os.read(self.fd, 65536)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                self.screen = (self.screen + ANSI.sub(b"", data))[-20000:]
                self.last_output = time.monotonic()

    def text(self):
        return self.screen.decode("utf-8", "replace")

    def type(self, s):
        os.write(self.fd, s.encode())

    def alive(self):
        return os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def stop(self):
        for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                return
            os.kill(self.pid, sig)
            self.pump(2)


def answer_dialogs(term):
    """Trust-folder or permission dialogs: accept (the first option is yes)."""
    text = term.text()
    if re.search(r"trust (the files|this folder)|Do you want to (proceed|make this edit)", text):
        term.screen = b""
        term.type("\r")


def wait_until(term, cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        term.pump(0.5)
        answer_dialogs(term)
        if cond():
            return
        if not term.alive():
            sys.exit(f"record: Claude Code exited while waiting for {what}:\n{term.text()[-2000:]}")
    sys.exit(f"record: timed out after {timeout}s waiting for {what}; screen:\n{term.text()[-2000:]}")


def settle(term, session, quiet):
    """Wait until no request arrived for `quiet` seconds."""
    def quiet_enough():
        with session.lock:
            n = len(session.requests)
        if n != getattr(settle, "n", -1):
            settle.n, settle.t = n, time.monotonic()
        return time.monotonic() - settle.t >= quiet
    settle.n = -1
    wait_until(term, quiet_enough, 120, "Claude Code's requests to settle")


def prompt(term, session, text):
    session.turn_done.clear()
    term.type(text)
    term.pump(0.7)
    term.type("\r")
    wait_until(term, session.turn_done.is_set, 300, f"the turn {text!r} to finish")


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
AGENT_ID = re.compile(r"\ba[0-9a-f]{16}\b")


def scrub(requests, project, home):
    """Fixed paths and ids, so the fixture is the same on every machine."""
    ids = {}

    def fixed_uuid(m):
        v = ids.setdefault(m.group(0), len(ids) + 1)
        return f"00000000-0000-4000-8000-{v:012d}"

    text = json.dumps(requests)
    for real, fake in ((project, FAKE_PROJECT), (home, FAKE_HOME)):
        for path in (real, os.path.realpath(real)):
            text = text.replace(path, fake)
            # Claude Code names per-project folders after the path, non-alphanumerics → `-`.
            text = text.replace(re.sub(r"[^A-Za-z0-9]", "-", path), fake.replace("/", "-"))
    text = UUID.sub(fixed_uuid, text)
    text = HEX64.sub("0" * 64, text)
    text = AGENT_ID.sub("a" + "0" * 16, text)
    return json.loads(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claude", required=True)
    ap.add_argument("--env-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--raw-dir", help="also keep the unscrubbed bodies here")
    ap.add_argument("--long", action="store_true", help="record the long read-heavy session")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ccr-record-")
    home = os.path.join(work, "home")
    project = os.path.join(work, "project")
    os.makedirs(os.path.join(home, ".claude"))
    os.makedirs(project)
    with open(os.path.join(project, "app.py"), "w") as f:
        f.write(APP_PY)
    with open(os.path.join(project, "test_app.py"), "w") as f:
        f.write(TEST_PY)
    with open(os.path.join(home, ".claude.json"), "w") as f:
        json.dump({"hasCompletedOnboarding": True,
                   "projects": {project: {"hasTrustDialogAccepted": True}}}, f)
    with open(os.path.join(home, ".claude", "settings.json"), "w") as f:
        json.dump({"permissions": {"allow": ["Bash", "Edit", "Read", "Task", "Agent"]}}, f)

    if args.long:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for rel in up.LONG_FILES:
            os.makedirs(os.path.join(project, os.path.dirname(rel)), exist_ok=True)
            text = subprocess.run(["git", "-C", root, "show", f"{up.LONG_FILES_COMMIT}:{rel}"],
                                  check=True, capture_output=True).stdout
            with open(os.path.join(project, rel), "wb") as dst:
                dst.write(text)

    session = up.Session(project, long=args.long)
    server = up.serve(session)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    env.update(read_env_file(args.env_file))
    env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{server.server_address[1]}"

    term = Pty([args.claude], env, project)
    try:
        term.pump(3)
        wait_until(term, lambda: time.monotonic() - term.last_output > 3, 60, "the prompt")
        prompts = [up.LONG_PROMPT] if args.long else [up.FIRST_PROMPT, up.SECOND_PROMPT]
        for text in prompts:
            prompt(term, session, text)
            settle(term, session, 6)
    finally:
        term.stop()
        server.shutdown()
    if session.errors:
        sys.exit("record: " + "; ".join(session.errors))

    requests = session.requests
    if args.raw_dir:
        os.makedirs(args.raw_dir, exist_ok=True)
        for i, r in enumerate(requests, 1):
            with open(os.path.join(args.raw_dir, f"{i:02d}-{r['kind']}.json"), "w") as f:
                json.dump(r, f, indent=1)
    requests = scrub(requests, project, home)
    with open(args.out, "w") as f:
        for i, r in enumerate(requests, 1):
            f.write(json.dumps({"n": i, "kind": r["kind"], "path": r["path"], "body": r["body"]},
                               separators=(",", ":")) + "\n")
    kinds = {}
    for r in requests:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"record: {len(requests)} requests ({kinds}) -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
