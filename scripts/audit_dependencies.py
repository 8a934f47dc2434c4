"""Audit the pinned dependencies (``constraints.txt``) for known vulnerabilities; run by
``make test`` (``make audit``).

pip-audit checks every pin against the advisories PyPI publishes for that release. Where
the index answers for a project but not for one of its releases (some mirrors serve only
a project's page, whose advisories are those of its newest release), a pin that *is* the
newest release is checked against that page instead, and any other pin is listed as not
audited, with the reason. Any known vulnerability fails the run; so does an index that
answers nothing at all when ``MINQING_AUDIT_REQUIRED=1`` or ``CI=true``, otherwise that is only
said (an offline machine cannot audit).

Usage: ``python scripts/audit_dependencies.py [constraints.txt]``; advisories to accept
knowingly go in ``MINQING_AUDIT_IGNORE`` (comma-separated ids), each with its reason in
docs/security.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi/{name}/json"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


@dataclass
class Audit:
    """What the run found."""

    audited: list[str] = field(default_factory=list)
    vulnerable: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)
    unreachable: int = 0


def pins(path: Path) -> dict[str, str]:
    """Name → pinned version, from a constraints file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            found[match[1].lower().replace("_", "-")] = match[2]
    return found


def pip_audit(path: Path, ignored: set[str]) -> dict[str, Any]:
    """pip-audit's JSON report on the pins, without resolving anything."""
    command = [
        sys.executable, "-m", "pip_audit", "--disable-pip", "--no-deps", "-r", str(path),
        "-s", "pypi", "-f", "json", "--progress-spinner", "off",
        *(arg for vuln in sorted(ignored) for arg in ("--ignore-vuln", vuln)),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"dependencies": [], "error": done.stderr.strip()[-2000:]}
    return report


def project_page(name: str) -> dict[str, Any] | None:
    """The project's JSON page on PyPI; None when it cannot be had."""
    try:
        with urllib.request.urlopen(PYPI.format(name=name), timeout=30) as answer:
            page: dict[str, Any] = json.load(answer)
            return page
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None


def advisories(vulns: list[dict[str, Any]], ignored: set[str]) -> list[str]:
    """The ids of the advisories that count (not withdrawn, not knowingly accepted)."""
    return [
        str(v.get("id"))
        for v in vulns
        if not v.get("withdrawn") and not ({str(v.get("id")), *v.get("aliases", ())} & ignored)
    ]


def audit(path: Path, ignored: set[str]) -> Audit:
    """Every pin checked, by pip-audit or against the project's page."""
    pinned = pins(path)
    report = pip_audit(path, ignored)
    result = Audit()
    fallback: list[str] = []
    for dependency in report.get("dependencies", []):
        name = str(dependency["name"]).lower().replace("_", "-")
        if "skip_reason" in dependency:
            fallback.append(name)
            continue
        result.audited.append(name)
        for vuln in advisories(dependency.get("vulns", []), ignored):
            result.vulnerable.append(f"{name}=={dependency.get('version')}: {vuln}")
    if not report.get("dependencies"):
        fallback = sorted(pinned)
    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = dict(zip(fallback, pool.map(project_page, fallback), strict=True))
    for name, page in pages.items():
        version = pinned.get(name, "?")
        if page is None:
            result.unreachable += 1
            result.not_audited.append(f"{name}=={version}: the index did not answer")
        elif page["info"]["version"] != version:
            result.not_audited.append(
                f"{name}=={version}: the index has advisories for its newest release "
                f"({page['info']['version']}) only"
            )
        else:
            result.audited.append(name)
            for vuln in advisories(page.get("vulnerabilities") or [], ignored):
                result.vulnerable.append(f"{name}=={version}: {vuln}")
    return result


def main(argv: list[str]) -> int:
    """Audit, say what was found, and answer 1 when anything is vulnerable."""
    path = Path(argv[0] if argv else "constraints.txt")
    ignored = {v.strip() for v in os.environ.get("MINQING_AUDIT_IGNORE", "").split(",") if v}
    required = os.environ.get("MINQING_AUDIT_REQUIRED") == "1" or os.environ.get("CI") == "true"
    result = audit(path, ignored)
    total = len(pins(path))
    out = sys.stdout.write
    if result.unreachable == total:
        out(
            "依赖审计未能进行：无法连接软件包索引 / dependency audit: the index cannot be reached\n"
        )
        return 1 if required else 0
    out(
        f"依赖审计 / dependency audit: {len(result.audited)} of {total} pins audited, "
        f"{len(result.vulnerable)} known vulnerabilities\n"
    )
    for line in result.not_audited:
        out(f"  未审计 / not audited: {line}\n")
    for line in result.vulnerable:
        out(f"  有漏洞 / vulnerable: {line}\n")
    return 1 if result.vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
