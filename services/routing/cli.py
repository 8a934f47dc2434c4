"""Commands the routing service adds to ``minqing``:

- ``minqing directory import FILE.yaml``: emit the directory events a district file
  implies (only the differences, so it is safe to repeat);
- ``minqing directory check FILE.yaml``: validate a file and show what importing it
  would emit, without writing;
- ``minqing routing scan``: record the missed deadlines now (what the service's scanner
  does every ``MINQING_ROUTING_SCAN_INTERVAL`` seconds);
- ``minqing routing rebuild``: recompute the routing read models from the event store;
- ``minqing routing evaluate [--district D] [--set FILE]``: the classifier in use on a
  labelled set (the district's held-out set by default): accuracy, each category's
  precision and recall, urgent recall, confusions, the cost of one prediction;
- ``minqing routing train --district D``: fit a classifier on the labelled set and the
  district's staff corrections, publish it unless it does worse on the held-out set than
  the one in use (``--reproduce N`` fits version N again and checks it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from contracts.base import Actor, ActorRole
from eventkit.db import district_transaction
from eventkit.local import NoDatabase
from eventkit.loop import run as run_loop
from eventkit.refusals import Refusal
from eventkit.sealed_texts import TextKeys
from services.routing.bootstrap import Routing, bootstrap
from services.routing.classification import Classifier
from services.routing.classifier_model import LabelledOpinion
from services.routing.district_file import DistrictFile, DistrictFileError, load_district_file
from services.routing.evaluation import ExamplesError, Report, evaluate
from services.routing.liaison_cli import LIAISON_COMMANDS
from services.routing.rebuild import rebuild
from services.routing.settings import RoutingSettings
from services.routing.staff_cli import staff
from services.routing.training import (
    TrainingOutcome,
    heldout_set,
    labelled_set,
    load_examples,
)

T = TypeVar("T")

CLI_ACTOR = Actor(id="minqing-cli", role=ActorRole.DISTRICT_ADMIN)


def _with_routing(work: Callable[[Routing], Awaitable[T]]) -> T:
    """Run ``work`` on the routing service, without its background work."""

    async def main() -> T:
        async with bootstrap(RoutingSettings(), background=False) as routing:
            return await work(routing)

    try:
        return run_loop(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc


def load_district_file_or_exit(path: Path) -> DistrictFile:
    """The district file, or a readable list of what is wrong with it."""
    try:
        return load_district_file(path)
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException(
            f"区目录文件无效 / invalid district file: {len(exc.problems)} problem(s)"
        ) from exc


@click.group()
def directory() -> None:
    """区目录 / The directory: districts, streets, stations, representatives."""


@directory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--retire-missing",
    is_flag=True,
    help="撤销文件中没有的联络站和代表 / retire stations and representatives not in the file",
)
def directory_import(file: Path, retire_missing: bool) -> None:
    """导入区目录文件 / Import a district file (YAML); repeating it changes nothing."""
    district = load_district_file_or_exit(file)

    async def work(routing: Routing) -> dict[str, int]:
        plan = await routing.directory.change(
            district.district.code, district, CLI_ACTOR, retire_missing=retire_missing
        )
        return plan.summary

    try:
        summary = _with_routing(work)
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException("区目录文件无效 / invalid district file") from exc
    if not summary:
        click.echo(f"{district.district.code}: 目录已是最新 / the directory is up to date")
        return
    click.echo(f"{district.district.code}: 已导入 / imported")
    for event_type, count in sorted(summary.items()):
        click.echo(f"  {event_type:<30} {count}")


@directory.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def directory_check(file: Path) -> None:
    """检查区目录文件 / Validate a district file and show what importing it would emit."""
    district = load_district_file_or_exit(file)
    code = district.district.code

    async def work(routing: Routing) -> dict[str, int]:
        return (await routing.directory.preview(code, district, CLI_ACTOR)).summary

    try:
        summary = _with_routing(work)
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException("区目录文件无效 / invalid district file") from exc
    click.echo(f"{code}: 文件有效 / the file is valid")
    if not summary:
        click.echo("  导入不会产生变化 / importing it would change nothing")
    for event_type, count in sorted(summary.items()):
        click.echo(f"  would emit {event_type:<30} {count}")


@click.group()
def routing() -> None:
    """分办 / Routing: overdue scan, read-model rebuild, classifier training."""


@routing.command("scan")
@click.option("--now", "now_text", default=None, help="ISO time to scan at (default: now)")
def routing_scan(now_text: str | None) -> None:
    """督办扫描 / Record every deadline missed up to now."""
    moment = datetime.fromisoformat(now_text) if now_text else None
    if moment is not None and moment.tzinfo is None:
        raise click.BadParameter("--now needs a time zone, e.g. 2026-10-09T09:00:00+08:00")

    async def work(routing: Routing) -> int:
        return await routing.overdue.scan(moment)

    recorded = _with_routing(work)
    click.echo(f"超期记录 / overdue deadlines recorded: {recorded}")


@routing.command("rebuild")
def routing_rebuild() -> None:
    """重建读模型 / Recompute the routing tables from the event store."""

    async def work(routing: Routing) -> dict[str, int]:
        async with routing.pool.acquire() as conn:
            return await rebuild(conn, routing.store, TextKeys(routing.settings.privacy_keys()))

    counts = _with_routing(work)
    click.echo(
        f"已重建 / rebuilt: {counts['cases']} cases from {counts['case']} case events, "
        f"{counts['directory']} directory events, {counts['feedback']} ratings"
    )
    sys.stdout.flush()


def _examples_or_exit(path: Path) -> list[LabelledOpinion]:
    try:
        return load_examples(path)
    except FileNotFoundError as exc:
        raise click.ClickException(f"标注样本不存在 / no labelled set at {path}") from exc
    except ExamplesError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException(f"标注样本无效 / invalid labelled set {path}") from exc


def _echo_report(report: Report, names: dict[str, str]) -> None:
    for line in report.lines(names=names):
        click.echo(line)


@routing.command("evaluate")
@click.option("--district", "district_id", default="demo", show_default=True)
@click.option(
    "--set",
    "set_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines of labelled opinions (default: the district's held-out set)",
)
@click.option("--keywords-only", is_flag=True, help="the taxonomy's keywords without the model")
def routing_evaluate(district_id: str, set_path: Path | None, keywords_only: bool) -> None:
    """评估分类 / The classifier in use on a labelled set."""
    path = set_path or heldout_set(district_id)
    examples = _examples_or_exit(path)

    async def work(routing: Routing) -> tuple[Report, str, dict[str, str], float]:
        async with district_transaction(routing.pool, district_id) as conn:
            ctx = await routing.districts.require(conn, district_id)
        if ctx.classifier is None or ctx.taxonomy is None:
            raise click.ClickException(f"{district_id}: 未发布分类目录 / no taxonomy published")
        classifier = ctx.classifier
        if keywords_only:
            classifier = Classifier(ctx.taxonomy, routing.segmenter)
        version = classifier.model_version
        name = f"model v{version} + keywords" if version else "taxonomy keywords only"
        if ctx.missing_model is not None and not keywords_only:
            name += (
                f" (model v{ctx.missing_model} is in use but missing: "
                f"train --reproduce {ctx.missing_model} / 在用模型缺失，请重新拟合)"
            )
        for example in examples[:20]:  # warm up: first-call costs are not prediction's
            classifier.classify(example.text)
        started = time.perf_counter()
        report = evaluate(classifier.classify, examples)
        cost = (time.perf_counter() - started) / max(1, len(examples))
        names = {code: c.name_zh for code, c in ctx.taxonomy.categories.items()}
        return report, name, names, cost

    report, name, names, cost = _with_routing(work)
    click.echo(f"{district_id}: {name} on {path} ({len(examples)} opinions)")
    _echo_report(report, names)
    click.echo("")
    click.echo(f"cost of one classification: {cost * 1e6:.0f} µs (segmentation included)")


@routing.command("train")
@click.option("--district", "district_id", required=True)
@click.option(
    "--set",
    "set_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="labelled opinions to train on (default: the district's labelled.jsonl)",
)
@click.option(
    "--heldout",
    "heldout_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="labelled opinions to judge on, never trained on (default: heldout.jsonl)",
)
@click.option("--reproduce", type=int, default=None, help="fit version N again and check it")
@click.option(
    "--replace-missing",
    is_flag=True,
    help="the model in use is lost and cannot be fitted again: judge against the keywords",
)
def routing_train(
    district_id: str,
    set_path: Path | None,
    heldout_path: Path | None,
    reproduce: int | None,
    replace_missing: bool,
) -> None:
    """训练分类模型 / Train the district's classifier; publish it unless it is worse."""
    labelled = _examples_or_exit(set_path or labelled_set(district_id))
    if reproduce is not None:

        async def again(routing: Routing) -> str:
            return (await routing.training.reproduce(district_id, reproduce, labelled)).digest

        try:
            found = _with_routing(again)
        except Refusal as exc:
            raise click.ClickException(f"{exc.title} / {exc.detail_en or exc.title_en}") from exc
        click.echo(f"{district_id}: version {reproduce} reproduced, digest {found}")
        return
    heldout = _examples_or_exit(heldout_path or heldout_set(district_id))

    async def work(routing: Routing) -> TrainingOutcome:
        return await routing.training.train(
            district_id, labelled, heldout, CLI_ACTOR, replace_missing=replace_missing
        )

    try:
        outcome = _with_routing(work)
    except Refusal as exc:
        raise click.ClickException(f"{exc.title} / {exc.detail_en or exc.title_en}") from exc
    in_use = f"v{outcome.in_use_version}" if outcome.in_use_version else "keywords only"
    if outcome.missing_version is not None:
        in_use = f"keywords only, v{outcome.missing_version} being lost"
    click.echo(f"{district_id}: held-out set, the classifier in use ({in_use}):")
    _echo_report(outcome.in_use, {})
    click.echo("")
    click.echo(f"{district_id}: held-out set, the new model:")
    _echo_report(outcome.candidate, {})
    click.echo("")
    if outcome.published is None:
        raise click.ClickException(f"新模型未发布 / not published: {outcome.refused}")
    event = outcome.published
    click.echo(
        f"{district_id}: published classifier v{event.version} "
        f"({event.examples} examples + {event.corrections} corrections, "
        f"urgency threshold {event.urgency_threshold}, digest {event.model_digest[:12]}…)"
    )


COMMANDS = [directory, routing, staff, *LIAISON_COMMANDS]
