"""Imports go one way: a lower layer never imports a higher one.

Read from the source (every ``import``, also those inside functions and under
``TYPE_CHECKING``), so a lazy import that breaks the layering is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# (modules below, modules they must never import)
RULES = [
    ("indexer", ("recommender", "sumo")),
    ("recommender", ("sumo",)),
    ("recommender.users", ("recommender.api", "recommender.commands")),
    ("recommender.kmeans", ("recommender.api", "recommender.commands", "recommender.gaps",
                            "recommender.policies", "recommender.regions", "recommender.users")),
    ("recommender.policies", ("recommender.api", "recommender.commands", "recommender.users")),
    ("recommender.gaps", ("recommender.api", "recommender.commands")),
    ("recommender.regions", ("recommender.api", "recommender.commands")),
    ("recommender.engine", ("recommender.api", "recommender.commands")),
    ("recommender.state", ("recommender.api", "recommender.commands", "recommender.users")),
    ("recommender.sim", ("recommender.api", "recommender.commands")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, absolute names (relative imports resolved)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def modules_under(prefix: str) -> list[Path]:
    root = REPO / prefix.replace(".", "/")
    if root.with_suffix(".py").is_file():
        return [root.with_suffix(".py")]
    return sorted(root.rglob("*.py"))


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize(("lower", "higher"), RULES, ids=[r[0] for r in RULES])
def test_no_import_from_a_lower_layer_to_a_higher_one(
    lower: str, higher: tuple[str, ...]
) -> None:
    files = modules_under(lower)
    assert files, f"no modules under {lower}: the rule is stale"
    wrong = sorted(
        f"{module_name(f)} imports {name}"
        for f in files for name in imports_of(f)
        if any(within(name, h) for h in higher)
    )
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    # The check above can fail: imports inside functions and relative ones are read too.
    source = "def f():\n    from ..api import app\n    import recommender.api.deps\n"
    assert {"recommender.api", "recommender.api.app", "recommender.api.deps"} <= \
        imports_in(source, "recommender.gaps.probe")
    assert "recommender.gaps.describe" in imports_in("from . import describe",
                                                     "recommender.gaps", is_package=True)
