"""What planning and sending read of a district, kept in memory between batches.

A district's setup (time zone and categories, stations, streets' supervisors, registered
departments, representatives' names, the contact book, the rule and template overrides,
the subscriptions) changes rarely, while every event and every delivery reads it. Reading
it afresh per event was most of the planner's statements; so :class:`Setups` keeps each
district's and checks, once per batch and in the batch's own transaction, the district's
stamp (``notification.setup_stamps``, migration 0006): a trigger on each of those tables
moves it on every change, whoever makes it (a directory event, an admin request, the CLI,
another process). A changed stamp reloads the district in one query.

The stamp is read before the data, so the data kept is at least as new as its stamp; a
stamp written by a transaction that rolled back is never committed (stamps come from a
sequence), so a setup read inside such a transaction is reloaded by the next batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from eventkit.db import Conn
from services.notification.contact_book import Channel, ContactEntry
from services.notification.contacts import entry_of
from services.notification.messages import Template
from services.notification.rules import RuleSetting, StationFacts
from services.notification.subscriptions import Subscription, subscription_of

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class DistrictSetup:
    """One district as planning and sending read it (see the module's note)."""

    district_id: str
    stamp: int | None
    name: str
    timezone: str = DEFAULT_TIMEZONE
    categories: Mapping[str, list[str]] = field(default_factory=dict)
    """Category code → [name_zh, name_en], from the published taxonomy."""
    rules: Mapping[str, RuleSetting] = field(default_factory=dict)
    subscriptions: tuple[Subscription, ...] = ()
    """The subscriptions receiving events (active) or keeping them (paused)."""
    stations: Mapping[str, StationFacts] = field(default_factory=dict)
    supervisors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Street code → the supervisors of its working committee."""
    department_staff: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Code of an active registered department → its duty staff."""
    representatives: Mapping[str, str] = field(default_factory=dict)
    """Representative id → name."""
    contacts: Mapping[str, ContactEntry] = field(default_factory=dict)
    templates: Mapping[str, Template] = field(default_factory=dict)

    def district_admins(self) -> tuple[str, ...]:
        """The staff ids of the district's active administrators, in order."""
        return tuple(
            sorted(s for s, c in self.contacts.items() if c.role == "district_admin" and c.active)
        )

    def departments(self) -> dict[str, str]:
        """Department name → the staff id of its contact (whistles name departments)."""
        return {
            c.name: s
            for s, c in sorted(self.contacts.items())
            if c.role == "department" and c.active and c.name
        }

    def subscription(self, subscription_id: str) -> Subscription | None:
        """A subscription that receives or keeps events (None: deleted or unknown)."""
        for s in self.subscriptions:
            if s.subscription_id == subscription_id:
                return s
        return None


_STAMP = "SELECT stamp FROM notification.setup_stamps WHERE district_id = $1"

_LOAD = """
SELECT (SELECT stamp FROM notification.setup_stamps WHERE district_id = $1) AS stamp,
       (SELECT to_jsonb(d) FROM notification.districts d WHERE district_id = $1) AS district,
       (SELECT jsonb_agg(jsonb_build_array(rule, enabled, channels))
          FROM notification.rule_overrides WHERE district_id = $1) AS rules,
       (SELECT jsonb_agg(to_jsonb(s) ORDER BY s.created_at, s.subscription_id)
          FROM notification.subscriptions s
         WHERE district_id = $1 AND status IN ('active', 'paused')) AS subscriptions,
       (SELECT jsonb_agg(to_jsonb(s)) FROM notification.stations s
         WHERE district_id = $1) AS stations,
       (SELECT jsonb_object_agg(street_code, supervisors) FROM notification.streets
         WHERE district_id = $1) AS streets,
       (SELECT jsonb_object_agg(department_code, duty_staff) FROM notification.departments
         WHERE district_id = $1 AND active) AS departments,
       (SELECT jsonb_object_agg(representative_id, name_zh) FROM notification.representatives
         WHERE district_id = $1) AS representatives,
       (SELECT jsonb_agg(to_jsonb(c)) FROM notification.contacts c
         WHERE district_id = $1) AS contacts,
       (SELECT jsonb_object_agg(template, jsonb_build_array(subject, body))
          FROM notification.template_overrides WHERE district_id = $1) AS templates
"""


class Setups:
    """Each district's setup, checked against its stamp once per batch."""

    def __init__(self) -> None:
        self._known: dict[str, DistrictSetup] = {}
        self.loads = 0
        """How many times a district was read in full (for tests and metrics)."""

    async def get(self, conn: Conn, district_id: str) -> DistrictSetup:
        """The district's setup as of ``conn``'s transaction, which must be scoped to it."""
        known = self._known.get(district_id)
        if known is not None and await conn.fetchval(_STAMP, district_id) == known.stamp:
            return known
        return await self.load(conn, district_id)

    async def load(self, conn: Conn, district_id: str) -> DistrictSetup:
        """Read the district's setup in full (one query) and keep it."""
        row = await conn.fetchrow(_LOAD, district_id)
        assert row is not None
        setup = _setup_of(district_id, row)
        self._known[district_id] = setup
        self.loads += 1
        return setup

    def stamp_is(self, district_id: str, stamp: int | None) -> DistrictSetup | None:
        """The kept setup when its stamp is ``stamp`` (read by the caller), else None."""
        known = self._known.get(district_id)
        return known if known is not None and known.stamp == stamp else None


def _setup_of(district_id: str, row: Any) -> DistrictSetup:
    district = row["district"] or {}
    rules = {
        name: RuleSetting(enabled, tuple(cast(list[Channel], channels)) if channels else None)
        for name, enabled, channels in row["rules"] or []
    }
    stations = {
        s["station_code"]: StationFacts(
            code=s["station_code"],
            name=s["name_zh"],
            street_code=s["street_code"],
            head_representative_id=s["head_representative_id"],
            liaison_officers=tuple(s["liaison_officers"] or ()),
        )
        for s in row["stations"] or []
    }
    contacts = {c["staff_id"]: entry_of(c) for c in row["contacts"] or []}
    return DistrictSetup(
        district_id=district_id,
        stamp=row["stamp"],
        name=district.get("name_zh") or district_id,
        timezone=district.get("timezone") or DEFAULT_TIMEZONE,
        categories=dict(district.get("categories") or {}),
        rules=rules,
        subscriptions=tuple(subscription_of(s) for s in row["subscriptions"] or []),
        stations=stations,
        supervisors={k: tuple(v or ()) for k, v in (row["streets"] or {}).items()},
        department_staff={k: tuple(v or ()) for k, v in (row["departments"] or {}).items()},
        representatives=dict(row["representatives"] or {}),
        contacts=contacts,
        templates={k: Template(v[0], v[1]) for k, v in (row["templates"] or {}).items()},
    )
