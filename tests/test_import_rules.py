"""The layout's rules, read from the source with `ast` (STYLE.md §1, §8; README "How it is built").

- The product (`tggate`) never imports the sandbox (`tggate_sandbox`), not even for type
  checking or inside a function: a production install does not have it.
- `tggate.core` imports only itself and the standard library: it is the pure state machine.
- No import cycle between modules at import time (imports inside functions and under
  `if TYPE_CHECKING:` run later or never, so they cannot close one).
- Every third-party module the product imports is installed with `tggate` alone: its
  distribution is among the packages uv.lock resolves for `tggate` without the dev group.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "tggate": ROOT / "src" / "tggate",
    "tggate_sandbox": ROOT / "sandbox" / "src" / "tggate_sandbox",
}
PRODUCT, SANDBOX, CORE = "tggate", "tggate_sandbox", "tggate.core"


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    where: str
    at_import_time: bool  # neither inside a function nor under `if TYPE_CHECKING:`


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(package, root, path): path
        for package, root in PACKAGES.items()
        for path in sorted(root.rglob("*.py"))
    }


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


class _Collector(ast.NodeVisitor):
    def __init__(self, importer: str, path: Path) -> None:
        self.importer, self.path = importer, path
        self.is_package = path.name == "__init__.py"
        self.deferred = 0  # depth of function bodies and TYPE_CHECKING blocks around a node
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        where = f"{self.path.relative_to(ROOT)}:{node.lineno}"
        self.found.append(Import(self.importer, target, where, self.deferred == 0))

    def _deferred(self, node: ast.AST) -> None:
        self.deferred += 1
        self.generic_visit(node)
        self.deferred -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _deferred

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.deferred += 1
        for child in node.body:
            self.visit(child)
        self.deferred -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.importer, self.is_package, node.level, node.module)
        # `from package import module` imports the module; `from module import name`, the
        # module that defines the name.
        submodules = (f"{base}.{alias.name}" for alias in node.names)
        for target in dict.fromkeys(name if name in MODULES else base for name in submodules):
            self._add(target, node)


def _imports(modules: Mapping[str, Path] = MODULES) -> Iterator[Import]:
    for name, path in modules.items():
        collector = _Collector(name, path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        yield from collector.found


def _top(name: str) -> str:
    return name.split(".")[0]


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_product_never_imports_the_sandbox() -> None:
    wrong = [
        f"{found.where}: {found.target}"
        for found in _imports()
        if _inside(found.importer, PRODUCT) and _top(found.target) == SANDBOX
    ]
    # Nor by name, through importlib: the sandbox joins only through the `tggate.commands`
    # entry point (src/tggate/cli.py).
    for name, path in MODULES.items():
        if _inside(name, PRODUCT):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and str(node.value).startswith(SANDBOX):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert wrong == [], "the product imports the sandbox:\n" + "\n".join(wrong)


def test_core_imports_only_itself_and_the_standard_library() -> None:
    allowed = {*sys.stdlib_module_names, "__future__"}
    wrong = [
        f"{found.where}: {found.target}"
        for found in _imports()
        if _inside(found.importer, CORE)
        and not _inside(found.target, CORE)
        and _top(found.target) not in allowed
    ]
    assert wrong == [], "tggate.core reaches outside itself:\n" + "\n".join(wrong)


def _cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(sorted(component))
    return found


def _import_time_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for found in _imports():
        if found.at_import_time and found.target in MODULES and found.target != found.importer:
            edges[found.importer].add(found.target)
    return edges


def test_no_import_cycle_between_modules() -> None:
    cycles = _cycles(_import_time_edges())
    assert cycles == [], "modules import each other at import time:\n" + "\n".join(
        " ⇄ ".join(cycle) for cycle in cycles
    )


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(edges) == [["a", "b", "c"], ["e"]]


def _product_closure() -> set[str]:
    """The distributions uv.lock installs with `tggate` alone (its extras included, the dev
    group not): what `pip install tggate` brings."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    packages = {package["name"]: package for package in lock["package"]}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    pending = [("tggate", ())]
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        package = packages[name]
        wanted = list(package.get("dependencies", []))
        for extra in extras:
            wanted += package.get("optional-dependencies", {}).get(extra, [])
        pending += [(each["name"], tuple(each.get("extra", ()))) for each in wanted]
    return {name for name, _ in seen} - {"tggate"}


def _normalized(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


def test_every_module_the_product_imports_comes_with_a_production_install() -> None:
    closure = _product_closure()
    distributions = packages_distributions()
    wrong = []
    for found in _imports():
        top = _top(found.target)
        if not _inside(found.importer, PRODUCT) or top in sys.stdlib_module_names:
            continue
        if top in (PRODUCT, "__future__"):
            continue
        names = {_normalized(name) for name in distributions.get(top, [top])}
        if names.isdisjoint(closure):
            wrong.append(f"{found.where}: {found.target} (from {', '.join(sorted(names))})")
    assert wrong == [], (
        "the product imports what `pip install tggate` does not install; add it to "
        "[project.dependencies] in pyproject.toml:\n" + "\n".join(wrong)
    )
