"""One word per idea, read from the source with `ast` (issue 8: one clock convention, no two classes
of one name).

A name that means one thing in the product is defined in one module only, and the sandbox imports
it instead of declaring its own: `Clock` (seconds since the epoch, like `time.time`) is
`tggate.core.ports.Clock`; `parse_text` (a message's text into a command) is
`tggate.core.commands.parse_text`, so the fake Telegram's parse modes are `parse_entities`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "tggate": ROOT / "src" / "tggate",
    "tggate_sandbox": ROOT / "sandbox" / "src" / "tggate_sandbox",
}
# The name -> the one module that defines it.
ONE_HOME = {"Clock": "tggate.core.ports", "parse_text": "tggate.core.commands"}


def _modules() -> Iterator[tuple[str, str]]:
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path.read_text("utf-8")


def _defined(source: str) -> set[str]:
    """Names a module defines at its top level: classes, functions, assignments, type aliases."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif hasattr(ast, "TypeAlias") and isinstance(node, ast.TypeAlias):  # Python 3.12+
            names.add(node.name.id)
    return names


def _strays(modules: Iterator[tuple[str, str]]) -> list[str]:
    return [
        f"{module} defines {name}, which is {ONE_HOME[name]}'s: import it from there"
        for module, source in modules
        for name in sorted(_defined(source) & ONE_HOME.keys())
        if module != ONE_HOME[name]
    ]


def test_each_word_is_defined_in_its_one_module() -> None:
    defined = {module: _defined(source) for module, source in _modules()}
    for name, home in ONE_HOME.items():
        assert name in defined[home], f"{home} no longer defines {name}"
    assert _strays(_modules()) == []


def test_a_second_definition_is_found() -> None:
    planted = [
        ("tggate_sandbox.reference.auth.app", "Clock = Callable[[], float]\n"),
        ("tggate_sandbox.fakes.telegram.formatting", "def parse_text(text: str) -> str: ...\n"),
        ("tggate_sandbox.fakes.oauth.app", "from tggate.core.ports import Clock\n"),
    ]
    assert _strays(iter(planted)) == [
        "tggate_sandbox.reference.auth.app defines Clock, which is tggate.core.ports's: "
        "import it from there",
        "tggate_sandbox.fakes.telegram.formatting defines parse_text, which is "
        "tggate.core.commands's: import it from there",
    ]


# Public top-level class names defined in more than one module, each left for a stated reason
# (a comment per name); none now.
SHARED_CLASS_NAMES: frozenset[str] = frozenset()


def _public_classes(source: str) -> set[str]:
    return {
        node.name
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }


def _twice(
    modules: Iterator[tuple[str, str]], *, shared: frozenset[str] = SHARED_CLASS_NAMES
) -> dict[str, list[str]]:
    homes: dict[str, list[str]] = {}
    for module, source in modules:
        for name in _public_classes(source):
            homes.setdefault(name, []).append(module)
    return {
        name: sorted(where)
        for name, where in sorted(homes.items())
        if len(where) > 1 and name not in shared
    }


def test_no_public_class_name_is_defined_twice() -> None:
    """One name, one meaning (issue 8): a class defined in two modules of the product and the
    sandbox either is one idea (define it once, import it) or two (rename one)."""
    assert _twice(_modules()) == {}


def test_a_class_defined_twice_is_found() -> None:
    planted = [
        ("tggate.adapters.http_pool", "class HttpAnswer: ...\nclass _Connection: ...\n"),
        ("tggate.client.http", "class HttpAnswer: ...\nclass _Connection: ...\n"),
        ("tggate.core.ports", "class Notification: ...\n"),
        ("tggate_sandbox.reference.main.notifications", "class Notification: ...\n"),
    ]
    assert _twice(iter(planted)) == {
        "HttpAnswer": ["tggate.adapters.http_pool", "tggate.client.http"],
        "Notification": ["tggate.core.ports", "tggate_sandbox.reference.main.notifications"],
    }
    # A name left shared on purpose is not reported.
    assert _twice(iter(planted), shared=frozenset({"Notification"})) == {
        "HttpAnswer": ["tggate.adapters.http_pool", "tggate.client.http"]
    }
