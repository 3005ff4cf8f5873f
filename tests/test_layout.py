"""The package's shape: imports go one way, the two branches never borrow from each other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "eventwatch"

LAYERS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("base", "", frozenset({"errors", "logs", "files", "tomlfile", "templating", "metrics"})),
    (
        "records",
        "",
        frozenset({"models", "problems", "settings", "calendars", "inputs", "wording"}),
    ),
    (
        "feeds",
        "feeds",
        frozenset(
            {"timezones", "revisions", "feeds", "publication", "feedcache", "pages", "export"}
        ),
    ),
    ("plan", "reminders", frozenset({"policy", "messages", "delivery", "scheduling"})),
    ("store", "", frozenset({"ledger"})),
    ("sending", "reminders", frozenset({"dispatch", "reminders"})),
    (
        "composition",
        "",
        frozenset(
            {
                "simulation",
                "reports",
                "web",
                "httpserver",
                "systemd",
                "daemon",
                "cli",
                "__main__",
                "__init__",
            }
        ),
    ),
)
"""Bottom to top, as the README's module map draws them: (layer, branch, modules).

A module imports only from its own layer or one below, and a module of one branch (feeds,
reminders) never from the other: what both need lives in a layer beneath them, and only the
composition (daemon, cli, simulate) joins them. ``feeds`` and ``plan`` are side by side: the
plan sits above the feeds in this list only because a list has an order.
"""

_SIDE_BY_SIDE = frozenset({"feeds", "plan"})

IO_LIBRARIES = (
    "sqlalchemy",
    "sqlite3",
    "aiosmtplib",
    "smtplib",
    "apscheduler",
    "uvicorn",
    "starlette",
    "asyncio",
    "jinja2",
    "icalendar",
    "prometheus_client",
    "mailbox",
)


def _place(module: str) -> tuple[int, str, str]:
    for index, (layer, branch, modules) in enumerate(LAYERS):
        if module in modules:
            return index, layer, branch
    msg = f"{module}.py is in no layer of LAYERS: place it, and in the README's module map"
    raise AssertionError(msg)


def _imports(path: Path) -> set[str]:
    """The eventwatch modules ``path`` imports, at run time or for type checking alike."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "eventwatch":
            found |= {a.name for a in node.names if a.name != "__version__"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eventwatch."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("eventwatch.")}
    return found - {path.stem}


MODULES = sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_every_module_has_a_layer(path: Path) -> None:
    """Each module is placed in exactly one layer, so a new one must be placed on purpose."""
    assert sum(path.stem in modules for _, _, modules in LAYERS) == 1, path.stem


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_imports_go_down_or_across_the_same_layer(path: Path) -> None:
    """No module imports from a layer above its own (the composition imports everything)."""
    index, layer, _ = _place(path.stem)
    upward = []
    for target in sorted(_imports(path)):
        other, other_layer, _ = _place(target)
        side_by_side = {layer, other_layer} == _SIDE_BY_SIDE
        if other > index and not side_by_side:
            upward.append(f"{target} ({other_layer})")
    assert upward == [], f"{path.stem} ({layer}) imports up: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_no_branch_borrows_from_the_other(path: Path) -> None:
    """A feed module never imports a reminder module, nor a reminder module a feed module."""
    _, _, branch = _place(path.stem)
    sideways = [t for t in sorted(_imports(path)) if branch and _place(t)[2] not in {"", branch}]
    assert sideways == [], f"{path.stem} ({branch}) borrows sideways: {sideways}"


def test_the_policy_does_no_io() -> None:
    """Importing the reminder policy loads no database, mail, scheduler, template or loop code."""
    probe = (
        "import sys, eventwatch.policy; "
        "print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert loaded.isdisjoint(IO_LIBRARIES), sorted(loaded & set(IO_LIBRARIES))


def test_the_policy_imports_only_records() -> None:
    """The policy reads records and nothing else of eventwatch."""
    assert _imports(PACKAGE / "policy.py") == {"models"}


def test_the_layers_name_only_real_modules() -> None:
    """Every module the layers name exists, so the map cannot drift from the package."""
    named = set().union(*(modules for _, _, modules in LAYERS))
    assert named == {p.stem for p in MODULES}
