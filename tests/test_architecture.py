"""The pure core stays pure: no I/O, no event loop, no wall clock.

DESIGN.md: normalise, dedupe, moderate, match and digest logic are plain functions over
plain data, with time passed in. Add each new core module (or package directory) to
CORE_MODULES below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Paths relative to the repository root; a directory means every .py file beneath it.
CORE_MODULES: tuple[str, ...] = (
    "aggregator/model.py",
    "aggregator/match.py",
    "aggregator/sanitise.py",
    "aggregator/normalise",
    "aggregator/dedupe.py",
    "aggregator/moderate.py",
    "aggregator/lexicon.py",
    "aggregator/audience.py",
    "aggregator/store/base.py",
    "aggregator/digest/schedule.py",
    "aggregator/digest/assign.py",
    "aggregator/digest/quotes.py",
    "aggregator/digest/build.py",
    "aggregator/digest/render.py",
    "aggregator/digest/edits.py",
    "aggregator/digest/links.py",
    "aggregator/digest/meta.py",
    "aggregator/digest/classify.py",
    "aggregator/digest/writeups.py",
)

FORBIDDEN_IMPORTS = frozenset(
    {
        "asyncio",
        "aiohttp",
        "sqlite3",
        "jinja2",
        "socket",
        "websockets",
        "time",  # the wall clock: in the core, time is an argument
        "selectors",
        "ssl",
        "urllib.request",
        "http.client",
        "subprocess",
        "redis",
        "psycopg",
        "asyncpg",
    }
)
# Reading "now" is the wall clock too, whichever module it comes from.
WALL_CLOCK_METHODS = frozenset({"now", "utcnow", "today", "monotonic", "perf_counter"})


def core_files() -> list[Path]:
    files: list[Path] = []
    for entry in CORE_MODULES:
        path = ROOT / entry
        assert path.exists(), f"{entry} is listed as core but does not exist"
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Absolute names of everything `source` (the text of `module`) imports.

    Relative imports are resolved; `from a.b import c` yields both a.b and a.b.c, since
    c may be a module. Dynamic imports are reported as "__import__"/"importlib".
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "__import__":
                found.add("__import__")
            if isinstance(node.func, ast.Attribute) and node.func.attr == "import_module":
                found.add("importlib")
    return found


def file_imports(path: Path) -> set[str]:
    return imports_of(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def is_forbidden(name: str) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:n]) in FORBIDDEN_IMPORTS for n in range(1, len(parts) + 1))


def is_aggregator_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def wall_clock_calls(source: str) -> list[str]:
    return [
        f"{ast.unparse(node.func)}()"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WALL_CLOCK_METHODS
    ]


CORE_FILES = core_files()
CORE_NAMES = {module_name(path) for path in CORE_FILES}


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CORE_FILES, ids=_id)
def test_core_module_imports_no_io(path: Path) -> None:
    names = file_imports(path)
    bad = sorted(name for name in names if is_forbidden(name))
    assert not bad, f"{_id(path)} imports {bad}: the core must stay pure"
    assert not {"__import__", "importlib"} & names, f"{_id(path)} imports dynamically"


@pytest.mark.parametrize("path", CORE_FILES, ids=_id)
def test_core_depends_only_on_core(path: Path) -> None:
    # A core module importing a non-core aggregator module would pull its I/O in too.
    outside = sorted(
        name
        for name in file_imports(path)
        if name.startswith("aggregator.") and is_aggregator_module(name) and name not in CORE_NAMES
    )
    assert not outside, f"{_id(path)} imports non-core {outside}"


@pytest.mark.parametrize("path", CORE_FILES, ids=_id)
def test_core_reads_no_wall_clock(path: Path) -> None:
    calls = wall_clock_calls(path.read_text(encoding="utf-8"))
    assert not calls, f"{_id(path)} reads the clock: {calls}"


def test_core_list_covers_the_normalisers() -> None:
    assert {
        "aggregator.normalise",
        "aggregator.normalise.mastodon",
        "aggregator.normalise.bluesky",
    } <= CORE_NAMES


def test_the_checks_catch_violations() -> None:
    source = (
        "import asyncio.queues\n"
        "from time import monotonic\n"
        "from .. import store\n"
        "from ..sources import jetstream\n"
        "import importlib\n"
        "mod = importlib.import_module('socket')\n"
        "stamp = datetime.now(UTC)\n"
    )
    names = imports_of(source, "aggregator.normalise.example")
    assert {"asyncio.queues", "time", "aggregator.store", "aggregator.sources"} <= names
    assert "importlib" in names
    assert is_forbidden("asyncio.queues") and is_forbidden("time")
    assert not is_forbidden("timeit") and not is_forbidden("datetime")
    assert not is_forbidden("aggregator.model") and not is_forbidden("html.parser")
    assert wall_clock_calls(source) == ["datetime.now()"]
    package_names = imports_of("from . import fields", "aggregator.normalise", is_package=True)
    assert "aggregator.normalise.fields" in package_names
