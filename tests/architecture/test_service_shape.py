"""The shape of every service (docs/services.md), checked on the source: the arrows
between packages, pure modules that do no I/O, one composition root, no SQL against the
event store outside eventkit, files of a readable length, an injected clock."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").is_file())

PURE: dict[str, set[str]] = {
    "routing": {
        "api_models",
        "assignment",
        "case_commands",
        "case_state",
        "classification",
        "classifier_model",
        "deadlines",
        "directory",
        "directory_plan",
        "district_file",
        "domain",
        "duplicates",
        "errors",
        "evaluation",
        "followups",
        "ids",
        "liaison_models",
        "liaison_plan",
        "staff_rules",
        "staff_scope",
        "workbench/countdown",
        "workbench/i18n",
    },
    "notification": {
        "api_models",
        "contact_book",
        "errors",
        "ids",
        "messages",
        "rules",
        "signing",
        "timing",
    },
    "reporting": {
        "api_models",
        "assessment",
        "case_facts",
        "changes",
        "charts",
        "errors",
        "folding",
        "i18n",
        "labels",
        "page_charts",
        "periods",
        "scope",
        "stats",
        "tables",
    },
    "intake": {
        "errors",
        "feedback_rules",
        "open311_format",
        "opinion_record",
        "progress",
        "proof_of_work",
        "submission_rules",
        "taxonomy",
        "text",
        "tracking_codes",
        "tracking_views",
        "withdrawal_rules",
    },
}
"""Per service, the modules that decide without I/O."""

IO_MODULES = (
    "asyncpg",
    "aiokafka",
    "faststream",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
    "structlog",
    "eventkit.db",
    "eventkit.store",
    "eventkit.consumer",
    "eventkit.relay",
    "eventkit.http",
    "eventkit.service",
    "eventkit.kafka",
    "eventkit.local",
    "eventkit.privacy",
    "eventkit.dlq",
    "eventkit.logging",
    "eventkit.auth",
)
"""What a pure module may not import."""

WIRING = re.compile(r"\b(open_runtime|create_pool|EventStore)\(")
MAX_LINES = 600


def python_files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from x import y`` counts as ``x`` and ``x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_there_are_services_to_check() -> None:
    assert {"intake", "routing"} <= set(SERVICES)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("contracts", ("eventkit", "services", "minqing")),
        ("eventkit", ("services", "minqing")),
        ("services", ("minqing",)),
    ],
)
def test_arrows_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(ROOT / package)
        for module in imports(path)
        if under(module, forbidden)
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = tuple(f"services.{s}" for s in SERVICES if s != service)
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(ROOT / "services" / service)
        for module in imports(path)
        if under(module, others)
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("service", sorted(PURE))
def test_pure_modules_import_nothing_that_does_io(service: str) -> None:
    folder = ROOT / "services" / service
    missing = {m for m in PURE[service] if not (folder / f"{m}.py").is_file()}
    assert not missing, f"listed as pure but absent: {sorted(missing)}"
    wrong = {
        f"{service}/{name}.py imports {module}"
        for name in PURE[service]
        for module in imports(folder / f"{name}.py")
        if under(module, IO_MODULES)
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("service", SERVICES)
def test_the_composition_root_is_the_only_place_a_service_is_wired(service: str) -> None:
    folder = ROOT / "services" / service
    assert (folder / "bootstrap.py").is_file()
    assert "async def bootstrap(" in (folder / "bootstrap.py").read_text(encoding="utf-8")
    wiring = {
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in python_files(folder)
        if path.name != "bootstrap.py"
        for match in WIRING.finditer(path.read_text(encoding="utf-8"))
    }
    assert not wiring, sorted(wiring)


def test_no_service_writes_sql_against_the_event_store() -> None:
    wrong = [
        str(path.relative_to(ROOT))
        for path in python_files(ROOT / "services")
        if "eventstore." in path.read_text(encoding="utf-8")
    ]
    assert not wrong


def test_no_service_reads_the_wall_clock() -> None:
    wrong = [
        str(path.relative_to(ROOT))
        for path in python_files(ROOT / "services")
        if re.search(r"datetime\.now\(|time\.time\(\)", path.read_text(encoding="utf-8"))
    ]
    assert not wrong, "inject eventkit.clock.Clock instead"


def test_no_file_of_a_service_is_longer_than_a_reader_can_hold() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in python_files(ROOT / "services")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long
