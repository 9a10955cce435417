"""The package's layers only point down, and no modules import each other in a circle.

Read from the source with the standard library's ``ast``: every import of a
``trace_forecast`` module, at module level or inside a function (imports under
``if TYPE_CHECKING:`` are types only and do not count). ``docs/design.md`` ("Layout")
draws the same layers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trace_forecast"

# Bottom to top. A unit is a top-level module or subpackage of trace_forecast; a unit may
# import its own modules and units of lower layers only.
LAYERS = (
    ("errors", "rng", "version"),                                    # foundation
    ("parameters", "metrics", "losses", "datasets", "parameter_count"),  # the parameter layer, plain numerics
    ("backbone", "adapters"),                                        # model parts
    ("heads", "spec", "selection"),
    ("network",),                                                    # the adapted model
    ("engine",),                                                     # training (Lightning)
    ("tasks", "pretraining"),                                        # the task API: spec + data -> fitted state
    ("estimators", "darts", "plotting"),                             # front ends
    ("__init__",),                                                   # the package's lazy exports
    ("quickstart", "pretrain"),                                      # command lines
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# The sktime estimators reach the core through the parameter layer and the task API only.
ESTIMATOR_DOORS = {"estimators", "tasks", "parameters", "errors", "metrics"}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imports(path: Path) -> list[tuple[str, int]]:
    """``(imported trace_forecast module, line)`` for every runtime import in ``path``
    (``from package import name`` counts as an import of ``package.name`` too)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trace_forecast":
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names
                      if (PACKAGE.parent / f"{node.module}.{a.name}".replace(".", "/")).with_suffix(".py").is_file()]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "trace_forecast"]
    return found


def graph() -> dict[str, list[tuple[str, int]]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in graph()}
    assert units <= set(RANK), f"place these in LAYERS: {sorted(units - set(RANK))}"


def test_imports_only_point_down():
    upward = []
    for module, targets in graph().items():
        source = unit_of(module)
        for target, line in targets:
            dest = unit_of(target)
            if dest != source and RANK[dest] >= RANK[source]:
                upward.append(f"{module}:{line} imports {target} ({dest} is not below {source})")
    assert not upward, "\n".join(upward)


def test_the_sktime_estimators_use_only_the_parameter_layer_and_the_task_api():
    extra = [f"{m}:{line} imports {t}" for m, targets in graph().items() if unit_of(m) == "estimators"
             for t, line in targets if unit_of(t) not in ESTIMATOR_DOORS]
    assert not extra, "\n".join(extra)


def test_no_circle_of_modules():
    modules = graph()
    edges = defaultdict(set)
    for module, targets in modules.items():
        named = {t for t, _ in targets}
        for target in named:
            if target in modules and target != module and not any(n.startswith(target + ".") for n in named):
                edges[module].add(target)  # (a package imported only for one of its modules: an edge to that module)
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(edges[node]):
            visit(nxt)
        stack.pop()

    for module in sorted(modules):
        visit(module)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source", ["estimators", "darts"])
def test_front_ends_do_not_import_each_other(source):
    other = {"estimators": "darts", "darts": "estimators"}[source]
    crossing = [f"{m}:{line} imports {t}" for m, targets in graph().items() if unit_of(m) == source
                for t, line in targets if unit_of(t) == other]
    assert not crossing, "\n".join(crossing)
