"""The deployment files under ``deploy/`` agree with the code they deploy.

Docker does not run where these tests run, so the Dockerfile, the compose file and the
Kubernetes manifests are checked by reading them: names of settings, ports, commands,
dependencies, roles and secrets. One test runs ``deploy/postgres/init.sql`` for real,
with psql, against the session's embedded PostgreSQL.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import shlex
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import click
import pytest
import yaml

from eventkit.audit.settings import AuditSettings
from eventkit.db import create_pool, migrate
from eventkit.local import EmbeddedPostgres
from eventkit.loop import run as run_loop
from eventkit.settings import Settings
from eventkit.store import AuthorshipError, EventStore
from minqing.cli import main as cli
from minqing.system import SERVICES, ServiceSpec, migration_packages
from tests.helpers import envelope

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
INIT_SQL = DEPLOY / "postgres" / "init.sql"

EXTRA_SETTINGS: frozenset[str] = frozenset(
    {"MINQING_SINK_HOST", "MINQING_SINK_SMTP_PORT", "MINQING_SINK_HTTP_PORT"}
)
"""MINQING_* names the deploy files may use although no settings class has such a field:
the development outbox's own (``minqing/sink.py`` reads them itself)."""

RUNTIME_ROLE = "minqing_runtime"
LONG_RUNNING = ("relay", *(s.name for s in SERVICES))
"""The compose services that run for good and talk to both Kafka and PostgreSQL."""
LOGINS = {"relay": "minqing_audit", **{s.name: f"minqing_{s.name}" for s in SERVICES}}
"""Each process's own database login: the relay's leader seals, so it owns the audit
streams; every service owns its own (eventstore.authors)."""
OWNED = {
    "minqing_intake": "opinion",
    "minqing_routing": "case",
    "minqing_notification": "notification",
    "minqing_audit": "audit",
    "minqing_reporting": None,
}
"""A stream category each login may append to (reporting: none)."""

MINQING_NAME = re.compile(r"\bMINQING_[A-Z0-9_]*[A-Z0-9]\b")
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s]+)@", re.IGNORECASE)
PLACEHOLDER = "CHANGE_ME"
SECRET_NAME = re.compile("PASSWORD|SECRET|TOKEN|_KEYS?$")


# ---- reading the files ------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


@cache
def documents(path: Path) -> tuple[Any, ...]:
    with path.open(encoding="utf-8") as f:
        return tuple(doc for doc in yaml.safe_load_all(f) if doc is not None)


def compose() -> dict[str, Any]:
    (doc,) = documents(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def compose_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    assert isinstance(services, dict)
    return services


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return dict(env)


def compose_command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """The services this one waits for, and the condition of each."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs, from the short or the long syntax."""
    pairs = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            pairs.add((int(port["published"]), int(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            assert len(parts) in (2, 3), f"port {port!r} is not published on a fixed host port"
            pairs.add((int(parts[-2]), int(parts[-1])))
    return pairs


def k8s_manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.y*ml") if p.name != "kustomization.yaml")


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in k8s_manifests() for doc in documents(path)]


def k8s_of_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in k8s_objects() if o["kind"] == kind]


def k8s_named(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_of_kind(kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    job = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else None
    spec = (job or workload["spec"])["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def workloads() -> list[dict[str, Any]]:
    return [*k8s_of_kind("Deployment"), *k8s_of_kind("Job"), *k8s_of_kind("CronJob")]


def containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in workloads():
        for container in pod_spec(workload)["containers"]:
            yield workload, container


def container_command(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def config_value(kind: str, name: str, key: str) -> str:
    obj = k8s_named(kind, name)
    data = {**obj.get("data", {}), **obj.get("stringData", {})}
    assert key in data, f"{kind} {name} has no key {key}"
    return str(data[key])


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets, with every reference resolved (or failed)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                obj = k8s_named(kind, source[ref]["name"])
                env.update({k: str(v) for k, v in obj.get("data", {}).items()})
                env.update({k: str(v) for k, v in obj.get("stringData", {}).items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = config_value("Secret", ref["name"], ref["key"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[item["name"]] = config_value("ConfigMap", ref["name"], ref["key"])
    return env


def strings(value: Any) -> Iterator[str]:
    """Every string inside a parsed YAML document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    instructions = []
    for line in joined:
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def yaml_list(text: str) -> list[str]:
    """A Dockerfile exec-form argument list (a JSON array, which YAML reads)."""
    value = yaml.safe_load(text)
    assert isinstance(value, list), f"{text!r}: use the exec form"
    return [str(v) for v in value]


def copy_sources() -> list[str]:
    """The build-context paths the Dockerfile copies (not those copied between stages)."""
    sources = []
    for word, rest in dockerfile_instructions():
        if word not in ("COPY", "ADD"):
            continue
        args = shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        paths = [a for a in args if not a.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def ignored(path: str) -> bool:
    """Whether deploy/Dockerfile.dockerignore leaves ``path`` out of the build context.

    Docker's rules: the last matching pattern wins, ``!`` re-includes, and a pattern
    that matches a parent directory matches everything under it.
    """
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        patterns = [pattern]
        if pattern.startswith("**/"):
            patterns.append(pattern[3:])
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
            result = not negated
    return result


def service_settings() -> dict[str, type[Settings]]:
    """Each service's settings class."""
    from services.intake.settings import IntakeSettings
    from services.notification.settings import NotificationSettings
    from services.reporting.settings import ReportingSettings
    from services.routing.settings import RoutingSettings

    return {
        "intake": IntakeSettings,
        "routing": RoutingSettings,
        "notification": NotificationSettings,
        "reporting": ReportingSettings,
    }


def process_settings(name: str) -> type[Settings]:
    """The settings class a long-running process reads (the relay's: the audit settings)."""
    classes: dict[str, type[Settings]] = {"relay": AuditSettings, **service_settings()}
    return classes.get(name, Settings)


def setting_names() -> list[str]:
    """The environment variable of each field of the settings classes, shared and services'."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: dict[str, None] = {}
    classes: list[type[Settings]] = [Settings, AuditSettings, *service_settings().values()]
    for cls in classes:
        names.update({(prefix + name).upper(): None for name in cls.model_fields})
    return list(names)


def url_user(url: str) -> str | None:
    return urlsplit(url).username


# ---- every file ---------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_under_deploy_parses_into_mappings(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} holds no document"
    assert all(isinstance(doc, dict) for doc in docs)


def test_every_minqing_variable_in_deploy_names_a_real_setting() -> None:
    allowed = set(setting_names()) | EXTRA_SETTINGS
    unknown = {
        f"{name} in {path.relative_to(ROOT)}"
        for path in DEPLOY.rglob("*")
        if path.is_file()
        for name in MINQING_NAME.findall(path.read_text(encoding="utf-8"))
        if name not in allowed
    }
    assert not unknown, f"not a setting of eventkit.settings.Settings: {sorted(unknown)}"


def test_the_extra_setting_names_are_not_already_real_fields() -> None:
    real = set(setting_names())
    assert not EXTRA_SETTINGS & real, "now a real setting: remove it from EXTRA_SETTINGS"


def test_every_minqing_command_in_deploy_exists_in_the_cli() -> None:
    commands = [compose_command(s) for s in compose_services().values() if s.get("command")]
    commands += [container_command(c) for _, c in containers()]
    commands += [yaml_list(rest) for word, rest in final_stage() if word == "CMD"]
    modules = {s.module for s in SERVICES}
    assert commands
    for argv in commands:
        if argv[:2] == ["python", "-m"]:
            assert argv[2] in modules, f"{argv}: not a service module of minqing.system"
            continue
        assert argv[0] == "minqing", f"{argv}: neither `minqing ...` nor `python -m <service>`"
        command: click.Command = cli
        ctx = click.Context(cli)
        for word in argv[1:]:
            if word.startswith("-") or not isinstance(command, click.Group):
                break
            sub = command.get_command(ctx, word)
            assert sub is not None, f"{argv}: `{word}` is not a command of `minqing`"
            command = sub
        assert not isinstance(command, click.Group) or "--help" in argv, f"{argv}: incomplete"


# ---- Dockerfile ---------------------------------------------------------------------


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0", "")
    # Kubernetes' runAsNonRoot can only verify a numeric user.
    assert user.isdigit(), "use a numeric uid so that runAsNonRoot can check it"


def test_dockerfile_starts_from_python_3_11_slim_and_prints_help_by_default() -> None:
    froms = [rest.split()[0] for word, rest in dockerfile_instructions() if word == "FROM"]
    assert froms
    assert all(f == "python:3.11-slim" for f in froms)
    assert not [w for w, _ in final_stage() if w == "ENTRYPOINT"], "the command picks the process"
    (cmd,) = [rest for word, rest in final_stage() if word == "CMD"]
    assert yaml_list(cmd) == ["minqing", "--help"]


def test_dockerfile_installs_the_package_with_the_constraints_file() -> None:
    assert "constraints.txt" in copy_sources()
    installs = [
        shlex.split(rest)
        for word, rest in dockerfile_instructions()
        if word == "RUN" and "pip install" in rest
    ]
    assert installs, "no pip install"
    for argv in installs:
        i = argv.index("install")
        args = argv[i + 1 :]
        assert "-c" in args, f"{argv}: install with the constraints file"
        assert args[args.index("-c") + 1] == "constraints.txt", argv
        assert "." in args, f"{argv}: install the project itself"
        assert "-e" not in args
        assert "--editable" not in args


def test_dockerfile_copies_every_package_and_the_readme_that_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    sources = set(copy_sources())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    missing = {p.rstrip("*").rstrip(".") for p in packages} - sources
    assert not missing, f"pip install . needs these in the image: {sorted(missing)}"
    assert project["project"]["readme"] in sources
    assert "pyproject.toml" in sources


def test_the_build_context_keeps_what_the_dockerfile_copies_and_drops_the_rest() -> None:
    for source in copy_sources():
        assert not ignored(source), f"{source} is copied but left out of the build context"
        folder = ROOT / source
        if folder.is_dir():
            for path in folder.rglob("*.py"):
                relative = path.relative_to(ROOT).as_posix()
                assert not ignored(relative), relative
    for heavy in (".venv/bin/python", ".git/HEAD", ".minqing/pg/PG_VERSION", "tests/conftest.py"):
        assert ignored(heavy), f"{heavy} would be sent to the builder"


# ---- compose ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_compose_runs_each_service_from_its_module_on_its_own_port(spec: ServiceSpec) -> None:
    service = compose_services()[spec.name]
    assert compose_command(service) == ["python", "-m", spec.module]
    assert published_ports(service) == {(spec.port, spec.port)}


def test_compose_builds_the_app_image_from_the_repository_root() -> None:
    for name in ("migrate", *LONG_RUNNING):
        build = compose_services()[name]["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT, name
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE, name


def test_no_compose_service_publishes_a_port_of_another_service() -> None:
    owner = {s.port: s.name for s in SERVICES}
    for name, service in compose_services().items():
        for host, _ in published_ports(service):
            assert owner.get(host, name) == name, f"{name} publishes {owner[host]}'s port {host}"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_compose_process_gets_idempotence_and_a_database_url(name: str) -> None:
    env = compose_env(compose_services()[name])
    assert env.get("MINQING_KAFKA_IDEMPOTENCE") == "true"
    assert env.get("MINQING_DATABASE_URL", "").startswith("postgresql://")
    assert env.get("MINQING_KAFKA_BOOTSTRAP")
    assert env.get("MINQING_LOG_FORMAT") == "json"


def test_compose_migrates_as_the_owner_and_runs_each_process_as_its_own_login() -> None:
    services = compose_services()
    assert compose_command(services["migrate"]) == ["minqing", "db", "migrate"]
    owner = url_user(compose_env(services["migrate"])["MINQING_DATABASE_URL"])
    assert owner
    assert owner not in LOGINS.values()
    for name in LONG_RUNNING:
        env = compose_env(services[name])
        assert url_user(env["MINQING_DATABASE_URL"]) == LOGINS[name], name
        default_role = process_settings(name).model_fields["database_role"].default
        assert env.get("MINQING_DATABASE_ROLE", default_role) == LOGINS[name], name


def test_compose_depends_only_on_services_that_exist_under_conditions_they_can_meet() -> None:
    services = compose_services()
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on a missing service {target}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                # A one-shot that is restarted never "completes".
                assert str(services[target].get("restart", "no")) in ("no", "on-failure")


def test_compose_dependencies_have_no_cycle() -> None:
    services = compose_services()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in depends_on(services[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_the_relay_and_the_services_wait_for_the_migrations_and_a_healthy_kafka(
    name: str,
) -> None:
    deps = depends_on(compose_services()[name])
    assert deps.get("migrate") == "service_completed_successfully"
    assert deps.get("kafka") == "service_healthy"
    assert depends_on(compose_services()["migrate"]).get("postgres") == "service_healthy"


def test_postgres_18_keeps_its_data_and_runs_the_role_script() -> None:
    postgres = compose_services()["postgres"]
    assert str(postgres["image"]).startswith("postgres:18")
    mounts = {}
    for volume in postgres["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    # PostgreSQL 18 images keep PGDATA in /var/lib/postgresql/18/docker.
    assert "/var/lib/postgresql" in mounts
    assert "/var/lib/postgresql/data" not in mounts
    scripts = [t for t in mounts if t.startswith("/docker-entrypoint-initdb.d/")]
    assert len(scripts) == 1
    assert scripts[0].endswith(".sql")
    assert (COMPOSE.parent / mounts[scripts[0]]).resolve() == INIT_SQL
    wanted = re.findall(r"^\\getenv\s+\w+\s+(\w+)", INIT_SQL.read_text(), re.MULTILINE)
    assert wanted, "init.sql reads its passwords from the environment"
    assert set(wanted) <= set(compose_env(postgres))
    check = [str(c) for c in postgres["healthcheck"]["test"]]
    # Over TCP: the temporary server of initialisation listens on the socket only.
    assert "pg_isready" in check
    assert "-h" in check


def test_kafka_is_one_kraft_node_with_one_replica_of_everything() -> None:
    services = compose_services()
    kafka = services["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    env = {k: str(v) for k, v in compose_env(kafka).items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "a 16-byte id"
    for key, value in env.items():
        if key.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert value == "1", f"{key}={value} on a single node"
    assert "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR" in env
    assert "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR" in env
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {}
    for listener in env["KAFKA_LISTENERS"].split(","):
        listener_name, _, address = listener.partition("://")
        listeners[listener_name] = address
    assert set(listeners) <= set(protocols)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners
    advertised = {}
    for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(","):
        listener_name, _, address = listener.partition("://")
        assert listener_name in listeners
        assert listener_name != controller
        advertised[address] = listener_name
    # The app's bootstrap is a listener Kafka advertises under a name the other
    # containers can resolve (the compose service name).
    for name in LONG_RUNNING:
        bootstrap = compose_env(services[name])["MINQING_KAFKA_BOOTSTRAP"]
        assert bootstrap in advertised, f"{name}: {bootstrap} is not advertised by kafka"
        assert bootstrap.split(":")[0] in services


# ---- Kubernetes ---------------------------------------------------------------------


def test_kustomization_lists_every_manifest_in_k8s() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    listed = list(kustomization["resources"])
    assert len(listed) == len(set(listed)), "listed twice"
    assert set(listed) == {p.name for p in k8s_manifests()}


def test_every_k8s_object_lives_in_the_minqing_namespace() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    (namespace,) = k8s_of_kind("Namespace")
    name = namespace["metadata"]["name"]
    assert kustomization["namespace"] == name
    for obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == name, obj["metadata"]["name"]


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_k8s_services_expose_the_ports_of_minqing_system(spec: ServiceSpec) -> None:
    service = k8s_named("Service", spec.name)
    (port,) = service["spec"]["ports"]
    assert port["port"] == spec.port
    selector = service["spec"]["selector"]
    chosen = [
        d
        for d in k8s_of_kind("Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(chosen) == 1, f"Service {spec.name} selects {len(chosen)} Deployments"
    (container,) = pod_spec(chosen[0])["containers"]
    assert container_command(container) == ["python", "-m", spec.module]
    by_name = {p.get("name"): p["containerPort"] for p in container["ports"]}
    target = port.get("targetPort", port["port"])
    assert by_name.get(target, target) == spec.port


def test_k8s_deployments_select_their_own_pods() -> None:
    for workload in k8s_of_kind("Deployment"):
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), workload["metadata"]["name"]


def test_every_k8s_process_gets_idempotence_a_database_url_and_json_logs() -> None:
    deployments = k8s_of_kind("Deployment")
    assert len(deployments) == len(LONG_RUNNING)
    for workload in deployments:
        for container in pod_spec(workload)["containers"]:
            env = container_env(container)
            assert env.get("MINQING_KAFKA_IDEMPOTENCE") == "true", container["name"]
            login = LOGINS[container["name"]]
            assert url_user(env["MINQING_DATABASE_URL"]) == login, container["name"]
            default_role = process_settings(container["name"]).model_fields["database_role"]
            assert env.get("MINQING_DATABASE_ROLE", default_role.default) == login
            assert env.get("MINQING_LOG_FORMAT") == "json"


def test_the_k8s_migration_job_runs_as_the_owner() -> None:
    (job,) = k8s_of_kind("Job")
    (container,) = pod_spec(job)["containers"]
    assert container_command(container) == ["minqing", "db", "migrate"]
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    owner = url_user(container_env(container)["MINQING_DATABASE_URL"])
    assert owner
    assert owner not in LOGINS.values()


def test_the_k8s_retention_runs_nightly_as_the_operators_login_with_the_vault_key() -> None:
    cronjob = k8s_named("CronJob", "minqing-privacy-retention")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["timeZone"] == "Asia/Shanghai"
    (container,) = pod_spec(cronjob)["containers"]
    assert container_command(container) == ["minqing", "privacy", "retention", "run"]
    env = container_env(container)
    assert url_user(env["MINQING_DATABASE_URL"]) == "minqing_audit"
    assert {"MINQING_PRIVACY_KEY", "MINQING_PRIVACY_PREVIOUS_KEYS"} <= set(env)


def test_the_k8s_relay_runs_a_standby_beside_the_leader() -> None:
    (relay,) = [
        d
        for d in k8s_of_kind("Deployment")
        if any(
            container_command(c) == ["minqing", "relay", "run"] for c in pod_spec(d)["containers"]
        )
    ]
    assert relay["spec"]["replicas"] >= 2


def test_k8s_http_services_have_probes_on_their_port() -> None:
    ports = {s.port for s in SERVICES}
    for _, container in containers():
        declared = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        if not set(declared.values()) & ports:
            continue
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{container['name']} {probe}"
            assert declared.get(get["port"], get["port"]) in ports


def test_every_k8s_container_has_resource_requests_and_limits() -> None:
    for _, container in containers():
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{container['name']} {bound}"


def test_k8s_pods_run_unprivileged_as_the_namespace_demands() -> None:
    for workload, container in containers():
        pod = pod_spec(workload).get("securityContext", {})
        own = container.get("securityContext", {})
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True
        assert own.get("runAsUser", pod.get("runAsUser")) != 0
        assert own.get("allowPrivilegeEscalation") is False
        assert own.get("capabilities", {}).get("drop") == ["ALL"]
        seccomp = own.get("seccompProfile", pod.get("seccompProfile", {}))
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost")


def test_k8s_configmap_values_are_strings() -> None:
    for config in k8s_of_kind("ConfigMap"):
        for key, value in config["data"].items():
            assert isinstance(value, str), f"{key}: Kubernetes wants a string, got {value!r}"


def test_k8s_holds_no_plaintext_password_outside_the_secret_template() -> None:
    for obj in k8s_objects():
        name = obj["metadata"]["name"]
        if obj["kind"] == "Secret":
            assert "data" not in obj, "base64 data hides what is in it: use stringData"
            annotations = obj["metadata"].get("annotations", {})
            assert any(PLACEHOLDER in str(v) for v in annotations.values()), "mark the template"
            for key, value in obj.get("stringData", {}).items():
                assert PLACEHOLDER in str(value), f"Secret key {key}: not a placeholder"
                for password in URL_WITH_PASSWORD.findall(str(value)):
                    assert password.startswith(PLACEHOLDER), f"Secret key {key}: a real password"
            continue
        for text in strings(obj):
            assert not URL_WITH_PASSWORD.search(text), f"{name}: {text}"
        for key in obj.get("data", {}) if obj["kind"] == "ConfigMap" else ():
            assert not SECRET_NAME.search(key), f"ConfigMap {name}: {key} belongs in the Secret"
    for _, container in containers():
        for item in container.get("env", []):
            if SECRET_NAME.search(item["name"]):
                assert "value" not in item, f"{item['name']} must come from a Secret"


def test_k8s_services_take_every_secret_setting_from_the_secret() -> None:
    prefix = str(Settings.model_config.get("env_prefix", ""))

    def secrets_of(cls: type[Settings]) -> set[str]:
        names = {(prefix + name).upper() for name in cls.model_fields}
        return {name for name in names if SECRET_NAME.search(name)}

    shared = secrets_of(Settings)
    assert shared, "Settings has no secret field any more: drop this test"
    own = {name: secrets_of(cls) - shared for name, cls in service_settings().items()}
    ports = {s.port for s in SERVICES}
    for _, container in containers():
        if not {p["containerPort"] for p in container.get("ports", [])} & ports:
            continue
        given = {item["name"]: item for item in container.get("env", [])}
        for setting in shared | own.get(container["name"], set()):
            assert setting in given, f"{container['name']} would run with the default {setting}"
            assert "secretKeyRef" in given[setting].get("valueFrom", {}), setting
        container_env(container)  # every reference resolves


def test_no_k8s_process_keeps_a_setting_that_points_at_loopback() -> None:
    loopback = re.compile(r"127\.0\.0\.1|localhost|\[::1\]")
    prefix = str(Settings.model_config.get("env_prefix", ""))

    def local_defaults(cls: type[Settings]) -> set[str]:
        return {
            (prefix + name).upper()
            for name, field in cls.model_fields.items()
            if isinstance(field.default, str) and loopback.search(field.default)
        }

    assert local_defaults(Settings), "no default points at loopback any more"
    own = service_settings()
    for workload in k8s_of_kind("Deployment"):
        for container in pod_spec(workload)["containers"]:
            env = container_env(container)
            cls = own.get(container["name"], Settings)
            for setting in local_defaults(cls):
                assert setting in env, f"{container['name']} keeps the local default {setting}"
                assert not loopback.search(env[setting]), f"{container['name']}: {setting}"


# ---- the database roles, for real -----------------------------------------------------


def _url(admin_url: str, *, user: str, database: str) -> str:
    # The embedded server's URL is postgresql://postgres:@/postgres?host=<socket dir>
    _, _, query = admin_url.partition("?")
    return f"postgresql://{user}@/{database}" + (f"?{query}" if query else "")


def _psql(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    psql = EmbeddedPostgres.bin_dir() / "psql"
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DB_PASSWORD")}
    return subprocess.run(
        [str(psql), "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-d", url, "-f", str(INIT_SQL)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PASSWORDS = {
    f"{name}_DB_PASSWORD": f"{name.lower()}-test"
    for name in ("OWNER", "INTAKE", "ROUTING", "NOTIFICATION", "REPORTING", "AUDIT")
}


def test_init_sql_lets_the_owner_migrate_and_each_login_append_only_its_own_streams(
    pg_admin_url: str,
) -> None:
    database = "deploy_" + uuid.uuid4().hex[:12]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def use_as(login: str, role: str | None) -> None:
        url = _url(pg_admin_url, user=login, database=database)
        pool = await create_pool(url, role=role, max_size=1)
        try:
            store = EventStore(pool)
            own = OWNED[login]
            if own is not None:
                stream = f"{own}-{uuid.uuid4().hex[:12]}"
                await store.append(stream, [envelope(stream)])
            other = f"{'opinion' if own == 'case' else 'case'}-{uuid.uuid4().hex[:12]}"
            with pytest.raises(AuthorshipError):
                await store.append(other, [envelope(other)])
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_user") == login
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("UPDATE eventstore.events SET data = '{}'")
                # It has the runtime role's privileges, never the role itself.
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"SET ROLE {RUNTIME_ROLE}")
                owners = await conn.fetch(
                    "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'eventstore'"
                )
                assert [r["tableowner"] for r in owners] == ["minqing_owner"]
        finally:
            await pool.close()

    run_loop(admin(f"CREATE DATABASE {database}"))
    try:
        target = _url(pg_admin_url, user="postgres", database=database)
        refused = _psql(target, {})
        assert refused.returncode != 0, "init.sql ran without its passwords"
        assert "_DB_PASSWORD" in refused.stderr
        partly = _psql(target, {"OWNER_DB_PASSWORD": "owner-test"})
        assert partly.returncode != 0, "init.sql ran without the services' passwords"

        done = _psql(target, PASSWORDS)
        assert done.returncode == 0, done.stderr
        again = _psql(target, PASSWORDS)
        assert again.returncode == 0, f"init.sql is not safe to run twice: {again.stderr}"

        owner_url = _url(pg_admin_url, user="minqing_owner", database=database)
        assert run_loop(migrate(owner_url, migration_packages()))
        for name, login in LOGINS.items():
            # As deployed: the settings' own role, or the one the deploy files set.
            env = compose_env(compose_services()[name])
            role = env.get("MINQING_DATABASE_ROLE", process_settings(name)().database_role)
            run_loop(use_as(login, role))
    finally:
        run_loop(admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        run_loop(admin("DROP ROLE IF EXISTS minqing_owner"))
        # The service roles are the whole session's (the migrations made them): leave
        # them as the migrations did, unable to log in.
        for login in LOGINS.values():
            run_loop(admin(f"ALTER ROLE {login} NOLOGIN PASSWORD NULL"))
