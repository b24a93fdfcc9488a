"""The layers are the ones docs/architecture.md draws: the test reads the drawing.

The ```layers block of the architecture page names each layer, top to bottom, with the
paths of its modules, and the imports allowed against the grain. Every import of our four
apps — at the top of a module or inside a function alike — must point to the importer's own
layer or one below it. A failure names the file, the line and the edge.
"""

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("ievents", "checkout", "payments", "webhooks")
# What the drawing must say, top to bottom: a layer renamed, dropped or moved fails here.
LAYERS = ["project", "edges", "operations", "webhooks", "payments", "checkout", "core"]


def drawing() -> tuple[list[tuple[str, list[str]]], set[tuple[str, str]]]:
    """The layers (name, path patterns), top first, and the allowed exceptions, as drawn."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    assert block, "docs/architecture.md has no ```layers block"
    layers, allowed = [], set()
    for line in block.group(1).splitlines():
        words = line.split("#")[0].split()
        if len(words) == 3 and words[1] == "->":
            allowed.add((words[0], words[2]))
        elif words:
            layers.append((words[0], words[1:]))
    return layers, allowed


def modules() -> dict[str, Path]:
    """Every module of our apps by dotted name, migrations left out."""
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = relative.with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = relative
    return found


def imports(path: Path, name: str, known: dict[str, Path], source: str | None = None):
    """(line, imported module) for every import of one of our modules in ``path``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source if source is not None else (ROOT / path).read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # ``from checkout import services`` imports the module checkout.services
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import checkout.models.X``: the nearest module
                target = target.rpartition(".")[0]
            if target:
                yield node.lineno, target


def layer_of(path: Path, layers) -> str:
    for layer, patterns in layers:
        if any(fnmatch(path.as_posix(), pattern) for pattern in patterns):
            return layer
    raise AssertionError(f"{path} is in no layer of docs/architecture.md's drawing")


def forbidden_edges(layers, allowed, planted: dict[str, str] | None = None) -> list[str]:
    """Every import up a layer; ``planted``: modules added for the test, {dotted name: source}."""
    rank = {layer: position for position, (layer, _) in enumerate(layers)}  # 0 is the top
    known = modules()
    planted = planted or {}
    known.update({name: Path(*name.split(".")).with_suffix(".py") for name in planted})
    found = []
    for name, path in sorted(known.items()):
        mine = layer_of(path, layers)
        for line, target in imports(path, name, known, planted.get(name)):
            theirs = layer_of(known[target], layers)
            if rank[theirs] < rank[mine] and (path.as_posix(), known[target].as_posix()) not in allowed:
                found.append(f"{path}:{line} imports {target}: {mine} may not import {theirs}")
    return found


def test_the_drawing_names_the_layers_top_to_bottom():
    layers, allowed = drawing()
    assert [layer for layer, _ in layers] == LAYERS
    for importer, imported in allowed:
        assert (ROOT / importer).exists() and (ROOT / imported).exists(), f"{importer} -> {imported}: no such file"


def test_no_import_points_up_a_layer():
    found = forbidden_edges(*drawing())
    assert not found, "imports against docs/architecture.md's layers:\n" + "\n".join(found)


def test_an_import_up_a_layer_is_named_with_its_line():
    """The check itself, on two modules planted for it: one at the top, one in a function."""
    planted = {
        "ievents.planted": "from checkout import models\n",
        "checkout.planted": "def paid_how():\n    from payments.models import Payment\n    return Payment\n",
    }
    assert forbidden_edges(*drawing(), planted) == [
        "checkout/planted.py:2 imports payments.models: checkout may not import payments",
        "ievents/planted.py:1 imports checkout.models: core may not import checkout",
    ]
