"""The import order of ews-sim (sim/ewssim/), read from the sources with ast, so that the old
import circle (calendar, notify, control, calendar_ops, faults and server importing each
other through imports inside functions and a string-keyed `sim.ext`) cannot come back.

The order is the table "Modules and their import order" of docs/ews-sim.md: a module
imports only modules listed before it, at the top level, never inside a function or a
class, and never through importlib or __import__; no module reads a `sim.ext`. The
table's "imports" column must be exactly what each module imports.
"""

import ast
import os
import re

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG = os.path.join(ROOT, "sim", "ewssim")
DOC = os.path.join(ROOT, "docs", "ews-sim.md")
PACKAGE = "ewssim"

ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`(\w+)\.py`\s*\|([^|]*)\|([^|]*)\|\s*$")


def documented_order(text):
    """[(module, set of documented imports)] from the module table of docs/ews-sim.md."""
    m = re.search(r"^## Modules and their import order\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "docs/ews-sim.md has no section '## Modules and their import order'"
    rows = []
    for line in m.group(1).splitlines():
        r = ROW.match(line)
        if r:
            assert int(r.group(1)) == len(rows) + 1, "rows of the import order are numbered 1, 2, ...: %r" % line
            cell = r.group(4).strip()
            deps = set() if cell in ("", "none", "—") else set(re.findall(r"`(\w+)`", cell))
            rows.append((r.group(2), deps))
    return rows


def _inside(tree):
    """Map id(node) -> the innermost function or class that holds it (None at top level)."""
    owner = {}

    def walk(node, holder):
        for c in ast.iter_child_nodes(node):
            owner[id(c)] = holder
            inner = c if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) else holder
            walk(c, inner)

    walk(tree, None)
    return owner


def package_imports(source, modules, name="<source>"):
    """(set of ews-sim modules imported, [problems]) of one module's source: problems are
    imports inside a function or class, importlib / __import__, and reads of `.ext`."""
    tree = ast.parse(source, name)
    owner = _inside(tree)
    found = set()
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            holder = owner.get(id(node))
            if holder is not None:
                problems.append("line %d: import inside %s %s" % (
                    node.lineno, "class" if isinstance(holder, ast.ClassDef) else "function",
                    getattr(holder, "name", "<lambda>")))
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "importlib" or a.name.startswith("importlib."):
                        problems.append("line %d: importlib" % node.lineno)
                    parts = a.name.split(".")
                    if parts[0] == PACKAGE and len(parts) > 1:
                        found.add(parts[1])
                continue
            if node.module == "importlib" or (node.module or "").startswith("importlib."):
                problems.append("line %d: importlib" % node.lineno)
            if node.level == 0 and (node.module or "").split(".")[0] != PACKAGE:
                continue  # the standard library or a third-party package
            base = (node.module or "").split(".")
            if node.level == 0:
                base = base[1:]
            if base and base[0]:
                found.add(base[0])
            else:  # from . import a, b
                for a in node.names:
                    found.add(a.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            problems.append("line %d: __import__" % node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "ext":
            problems.append("line %d: .ext (a string-keyed registry; use a typed attribute)" % node.lineno)
    unknown = found - set(modules)
    for u in sorted(unknown):
        problems.append("imports %s, which is not an ews-sim module" % u)
    return found & set(modules), problems


def sources():
    return sorted(f[:-3] for f in os.listdir(PKG) if f.endswith(".py"))


def read(module):
    with open(os.path.join(PKG, module + ".py"), encoding="utf-8") as f:
        return f.read()


def order():
    with open(DOC, encoding="utf-8") as f:
        return documented_order(f.read())


def test_every_module_has_its_place_in_the_documented_order():
    listed = [m for m, _ in order()]
    assert len(listed) == len(set(listed)), "a module is listed twice: %s" % listed
    assert sorted(listed) == [m for m in sources() if m != "__init__"]
    assert listed[-1] == "main"
    assert not package_imports(read("__init__"), listed)[0]


@pytest.mark.parametrize("module", [m for m in sources()])
def test_module_imports_only_below_it_and_at_the_top(module):
    rows = order()
    listed = [m for m, _ in rows]
    imported, problems = package_imports(read(module), listed, module + ".py")
    assert not problems, "%s.py: %s" % (module, "; ".join(problems))
    if module == "__init__":
        return
    pos = listed.index(module)
    above = sorted(m for m in imported if listed.index(m) >= pos)
    assert not above, "%s.py imports %s, listed at or above it in docs/ews-sim.md" % (module, above)
    documented = dict(rows)[module]
    assert imported == documented, (
        "%s.py imports %s, docs/ews-sim.md says %s" % (module, sorted(imported), sorted(documented)))


# -- the checker itself -------------------------------------------------------------------


MODS = ["soap", "calendar", "notify", "main"]


def test_checker_sees_every_form_of_import():
    src = ("import os\nfrom aiohttp import web\nfrom . import soap, calendar as calmod\n"
           "from .notify import emit\nimport ewssim.main\nfrom ewssim import soap as s2\n")
    imported, problems = package_imports(src, MODS)
    assert imported == {"soap", "calendar", "notify", "main"}
    assert problems == []


def test_checker_catches_what_the_circle_was_made_of():
    src = ("def f():\n    from . import notify\n"
           "class C:\n    import json\n"
           "async def g(sim):\n    return sim.ext['auth']\n"
           "def h():\n    return __import__('ewssim.notify')\n"
           "import importlib\nfrom .nowhere import x\n")
    imported, problems = package_imports(src, MODS)
    assert imported == {"notify"}
    text = "\n".join(problems)
    assert "import inside function f" in text
    assert "import inside class C" in text
    assert ".ext" in text
    assert "__import__" in text
    assert "importlib" in text
    assert "nowhere" in text


def test_documented_order_reads_the_table():
    doc = ("# x\n## Modules and their import order\n\n| # | module | what | imports |\n|---|---|---|---|\n"
           "| 1 | `soap.py` | builders | none |\n| 2 | `notify.py` | events | `soap`, `calendar` |\n"
           "## Next\n| 3 | `main.py` | not in the section | |\n")
    assert documented_order(doc) == [("soap", set()), ("notify", {"soap", "calendar"})]
    with pytest.raises(AssertionError):
        documented_order(doc.replace("| 2 |", "| 3 |"))
