#!/usr/bin/env python3
"""CONTRIBUTING's size limits: no file in a crate's src/ over 700 lines, no function over 100
(from its `fn` line to the closing brace at the same indent). Exits 1 on a breach.

    python3 scripts/size_limits.py [src | crates/X/src]   (default: every crate)
"""
import os
import re
import sys

if not any(not a.startswith("-") for a in sys.argv[1:]):
    # No root given: check each crate of the workspace on its own (the CLI's src/ and
    # crates/*/src), since a module path means something only inside its crate.
    import glob
    import subprocess

    roots = ["src"] + sorted(glob.glob("crates/*/src"))
    codes = [subprocess.call([sys.executable, __file__, r, *sys.argv[1:]]) for r in roots]
    sys.exit(max(codes))

root = sys.argv[1] if len(sys.argv) > 1 else "src"
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
bad, count, longest = 0, 0, (0, "")
for d, _, fs in sorted(os.walk(root)):
    for f in sorted(fs):
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        lines = open(path).read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) > 700:
            print(f"file {path}: {len(lines)} lines")
            bad += 1
        for i, line in enumerate(lines):
            m = FN.match(line)
            if not m:
                continue
            j = i  # the line that opens the body, or ends a bodiless declaration
            while j < len(lines) and not lines[j].rstrip().endswith(("{", ";")):
                j += 1
            if j == len(lines) or lines[j].rstrip().endswith(";") and "{" not in lines[j]:
                continue
            end = next((k for k in range(i + 1, len(lines)) if lines[k] == m.group(1) + "}"), None)
            if end is None:
                continue  # a one-line function
            n = end - i + 1
            count += 1
            if n > longest[0]:
                longest = (n, f"{path}:{i + 1} {m.group(7)}")
            if n > 100:
                print(f"fn {path}:{i + 1} {m.group(7)}: {n} lines")
                bad += 1
print(f"{count} functions checked; longest {longest[0]} lines ({longest[1]}); {bad} over the limits")
sys.exit(1 if bad else 0)
