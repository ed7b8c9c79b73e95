#!/usr/bin/env python3
"""Replaces hand-written public memberwise initializers with `@MemberwiseInit` (Sources/CalgateMacros).

A struct qualifies when one of its `public init(...)` takes exactly its stored properties, in declaration order, under
their own names and types, and only copies them (`self.x = x` lines). A parameter default moves onto its `var`
(a `let` with a default disqualifies the struct). Anything else stays as written. Prints what it changed.

Usage: scripts/adopt-memberwise-init.py FILE...
"""
import re
import sys


def split_top(text, sep=","):
    parts, depth, cur, quote = [], 0, "", False
    for ch in text:
        if ch == '"':
            quote = not quote
        if not quote:
            if ch in "([{<":
                depth += 1
            elif ch in ")]}>":
                depth -= 1
            elif ch == sep and depth == 0:
                parts.append(cur)
                cur = ""
                continue
        cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


PROP = re.compile(r"^(?P<ind>[ \t]*)(?P<acc>(?:public |package |internal |private |fileprivate |private\(set\) |public private\(set\) )*)(?P<kind>var|let) (?P<name>\w+): (?P<type>[^=\n{]+?)(?P<default> = [^\n]+)?$")


def convert(path):
    text = open(path).read()
    lines = text.split("\n")
    changed = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(?P<ind>[ \t]*)public struct (?P<name>\w+)\b[^\n]*\{$", lines[i])
        if not m or (i > 0 and lines[i - 1].strip() == "@MemberwiseInit"):
            i += 1
            continue
        ind = m.group("ind")
        inner = ind + "    "
        end = next((j for j in range(i + 1, len(lines)) if lines[j] == ind + "}"), None)
        if end is None:
            i += 1
            continue
        props = []  # (line index, kind, name, type, default)
        j = i + 1
        while j < end:
            line = lines[j]
            if line.startswith(inner) and not line.startswith(inner + " "):
                pm = PROP.match(line)
                if pm and "static" not in pm.group("acc") and not line.rstrip().endswith("{"):
                    props.append([j, pm.group("kind"), pm.group("name"), pm.group("type").strip(), (pm.group("default") or "")[3:].strip() or None])
                elif re.match(r"^\s*(public |private |fileprivate |internal )*(var|let) \w+\s*(,|=)", line) and "static" not in line:
                    props = None  # grouped or untyped stored properties: leave the struct alone
                    break
            j += 1
        if not props:
            i += 1
            continue
        # the init
        k = i + 1
        done = False
        while k < end and not done:
            if lines[k].startswith(inner + "public init("):
                start = k
                head = lines[k]
                while not head.rstrip().endswith(") {") and k < end:
                    k += 1
                    head += "\n" + lines[k]
                sig = head.strip()[len("public init("):-len(") {")]
                body_start = k + 1
                close = next((b for b in range(body_start, end) if lines[b] == inner + "}"), None)
                if close is None:
                    break
                body = [l.strip() for l in lines[body_start:close]]
                params = split_top(sig.replace("\n", " "))
                parsed = []
                for p in params:
                    pm = re.match(r"^(\w+): (@escaping )?(.+?)(?: = (.+))?$", p)
                    if not pm:
                        parsed = None
                        break
                    parsed.append((pm.group(1), pm.group(3).strip(), pm.group(4)))
                ok = parsed is not None and len(parsed) == len(props)
                ok = ok and all(a == "self.%s = %s" % (n, n) for a, (n, _, _) in zip(sorted(body), sorted((p[2], 0, 0) for p in props)) if True)
                ok = ok and sorted(body) == sorted("self.%s = %s" % (p[2], p[2]) for p in props)
                ok = ok and all(pp[0] == pr[2] and pp[1] == pr[3] for pp, pr in zip(parsed, props))
                if ok:
                    for pp, pr in zip(parsed, props):
                        if pp[2] is not None:
                            if pr[1] == "let" or (pr[4] is not None and pr[4] != pp[2]):
                                ok = False
                        elif pr[4] is not None:
                            ok = False
                if ok:
                    # remove the init and its doc comment / attributes, then a blank line before it
                    first = start
                    while first - 1 > i and lines[first - 1].strip().startswith("///"):
                        first -= 1
                    last = close
                    del_from, del_to = first, last
                    if lines[del_from - 1].strip() == "":
                        del_from -= 1
                    for pp, pr in zip(parsed, props):
                        if pp[2] is not None and pr[4] is None:
                            lines[pr[0]] = lines[pr[0]] + " = " + pp[2]
                    del lines[del_from:del_to + 1]
                    # attribute before the struct line, after its doc comment
                    lines.insert(i, ind + "@MemberwiseInit")
                    changed.append(m.group("name"))
                    done = True
                    end -= (del_to - del_from + 1) - 1
                    break
            k += 1
        i += 1
    if changed:
        text = "\n".join(lines)
        text = re.sub(r"\n\n\n+", "\n\n", text)
        text = re.sub(r"\n\n(\s*)\}\n", r"\n\1}\n", text)
        if "import CalgateMacros" not in text:
            imports = list(re.finditer(r"^import \w+$", text, re.M))
            names = [x.group(0) for x in imports] + ["import CalgateMacros"]
            block = "\n".join(sorted(set(names), key=lambda s: s.lower()))
            if imports:
                text = text[: imports[0].start()] + block + text[imports[-1].end():]
            else:
                text = block + "\n\n" + text
        open(path, "w").write(text)
        print(path + ": " + ", ".join(changed))


for f in sys.argv[1:]:
    convert(f)
