"""Draw the package's import graph with folders (and top-level modules) as boxes, the product apart from the lab.

    python scripts/import_graph.py > docs/import_graph.md

Writes a Mermaid flowchart (GitHub renders it): one box per folder or module of ``vocal_melody`` and of
``vocal_melody.lab``, one arrow per pair of boxes where one imports the other (at any depth). The layer rules
themselves are checked by ``tests/test_layers.py``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vocal_melody"


def box_of(module: str) -> str:
    """``vocal_melody.inference.engines`` -> ``inference``; ``vocal_melody.lab.training.loop`` -> ``lab.training``."""
    parts = module.split(".")[1:]
    if parts[:1] == ["lab"]:
        return ".".join(parts[:2]) if len(parts) > 1 else "lab"
    return parts[0] if parts else "vocal_melody"


def imported_modules(path: Path) -> set[str]:
    """The ``vocal_melody`` modules a file imports (absolute imports; the package uses no relative ones)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return {name for name in found if name.split(".")[0] == "vocal_melody"}


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        source = box_of(module)
        for target in imported_modules(path):
            graph[source].add(box_of(target))
        graph[source]  # a box without imports still gets drawn
    return graph


def mermaid(graph: dict[str, set[str]]) -> str:
    def node(box: str) -> str:
        return box.replace(".", "_")

    product = sorted(b for b in graph if not b.startswith("lab.") and b not in ("lab", "vocal_melody"))
    lab = sorted(b for b in graph if b.startswith("lab."))
    lines = ["```mermaid", "flowchart BT"]
    for title, boxes in (("product: what users install", product), ("lab: corpora and training", lab)):
        lines.append(f'    subgraph {title.split(":")[0]}["{title}"]')
        lines += [f'        {node(b)}["{b}"]' for b in boxes]
        lines.append("    end")
    for source in sorted(graph):
        for target in sorted(graph[source] - {source}):
            if source not in ("vocal_melody", "lab") and target not in ("vocal_melody", "lab"):
                lines.append(f"    {node(source)} --> {node(target)}")
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    graph = edges()
    print("# The import graph of `vocal_melody`\n")
    print("Made by `python scripts/import_graph.py > docs/import_graph.md`. An arrow points from a box to a box it "
          "imports; no arrow leaves the product for the lab (`tests/test_layers.py` fails if one does).\n")
    print(mermaid(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
