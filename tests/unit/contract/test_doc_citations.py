"""Every `docs/…` a comment, docstring or document cites exists, down to its anchor.

Code cites the steps and rules as `docs/scenarios.md#z7` or `docs/contract.md#secrets`; a renamed
step or a moved rule fails here instead of leaving a dead reference. Nothing cites the original
mission's file, which lives outside the repository: a reader of the tree could not follow it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SEARCHED = ("src", "sandbox/src", "tests", "bench", "deploy", "docs", "README.md")
SUFFIXES = {".py", ".md", ".yaml", ".toml", ".conf", ".js", ".html", ".txt"}

# `docs/scenarios.md#z7` anywhere; `(contract.md#secrets)` as a Markdown link inside docs/.
CITATION = re.compile(r"docs/([\w/.-]+\.(?:md|yaml))(?:#([\w-]+))?")
DOCS_LINK = re.compile(r"\]\(([\w/.-]+\.(?:md|yaml))(?:#([\w-]+))?\)")
ANCHOR = re.compile(r"<a id=\"([\w-]+)\"></a>")

# Where a citation of the mission's file must not appear: every folder of the tree, sandbox/ whole.
GUARDED = ("src", "sandbox", "tests", "bench", "deploy", "docs", "README.md")
THIS_FILE = Path(__file__).resolve()
SKIPPED_PARTS = {".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
# The mission's file by its name, or any of its sections and steps by the upper-case word (its
# section sign, "A4/A5" or a noun). Case-sensitive on purpose: ActionSpec, ArgSpec or an OpenAPI
# spec are other words, and step names in tests (test_U2_…) never carry it.
OUTSIDE_CITATION = re.compile(r"\bSPEC\b|(?i:\bspec\.md\b)")


def _files() -> list[Path]:
    found: list[Path] = []
    for name in SEARCHED:
        path = ROOT / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    return [p for p in found if ".venv" not in p.parts and "__pycache__" not in p.parts]


def _anchors(document: Path) -> set[str]:
    text = document.read_text("utf-8")
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    return set(ANCHOR.findall(text)) | headings


def _citations() -> list[tuple[str, Path, str | None]]:
    cited: list[tuple[str, Path, str | None]] = []
    for path in _files():
        text = path.read_text("utf-8", errors="replace")
        where = str(path.relative_to(ROOT))
        for target, anchor in CITATION.findall(text):
            cited.append((where, ROOT / "docs" / target, anchor or None))
        if path.suffix == ".md" and path.is_relative_to(ROOT / "docs"):
            for target, anchor in DOCS_LINK.findall(text):
                cited.append((where, (path.parent / target).resolve(), anchor or None))
    return cited


def test_citations_are_found() -> None:
    targets = {target.name for _, target, _ in _citations()}
    assert {"scenarios.md", "contract.md", "auth.yaml"} <= targets


@pytest.mark.parametrize(
    ("where", "target", "anchor"),
    sorted(set(_citations()), key=lambda c: (c[0], str(c[1]), c[2] or "")),
    ids=lambda value: str(value) if not isinstance(value, Path) else value.name,
)
def test_each_cited_document_and_anchor_exists(
    where: str, target: Path, anchor: str | None
) -> None:
    assert target.is_file(), f"{where} cites {target.relative_to(ROOT)}, which does not exist"
    if anchor is not None and target.suffix == ".md":
        assert anchor in _anchors(target), f"{where} cites {target.name}#{anchor}: no such anchor"


@pytest.mark.parametrize(
    "step",
    [f"c{i}" for i in range(1, 8)]
    + ["u1", "u2"]
    + [f"a{i}" for i in range(1, 7)]
    + [f"z{i}" for i in range(1, 10)]
    + ["l1", "l2", "l3", "n1", "n2", "n3"],
)
def test_every_step_has_its_anchor(step: str) -> None:
    assert step in _anchors(ROOT / "docs" / "scenarios.md")


def _guarded_texts() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name in GUARDED:
        path = ROOT / name
        paths = [path] if path.is_file() else sorted(path.rglob("*"))
        for each in paths:
            # This file is skipped: it holds the examples the guard must catch.
            if not each.is_file() or SKIPPED_PARTS & set(each.parts) or each == THIS_FILE:
                continue
            try:
                text = each.read_text("utf-8")
            except UnicodeDecodeError:  # images: nothing to cite in them
                continue
            found.append((str(each.relative_to(ROOT)), text))
    return found


def test_nothing_cites_the_mission_file_outside_the_repository() -> None:
    texts = _guarded_texts()
    assert any(where.endswith("scenarios.md") for where, _ in texts)
    hits = [
        f"{where}:{number}: {line.strip()}"
        for where, text in texts
        for number, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE_CITATION.search(line)
    ]
    assert not hits, "cite docs/scenarios.md or docs/contract.md instead:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    ("line", "cites"),
    [
        ("(SPEC §5.1)", True),
        ("Step names are those of `SPEC.md` §3", True),
        ("(SPEC A4/A5)", True),
        ("see spec.md", True),
        ("spec: ActionSpec, args: ArgSpec", False),
        ("the OpenAPI spec of the module", False),
        ("def test_U2_login_with_a_type() -> None:", False),
        ("OPENAPI_SPEC = 1", False),
    ],
)
def test_the_guard_tells_a_citation_from_other_words(line: str, cites: bool) -> None:
    assert bool(OUTSIDE_CITATION.search(line)) is cites
