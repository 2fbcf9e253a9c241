#!/usr/bin/env python3
"""Writes the peer benchmark's fixed bodies into a directory (argv[1]).

Upstream answers (served by nginx, OpenAI chat-completions shaped):
  chat.json   one non-streaming chat.completion
  chat.sse    a 200-chunk chat.completion.chunk stream ending in [DONE]
Requests (sent by wrk, Anthropic Messages shaped):
  small.json         a one-line question, non-streaming
  small-stream.json  the same, streaming
  large-stream.json  about 76 KB shaped like Claude Code's requests: three system
                     blocks (the first a billing header), 24 tools with JSON
                     schemas, metadata, thinking, context_management, output_config.

Deterministic: the same files every run, so runs compare.
"""
import json
import os
import random
import sys

LARGE_TARGET_BYTES = 76 * 1024


def words(rng, n):
    vocab = (
        "the file tool call user output command path line return value error read write "
        "edit search pattern directory project code test build run shell result task agent "
        "context model request response stream token cache config option use when must "
        "never always only before after instead prefer avoid example note important"
    ).split()
    return " ".join(rng.choice(vocab) for _ in range(n))


def chat_json():
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }


def chat_sse():
    out = []

    def chunk(delta, finish=None, usage=None):
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            body["usage"] = usage
        out.append("data: " + json.dumps(body, separators=(",", ":")) + "\n\n")

    chunk({"role": "assistant", "content": ""})
    for i in range(198):
        chunk({"content": f" word{i}"})
    chunk({}, finish="stop", usage={"prompt_tokens": 12, "completion_tokens": 198, "total_tokens": 210})
    out.append("data: [DONE]\n\n")
    return "".join(out)


def small(stream):
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    if stream:
        body["stream"] = True
    return body


TOOL_NAMES = [
    "Task", "Bash", "Glob", "Grep", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write",
    "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell",
    "SlashCommand", "ListMcpResourcesTool", "ReadMcpResourceTool", "AskUserQuestion",
    "Skill", "EnterPlanMode", "TaskOutput", "LSP", "NotebookRead",
]


def tool(rng, name, desc_words):
    props = {}
    for j in range(rng.randint(2, 6)):
        props[f"{name.lower()}_param_{j}"] = {
            "type": rng.choice(["string", "number", "boolean"]),
            "description": words(rng, rng.randint(8, 30)),
        }
    return {
        "name": name,
        "description": words(rng, desc_words),
        "input_schema": {
            "type": "object",
            "properties": props,
            "required": sorted(props)[:1],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


def large(desc_words):
    rng = random.Random(76)
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "stream": True,
        "metadata": {"user_id": "user_bench_account__session_00000000-0000-0000-0000-000000000000"},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=sdk-cli"},
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": words(rng, 2600), "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [tool(rng, name, desc_words) for name in TOOL_NAMES],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\n" + words(rng, 300) + "\n</system-reminder>"},
                    {"type": "text", "text": "Find where the config file is loaded and explain it.",
                     "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
    }


def large_bytes():
    # Grow the tool descriptions until the body reaches the target size.
    lo, hi = 10, 2000
    while lo < hi:
        mid = (lo + hi) // 2
        if len(json.dumps(large(mid)).encode()) < LARGE_TARGET_BYTES:
            lo = mid + 1
        else:
            hi = mid
    return json.dumps(large(lo)).encode()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {
        "chat.json": json.dumps(chat_json()).encode(),
        "chat.sse": chat_sse().encode(),
        "small.json": json.dumps(small(False)).encode(),
        "small-stream.json": json.dumps(small(True)).encode(),
        "large-stream.json": large_bytes(),
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
