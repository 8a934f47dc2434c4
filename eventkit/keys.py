"""Keys with ids, so that they rotate without downtime, and the rule that keeps the
development defaults off the network.

A :class:`KeyRing` is the current key (the one that signs or seals) and the previous ones
(still accepted, to verify or open what the current one did not make). Rotating a key:
give the new one a new id, move the old one to the previous keys, deploy; once nothing
made with the old key is still in use (tokens expired, ciphertexts re-sealed with
``minqing keys rewrap``), drop it. Pure: no I/O.

A process that looks deployed refuses to start while any secret setting still has its
development default (:func:`refuse_development_secrets`). It looks deployed when its HTTP
server listens beyond the loopback interface, when it was given a database of its own
(``MINQING_DATABASE_URL``; the local stack's children are told theirs too, and say so with
``MINQING_LOCAL_STACK``), or when residents reach it at an address that is not this
machine's (``MINQING_PUBLIC_BASE_URL``): a service on 127.0.0.1 behind a reverse proxy on
the same host is on the network all the same.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

KEY_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
"""What a key id may be: it travels in tokens and ciphertexts."""

LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class KeyRingError(ValueError):
    """A key id that is malformed or used twice in one ring."""


@dataclass(frozen=True)
class KeyRing:
    """The current key and the previous ones, by id (see the module's note)."""

    current_id: str
    current: str
    previous: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kid in (self.current_id, *self.previous):
            if not KEY_ID.match(kid):
                raise KeyRingError(
                    f"密钥编号 {kid!r} 不合规：1–32 个字母、数字、- 或 _ / key id {kid!r}: "
                    "1 to 32 letters, digits, - or _"
                )
        if self.current_id in self.previous:
            raise KeyRingError(
                f"密钥编号 {self.current_id!r} 既是当前密钥又是旧密钥 / key id "
                f"{self.current_id!r} is both the current and a previous key"
            )

    def get(self, kid: str) -> str | None:
        """The key of ``kid``: the current one or a previous one; None when unknown."""
        if kid == self.current_id:
            return self.current
        return self.previous.get(kid)

    def all(self) -> list[tuple[str, str]]:
        """Every key with its id, the current one first."""
        return [(self.current_id, self.current), *self.previous.items()]

    def __repr__(self) -> str:  # never print a key
        return f"KeyRing(current_id={self.current_id!r}, previous={sorted(self.previous)!r})"


def new_secret() -> str:
    """A fresh random secret for any of the key settings (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, or 0.0.0.0-like wildcards


def is_local_url(url: str) -> bool:
    """Whether ``url`` names this machine (a loopback host)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)


def deployment_signs(
    host: str,
    *,
    database_url: str | None = None,
    public_base_url: str | None = None,
    local_stack: bool = False,
) -> list[str]:
    """Why a process looks deployed (Chinese / English, one line each); empty when it
    looks like a developer's machine. Never quotes the database URL (it may hold a
    password)."""
    signs = []
    if not is_loopback(host):
        signs.append(f"监听 {host} / listening on {host}")
    if database_url and not local_stack:
        signs.append(
            "设置了 MINQING_DATABASE_URL（部署有自己的数据库）/ MINQING_DATABASE_URL is set "
            "(a deployment has its own database)"
        )
    if public_base_url is not None and not is_local_url(public_base_url):
        signs.append(
            f"MINQING_PUBLIC_BASE_URL 指向 {public_base_url} / MINQING_PUBLIC_BASE_URL "
            f"points at {public_base_url}"
        )
    return signs


class DevelopmentSecretsRefused(RuntimeError):
    """A process that looks deployed about to start with a development secret or key."""

    def __init__(
        self, host: str, settings_names: list[str], signs: list[str] | None = None
    ) -> None:
        names = ", ".join(f"MINQING_{n.upper()}" for n in settings_names)
        why = "; ".join(signs or [f"监听 {host} / listening on {host}"])
        super().__init__(
            f"拒绝启动：仍在使用开发用的密钥（{names}），而本进程看起来已部署（{why}）。"
            f"请为每一项设置随机值（`minqing keys new` 可生成）；本机开发请用 `minqing up`。\n"
            f"Refusing to start: development secrets ({names}) in a process that looks "
            f"deployed ({why}). Set each to a random value (`minqing keys new` prints one); "
            f"on a developer's machine use `minqing up`."
        )
        self.host = host
        self.settings_names = settings_names
        self.signs = signs or []


def refuse_development_secrets(
    host: str,
    development_secrets: list[str],
    *,
    database_url: str | None = None,
    public_base_url: str | None = None,
    local_stack: bool = False,
) -> None:
    """Raise :class:`DevelopmentSecretsRefused` when any secret setting is still at its
    development default and the process looks deployed (:func:`deployment_signs`)."""
    if not development_secrets:
        return
    signs = deployment_signs(
        host, database_url=database_url, public_base_url=public_base_url, local_stack=local_stack
    )
    if signs:
        raise DevelopmentSecretsRefused(host, development_secrets, signs)
