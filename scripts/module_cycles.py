#!/usr/bin/env python3
"""Import cycles between sibling modules under each crate's src/ (CONTRIBUTING: no module imports
one above it). Reads every `crate::…`, `super::…` and `self::…` path of non-test code:
`use` trees with their groups (`use super::{a, b::{c, d}}`), and paths in code. Test
code is left out: the item after each `#[cfg(test)]` (an inline `mod tests { … }`, a
function, an import) and the files of `#[cfg(test)] mod x;` declarations; the code
after such an item is read. An import of a.b.c from a.x.y is an edge a.b -> a.x between
siblings under `a`. Prints each cycle with its edges; exits 1 when there is one.

    python3 scripts/module_cycles.py [src | crates/X/src] [-v]   (default: every crate)    (-v: print every sibling edge)
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

root = next((a for a in sys.argv[1:] if not a.startswith("-")), "src")


def module_path(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    return rel[:-1] if rel[-1] in ("mod", "lib", "main") else rel


RAW = re.compile(r'b?r(#*)"')
CHAR = re.compile(r"'(\\.[^']*|[^\\'])'")


def strip(text):
    """The code without comments, string and char literals (each becomes `""` or a
    space), so braces and `crate::` inside them are not read as code."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (m := RAW.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, m.end())
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and (m := CHAR.match(text, i)):
            i = m.end()  # a char literal; a lifetime (`'a`) does not match
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


ATTRS = r"(?:\s*#\[[^\]]*\])*\s*"


def item_end(text, i):
    """Where the item starting at `i` ends: after its `;` or its closing brace."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and c == "}":
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return i


def without_tests(path, text, test_files):
    """`text` with each `#[cfg(test)]` item cut out; the files of cut `mod x;`
    declarations are added to `test_files`."""
    out, pos = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        decl = re.compile(ATTRS + r"(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;").match(text, m.end())
        if decl:
            attrs = text[m.end() : decl.end()]
            given = re.search(r'#\[path\s*=\s*"([^"]+)"\]', attrs)
            here = os.path.dirname(path)
            if given:
                test_files.add(os.path.normpath(os.path.join(here, given.group(1))))
            else:
                stem = os.path.basename(path)[:-3]
                base = here if stem in ("mod", "lib", "main") else os.path.join(here, stem)
                test_files.add(os.path.normpath(os.path.join(base, decl.group(1) + ".rs")))
                test_files.add(os.path.normpath(os.path.join(base, decl.group(1))))
        pos = item_end(text, m.end())
    out.append(text[pos:])
    return "".join(out)


def split_top(s):
    """`s` split at its commas outside braces."""
    parts, depth, cur = [], 0, []
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def use_paths(tree, prefix=()):
    """Every path a `use` tree names: `a::{b, c::{d, e}}` gives a::b, a::c::d, a::c::e."""
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree.strip())
    if "{" not in tree:
        tree = re.split(r"\s+as\s+", tree)[0]
        segs = [s for s in tree.split("::") if s and s != "*"]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        return [list(prefix) + segs]
    head, body = tree.split("{", 1)
    body = body[: body.rfind("}")]
    segs = list(prefix) + [s for s in head.split("::") if s]
    paths = []
    for part in split_top(body):
        paths += use_paths(part, segs)
    return paths or [segs]


def resolve(me, segs):
    """A path as seen from module `me`, made absolute (`crate`, `super`, `self`), or
    None for a path outside the crate."""
    if not segs or segs[0] not in ("crate", "super", "self"):
        return None
    if segs[0] == "crate":
        base, rest = [], segs[1:]
    else:
        base, rest = list(me), list(segs)
        while rest and rest[0] in ("super", "self"):
            if rest.pop(0) == "super":
                base = base[:-1]
    return base + rest


files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".rs"))
texts, test_files = {}, set()
for path in files:
    texts[path] = without_tests(path, strip(open(path).read()), test_files)


def is_test(path):
    return any(path == t or path.startswith(t + os.sep) for t in test_files)


files = [p for p in files if not is_test(os.path.normpath(p))]
MODS = {".".join(module_path(p)[:k]) for p in files for k in range(1, len(module_path(p)) + 1)}


def node_of(parts):
    """The longest prefix of `parts` that is a module (the rest names an item)."""
    parts = list(parts)
    while parts and ".".join(parts) not in MODS:
        parts.pop()
    return ".".join(parts) or None


edges = {}
for path in files:
    me = module_path(path)
    src = node_of(me)
    if src is None:
        continue  # lib.rs / main.rs: the crate root declares every module
    text = texts[path]
    targets = []
    for m in re.finditer(r"\buse\s+([^;]*);", text):
        targets += [resolve(me, p) for p in use_paths(m.group(1))]
    code = re.sub(r"\buse\s+[^;]*;", "", text)
    for m in re.finditer(r"(?<!::)\b((?:crate|self|super)(?:::(?:super|\w+))*)(?:::\{|\b)", code):
        targets.append(resolve(me, m.group(1).split("::")))
    for t in targets:
        tgt = node_of(t) if t else None
        if not tgt or tgt == src:
            continue
        a, b = src.split("."), tgt.split(".")
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        if k < len(a) and k < len(b):  # not an ancestor or a descendant
            edges.setdefault(".".join(a[: k + 1]), set()).add(".".join(b[: k + 1]))

# Tarjan's strongly connected components.
index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            cycles.append(sorted(comp))


sys.setrecursionlimit(10000)
nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
for v in nodes:
    if v not in index:
        visit(v)
if "-v" in sys.argv:
    for k in sorted(edges):
        print(k, "->", ", ".join(sorted(edges[k])))
for c in cycles:
    print("cycle:", " <-> ".join(c))
    for a in c:
        for b in sorted(edges.get(a, ())):
            if b in c:
                print(f"   {a} -> {b}")
if not cycles:
    print(f"no import cycle among {len(nodes)} modules")
sys.exit(1 if cycles else 0)
