#!/usr/bin/env python3
"""The workspace's file-level import graph: fails when files import each
other in a circle of more than two (issue 14: a circle means two modules
cannot change apart). Paths `crate::`, `super::`, `self::` and
`vitalfarm_<crate>::` are resolved to the module file they name; test
modules (`#[cfg(test)]` onwards) do not count.

Usage: import_circles.py [workspace root] [largest allowed circle]"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else '.'
maxn = int(sys.argv[2]) if len(sys.argv) > 2 else 2
crates = {}
for d in sorted(os.listdir(root)):
    src = os.path.join(root, d, 'src')
    if os.path.isdir(src) and os.path.exists(os.path.join(root, d, 'Cargo.toml')):
        name = None
        for line in open(os.path.join(root, d, 'Cargo.toml')):
            m = re.match(r'name\s*=\s*"([^"]+)"', line)
            if m: name = m.group(1).replace('-', '_'); break
        crates[d] = (name, src)
# module path -> file
mods = {}
files = {}
for d, (name, src) in crates.items():
    for dp, _, fs in os.walk(src):
        for f in fs:
            if not f.endswith('.rs'): continue
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[-1] == 'mod': rel = rel[:-1]
            if rel == ['main'] and os.path.exists(os.path.join(src, 'lib.rs')): rel = ['<bin>']
            if rel in (['lib'], ['main']): rel = []
            key = (name,) + tuple(rel)
            mods[key] = p
            files[p] = key
def resolve(key):
    # longest prefix that is a module file
    while key and key not in mods:
        key = key[:-1]
    return mods.get(key)
edges = {p: set() for p in files}
pathre = re.compile(r'\b((?:crate|super|self|vitalfarm_\w+)(?:::\w+)+)')
for p, key in files.items():
    text = open(p).read()
    text = re.sub(r'//[^\n]*', '', text)
    # cut #[cfg(test)] mod tests { ... } at the end (tests do not count)
    i = text.find('#[cfg(test)]')
    if i >= 0: text = text[:i]
    crate = key[0]
    # expand `use a::{b, c::{d}}` roughly: collect prefixes
    for m in re.finditer(r'use\s+([^;]+);', text, re.S):
        body = re.sub(r'\s+', '', m.group(1))
        def expand(prefix, s):
            out = []
            depth = 0; cur = ''
            # s is like a::b::{c,d::{e}} or a::b
            if '{' not in s:
                return [prefix + s]
            i = s.index('{')
            head = s[:i]; inner = s[i+1:s.rindex('}')]
            parts = []; depth = 0; cur = ''
            for ch in inner:
                if ch == ',' and depth == 0: parts.append(cur); cur = ''; continue
                if ch == '{': depth += 1
                if ch == '}': depth -= 1
                cur += ch
            if cur: parts.append(cur)
            for part in parts:
                out += expand(prefix + head, part)
            return out
        for path in expand('', body):
            text += '\n' + path.split(' as ')[0].replace('as', ' as ') + '\n'
    for m in pathre.finditer(text):
        segs = m.group(1).split('::')
        modpath = list(key[1:]) if not p.endswith(('mod.rs', 'lib.rs', 'main.rs')) else list(key[1:])
        if segs[0] == 'crate':
            tgt = (crate,) + tuple(segs[1:])
        elif segs[0] in ('super', 'self'):
            base = list(key[1:])
            if not (p.endswith('mod.rs') or p.endswith('lib.rs')):
                pass
            while segs and segs[0] in ('super', 'self'):
                if segs[0] == 'super':
                    # super of a file module foo/bar.rs (key .., foo, bar) is foo
                    base = base[:-1]
                segs = segs[1:]
            tgt = (crate,) + tuple(base) + tuple(segs)
        else:
            tgt = (segs[0],) + tuple(segs[1:])
        f = resolve(tgt)
        if f and f != p:
            edges[p].add(f)
# lib.rs/mod.rs declare submodules: ignore `mod x;` (not an import).
# Tarjan
sys.setrecursionlimit(100000)
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
def has_long_cycle(comp):
    # A strongly connected set holds a cycle of three or more files unless
    # every edge in it is mutual and the mutual pairs form a tree.
    cs = set(comp)
    pairs = set()
    for u in comp:
        for v in edges[u]:
            if v in cs:
                if u not in edges[v]: return True
                pairs.add(frozenset((u, v)))
    return len(pairs) != len(comp) - 1
bad = [s for s in sccs if len(s) > maxn and has_long_cycle(s)]
for s in sorted(bad, key=len, reverse=True):
    print(f'circle of {len(s)} files:')
    for f in sorted(s): print('   ', os.path.relpath(f, root), '->', ', '.join(sorted(os.path.relpath(t, root) for t in edges[f] if t in s)))
sys.exit(1 if bad else 0)
