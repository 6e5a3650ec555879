# SPDX-License-Identifier: MIT
"""scripts/check-tree: each rule of the tree fails on a tree that breaks it, and only then."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check-tree")


def write(tree, path, text):
    full = tree / path
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text(text)
    return full


def function(name, body_lines):
    """A function in the tree's format whose definition spans 3 + body_lines lines."""
    body = "".join(f"\tx += {i};\n" for i in range(body_lines))
    return f"int {name}(int x)\n{{\n{body}}}\n"


def run(tree, *args):
    p = subprocess.run([sys.executable, SCRIPT, "--root", str(tree), *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout


@pytest.fixture
def tree(tmp_path):
    write(tmp_path, "src/base/buf.h", "/* buf.h: bytes. */\nint buf_len(void);\n")
    write(tmp_path, "src/sync/engine.c", '#include "base/buf.h"\n#include "store/store.h"\n'
          + function("engine_run", 10))
    write(tmp_path, "src/store/store.h", '#include "cal/occurrence.h"\n')
    return tmp_path


def test_a_clean_tree_passes(tree):
    rc, out = run(tree)
    assert rc == 0, out
    assert "keeps its rules" in out


def test_an_include_up_the_layers_fails(tree):
    write(tree, "src/cal/presence.c", '#include "sync/engine.h"\n')
    rc, out = run(tree)
    assert rc == 1
    assert 'src/cal/presence.c:1: layers: src/cal/ may not include "sync/engine.h"' in out


def test_an_include_sideways_fails(tree):
    # webhook and sync sit side by side: webhook may not reach into the engine.
    write(tree, "src/webhook/webhook.c", '#include "base/buf.h"\n#include "sync/output.h"\n')
    rc, out = run(tree)
    assert rc == 1
    assert 'src/webhook/webhook.c:2: layers: src/webhook/ may not include "sync/output.h"' in out


def test_a_folder_outside_the_map_fails(tree):
    write(tree, "src/caldav/caldav.c", '#include "base/buf.h"\n')
    rc, out = run(tree)
    assert rc == 1
    assert "src/caldav/ is not in the layer map" in out


def test_the_engine_core_may_not_talk_ews(tree):
    write(tree, "src/sync/engine-sched.c", '#include "ews/ews-errors.h"\n')
    write(tree, "src/sync/engine-read.c",
          "/* ews_call() in a comment is fine */\nint f(void)\n{\n\treturn ews_call(1);\n}\n")
    write(tree, "src/sync/engine-cap.c", "int cap = EWS_MAX_RESPONSE;\n")
    write(tree, "src/sync/ews-pull.c", '#include "ews/ews-request.h"\nint g(struct ews_x *x);\n')
    write(tree, "src/sync/discover.c", '#include "ews/ews-response.h"\n')
    rc, out = run(tree)
    assert rc == 1
    assert 'src/sync/engine-sched.c:1: layers: the engine core includes "ews/ews-errors.h"' in out
    assert "src/sync/engine-read.c:4: layers: the engine core names the EWS type or call ews_call(" in out
    assert "src/sync/engine-read.c:1:" not in out
    assert "engine-cap.c:1: layers: the engine core names the EWS type or call EWS_MAX_RESPONSE" in out
    assert "src/sync/ews-pull.c:" not in out and "src/sync/discover.c:" not in out


def test_file_size(tree):
    write(tree, "src/base/ok.c", "\n" * 800)
    write(tree, "src/base/big.c", "\n" * 801)
    write(tree, "src/base/test-big.c", "\n" * 5000)
    write(tree, "src/base/fuzz-big.c", "\n" * 5000)
    rc, out = run(tree)
    assert rc == 1
    assert "src/base/big.c:1: file-size: 801 lines (at most 800)" in out
    assert "ok.c" not in out and "test-big.c" not in out and "fuzz-big.c" not in out


def test_function_size(tree):
    write(tree, "src/base/f.c", function("fits", 117) + "\n" + function("too_long", 118))
    write(tree, "src/base/test-f.c", function("test_long", 500))
    rc, out = run(tree)
    assert rc == 1
    assert "src/base/f.c:122: function-size: too_long() is 121 lines (at most 120)" in out
    assert "fits()" not in out and "test_long" not in out


def test_a_brace_in_a_string_or_comment_does_not_end_a_function(tree):
    text = 'int f(void)\n{\n\tconst char *s = "\\n}\\n";\n/*\n}\n*/\n' + "\tx;\n" * 120 + "}\n"
    write(tree, "src/base/s.c", text)
    rc, out = run(tree)
    assert rc == 1
    assert "src/base/s.c:1: function-size: f() is" in out


def compile_object(tree, build, source_path, text):
    src = write(tree, source_path, text)
    objdir = build / "libcalsync.a.p"
    objdir.mkdir(parents=True, exist_ok=True)
    obj = objdir / (source_path.replace("/", "_") + ".o")
    subprocess.run(["cc", "-c", "-fPIC", "-O0", "-o", str(obj), str(src)], check=True)


def test_mutable_globals_fail_outside_logging(tree, tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    compile_object(tree, build, "src/base/counter.c",
                   "static int hits;\nint counter_hit(void)\n{\n\treturn ++hits;\n}\n")
    compile_object(tree, build, "src/base/once.c",
                   "int once_get(void)\n{\n\tstatic int done = 1;\n\treturn done++;\n}\n")
    compile_object(tree, build, "src/base/names.c",
                   "static const char *const names[] = {\"a\", \"b\"};\n"
                   "static const int sizes[] = {1, 2};\n"
                   "const char *names_get(int i)\n{\n\treturn names[i] + sizes[i];\n}\n")
    compile_object(tree, build, "src/base/log.c",
                   "static int level;\nint log_level(void)\n{\n\treturn level++;\n}\n")
    rc, out = run(tree, "--objects", str(build))
    assert rc == 1
    assert "src/base/counter.c:0: globals: mutable static storage: hits in .bss" in out
    assert "src/base/once.c:0: globals: mutable static storage: done" in out
    assert "names.c" not in out, out
    assert "log.c" not in out


def test_objects_of_a_missing_build_fail(tree, tmp_path_factory):
    rc, out = run(tree, "--objects", str(tmp_path_factory.mktemp("empty")))
    assert rc == 1
    assert "not found (build first)" in out
