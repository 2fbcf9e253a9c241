#!/usr/bin/env python3
"""Captures the first main-loop `/v1/messages` request a real Claude Code sends.

    capture_first_request.py --claude BIN --env-file FILE --cwd DIR --home DIR --out FILE

Runs `claude -p PROMPT` in DIR with HOME at DIR and the environment of FILE (`export
K='V'` lines, as `ccr-setup env` prints them), against a scripted Anthropic API on
loopback (session_upstream.py's answers: a short text), and writes the body of the
first request that offers tools (the main loop's, not a title or topic request).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import session_upstream as up  # noqa: E402

PROMPT = "Say hi in one word."


def read_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = shlex.split(value)[0] if value else ""
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--claude", required=True)
    ap.add_argument("--env-file", required=True)
    ap.add_argument("--cwd", required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    session = up.Session(args.cwd)
    server = up.serve(session)
    env = {"PATH": os.environ.get("PATH", ""), "TERM": "dumb", "HOME": args.home}
    env.update(read_env(args.env_file))
    env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    env["ANTHROPIC_AUTH_TOKEN"] = "x"
    env.pop("ANTHROPIC_API_KEY", None)
    with open(os.path.join(args.home, ".claude.json"), "w") as f:
        json.dump({"hasCompletedOnboarding": True}, f)
    run = subprocess.run([args.claude, "-p", PROMPT], cwd=args.cwd, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=180)
    server.shutdown()
    mains = [r["body"] for r in session.requests if r["body"].get("tools")]
    if not mains:
        sys.exit(f"no request with tools captured (claude exit {run.returncode}): "
                 f"{run.stderr.decode(errors='replace')[-2000:]}")
    with open(args.out, "w") as f:
        json.dump(mains[0], f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
