"""The package's structure: layers that import only downward, no cycles, thin paper-named scripts."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = "vocal_melody"
PRODUCT_LAYERS = (
    ("errors", "labels", "runtime", "fileio", "cache", "audio", "bundle"),
    ("features", "model"),
    ("inference",),
    ("formats", "evaluation"),
    ("batch", "ray_batch"),
    ("extraction",),
    ("cli",),
)
"""What users install and run: extraction and evaluation."""
LAB_LAYERS = (
    ("lab.corpora", "lab.rand_audio_augment", "lab.synth"),
    ("lab.training",),
    ("lab.cli",),
)
"""What makes and trains models: above every product layer, so the product never imports it."""
LAYERS = PRODUCT_LAYERS + LAB_LAYERS
PAPER_SCRIPTS = ("melodyExtraction_NS", "featureExtraction", "model", "train_teacher", "train_student",
                 "synth_testset", "augment", "evaluate")
"""Top-level entry points: the package never imports them (nor tests, bench or scripts)."""
OUTSIDE = {*PAPER_SCRIPTS, "tests", "conftest", "bench", "scripts", "melody"}


def layer_of(module: str) -> int:
    """The layer index of ``vocal_melody.X...``; the package's ``__init__`` and the lab's sit above every layer."""
    parts = module.split(".")
    if parts in ([PACKAGE], [PACKAGE, "lab"]):
        return len(LAYERS)
    for index, names in enumerate(LAYERS):
        if any(parts[1:1 + len(name.split("."))] == name.split(".") for name in names):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str], root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports count), resolved to known modules
    where a name is a submodule (``from vocal_melody import features``)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = sorted((root / PACKAGE).rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, known) for p in paths}


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports, imports of the top-level scripts or test/bench code, and cycles."""
    problems = []
    for module, targets in graph.items():
        for target in sorted(targets):
            top = target.split(".")[0]
            if top in OUTSIDE:
                problems.append(f"{module} imports {target}, which is outside the package")
            elif top == PACKAGE and module != PACKAGE and target != PACKAGE and layer_of(target) > layer_of(module):
                problems.append(f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of package modules (the facade ``__init__`` left out)."""
    edges = {m: {t for t in ts if t in graph and t != PACKAGE} for m, ts in graph.items() if m != PACKAGE}
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                found.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_the_package_imports_only_downward_and_has_no_cycles():
    assert violations(import_graph()) == []


def test_the_product_never_imports_the_lab():
    graph = import_graph()
    product = [m for m in graph if m != PACKAGE and layer_of(m) < len(PRODUCT_LAYERS)]
    assert len(product) > 20 and any(m.startswith(f"{PACKAGE}.lab.") for m in graph)
    assert {(m, t) for m in product for t in graph[m] if t.split(".")[:2] == [PACKAGE, "lab"]} == set()


def test_the_check_catches_the_old_upward_imports_and_cycles():
    graph = import_graph()
    broken = {module: set(targets) for module, targets in graph.items()}
    broken["vocal_melody.lab.training.voicing"].add("melodyExtraction_NS")  # the old training.py -> CLI script
    broken["vocal_melody.cli.evaluate"].add("vocal_melody.lab.corpora.datasets")  # the product -> the lab
    broken["vocal_melody.features"].add("vocal_melody.inference.extractor")
    broken["vocal_melody.inference.engines"].add("vocal_melody.inference.quantize")  # the old engines <-> quantize
    problems = violations(broken)
    assert any("training.voicing imports melodyExtraction_NS" in p for p in problems)
    assert any("cli.evaluate (layer 6) imports vocal_melody.lab.corpora.datasets (layer 7)" in p for p in problems)
    assert any("features (layer 1) imports vocal_melody.inference.extractor" in p for p in problems)
    assert any(p.startswith("import cycle") and "engines" in p and "quantize" in p for p in problems)


def test_relative_imports_resolve(tmp_path):
    package = tmp_path / PACKAGE / "inference"
    package.mkdir(parents=True)
    (tmp_path / PACKAGE / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "engines.py").write_text("from ..cli import common\nfrom . import quantize\n")
    (package / "quantize.py").write_text("")
    known = {f"{PACKAGE}.inference.quantize", f"{PACKAGE}.inference.engines"}
    found = imports_of(package / "engines.py", known, root=tmp_path)
    assert found == {f"{PACKAGE}.cli", f"{PACKAGE}.inference.quantize"}


def test_the_paper_scripts_are_thin_entry_points():
    for name in PAPER_SCRIPTS:
        path = ROOT / f"{name}.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        code = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        assert all(isinstance(node, (ast.Import, ast.ImportFrom, ast.If)) for node in code), name
        modules = {node.module.split(".")[0] for node in code if isinstance(node, ast.ImportFrom)}
        assert modules <= {PACKAGE}, (name, modules)
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 20, name


def test_no_sys_path_manipulation_anywhere():
    offenders = [str(p.relative_to(ROOT)) for folder in (PACKAGE, "tests", "bench", "scripts") + ("",)
                 for p in ((ROOT / folder).rglob("*.py") if folder else ROOT.glob("*.py"))
                 if "sys.path.insert" in p.read_text(encoding="utf-8") and p.name != "test_layers.py"]
    assert offenders == []


MAX_FUNCTION_LINES = 50
"""Body lines (docstring excluded) of a function; argument parsers are declarations and may be longer."""


def test_functions_are_short():
    long = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "build_parser":
                body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
                if node.end_lineno - body[0].lineno + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []
