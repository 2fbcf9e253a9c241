#!/usr/bin/env python3
"""Import cycles between sibling modules under src/ (CONTRIBUTING: no module imports
one above it). Reads `crate::…` paths and `super::…` imports outside `#[cfg(test)]`;
an import of a.b.c from a.x.y is an edge a.b -> a.x between siblings under `a`.
Prints each cycle with its edges; exits 1 when there is one.

    python3 scripts/module_cycles.py [src] [-v]    (-v: print every sibling edge)
"""
import os
import re
import sys

root = next((a for a in sys.argv[1:] if not a.startswith("-")), "src")


def module_path(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    return rel[:-1] if rel[-1] in ("mod", "lib", "main") else rel


files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".rs")]
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
    text = open(path).read()
    text = text.split("#[cfg(test)]")[0]
    text = re.sub(r"//[^\n]*", "", text)
    targets = []
    for m in re.finditer(r"\bcrate::((?:\w+::)*\w+)", text):
        targets.append(m.group(1).split("::"))
    for m in re.finditer(r"\bcrate::\{([^}]*)\}", text):
        targets += [i.strip().split("::") for i in m.group(1).split(",") if i.strip()]
    for m in re.finditer(r"\b((?:super::)+)((?:\w+::)*\w+)", text):
        ups = m.group(1).count("super::")
        targets.append(me[: len(me) - ups] + m.group(2).split("::"))
    for t in targets:
        tgt = node_of(t)
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
