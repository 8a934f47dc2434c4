"""What routing needs to know about one district, built once per directory version.

A :class:`DistrictContext` holds the district's directory, its compiled classifier (with
the district's trained model, when it has one), its working calendar and its routing
policy; :class:`DistrictContexts` keeps one per district and rebuilds it only when the
district's directory version moves (training a model moves it too), so a case costs no
parsing of taxonomies, calendars or models.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime

from contracts.cases import Priority
from contracts.directory import RoutingPolicyPublished
from eventkit.db import Conn
from eventkit.logging import get_logger
from services.routing.case_state import CaseState
from services.routing.classification import Classification, Classifier, Segmenter, Taxonomy
from services.routing.classifier_store import ClassifierModels, MissingModel, StoredModel
from services.routing.deadlines import Allowance, Due, WorkCalendar
from services.routing.directory import Directory, DistrictConfig
from services.routing.directory_projection import config_version, load_config
from services.routing.domain import SYSTEM, OverdueRules, Rung
from services.routing.errors import UnknownDistrict

log = get_logger(__name__)


def default_policy(district_id: str) -> RoutingPolicyPublished:
    """The policy of a district that has published none."""
    return RoutingPolicyPublished(
        district_id=district_id,
        occurred_at=datetime(2000, 1, 1, tzinfo=UTC),
        actor=SYSTEM,
        version=1,
    )


@dataclass(frozen=True)
class DistrictContext:
    """What routing needs to know about one district, cached by its directory version."""

    version: int
    config: DistrictConfig
    taxonomy: Taxonomy | None
    classifier: Classifier | None
    calendar: WorkCalendar
    policy: RoutingPolicyPublished
    missing_model: int | None = None
    """The version of the district's model in use when ``routing.classifier_models``
    does not hold it: the classifier then has the keywords alone (and says so in each
    ``CaseOpened``: no ``classifier_version``) until the version is fitted again."""

    @property
    def directory(self) -> Directory:
        """The district's directory."""
        return self.config.directory

    def classify(self, text: str, hint: str | None) -> Classification:
        """Classification with the district's taxonomy (none published: no category)."""
        if self.classifier is None:
            return Classification(None, (), Priority.NORMAL, ())
        return self.classifier.classify(text, hint)

    def deadlines(
        self, category: str | None, priority: Priority, start: datetime
    ) -> tuple[Due, Due]:
        """Response and resolution deadlines of a matter received at ``start``."""
        if self.taxonomy is not None:
            pair = self.taxonomy.deadlines(category, priority)
            response, resolution = pair.response, pair.resolution
        else:
            response, resolution = "2wd", "15wd"
        return self.calendar.add(start, response), self.calendar.add(start, resolution)

    def after(self, start: datetime, allowance: str) -> datetime:
        """``start`` plus an allowance such as ``3wd`` in the district's working time."""
        return self.calendar.add(start, allowance).at

    def expertise(self, category: str | None) -> frozenset[str]:
        """Expertise tags fitting a category."""
        return self.taxonomy.expertise(category) if self.taxonomy else frozenset()

    def today(self, now: datetime) -> date:
        """The district's local date at ``now``."""
        return self.calendar.local(now).date()

    def rules(self, state: CaseState) -> OverdueRules:
        """The escalation ladder of a case (its station's head, its street…)."""
        d = self.directory
        station = d.stations.get(state.station_code) if state.station_code else None
        street = d.streets.get(station.street_code) if station else None
        rungs: list[Rung] = []
        for level in self.policy.escalation_ladder:
            if level == "station_head":
                # Nobody to tell if the station has no head, and no point telling the
                # representative who missed the deadline: the street is next.
                head_id = station.head_representative_id if station else None
                head = d.representatives.get(head_id) if head_id else None
                if station is not None and head is not None and head_id != state.representative_id:
                    rungs.append(Rung(level, f"{station.name_zh}站长{head.name_zh}"))
            elif level == "street" and street is not None:
                rungs.append(Rung(level, street.committee))
            elif level == "district":
                rungs.append(Rung(level, f"{d.name_zh}人大常委会"))
        if not rungs:
            rungs.append(Rung("district", f"{d.name_zh}人大常委会"))
        supervision = Allowance.parse(self.policy.supervision)
        calendar = self.calendar
        return OverdueRules(tuple(rungs), lambda due: calendar.add(due, supervision).at)


class DistrictContexts:
    """One :class:`DistrictContext` per district, rebuilt when its directory version moves."""

    def __init__(self, segmenter: Segmenter, models: ClassifierModels | None = None) -> None:
        self._segmenter = segmenter
        self.models = models or ClassifierModels()
        self._contexts: dict[str, DistrictContext] = {}

    def cached(self, district_id: str) -> DistrictContext | None:
        """The context last built for the district (it may be stale: callers that need
        the current one compare its version with the database's)."""
        return self._contexts.get(district_id)

    async def get(self, conn: Conn, district_id: str) -> DistrictContext | None:
        """The district's current context (None when the district is not registered)."""
        return await self.at(conn, district_id, await config_version(conn, district_id))

    async def require(self, conn: Conn, district_id: str) -> DistrictContext:
        """The district's current context, or :class:`UnknownDistrict`."""
        ctx = await self.get(conn, district_id)
        if ctx is None:
            raise UnknownDistrict(district_id)
        return ctx

    async def at(self, conn: Conn, district_id: str, version: int | None) -> DistrictContext | None:
        """The context of the district's directory ``version`` (read when not cached)."""
        if version is None:
            return None
        cached = self._contexts.get(district_id)
        if cached is not None and cached.version == version:
            return cached
        loaded = await load_config(conn, district_id)
        if loaded is None:
            return None
        version, config = loaded
        stored: StoredModel | None = None
        missing: int | None = None
        if config.taxonomy:
            try:
                stored = await self.models.in_use(conn, district_id)
            except MissingModel as exc:
                # Cases keep being opened (with the keywords, which every CaseOpened then
                # records), and this is said loudly at each directory version until the
                # model is fitted again.
                missing = exc.version
                log.error("classifier missing", district=district_id, reason=str(exc))
        # In a thread: a taxonomy's dictionary is made here the first time (about 30 ms
        # of copying jieba's), which would hold up every other case on the event loop.
        ctx = await asyncio.to_thread(self._build, district_id, version, config, stored, missing)
        self._contexts[district_id] = ctx
        return ctx

    def _build(
        self,
        district_id: str,
        version: int,
        config: DistrictConfig,
        stored: StoredModel | None,
        missing: int | None,
    ) -> DistrictContext:
        taxonomy = Taxonomy(config.taxonomy) if config.taxonomy else None
        classifier = None
        if taxonomy is not None:
            model, model_version = (stored.model, stored.version) if stored else (None, None)
            classifier = Classifier(taxonomy, self._segmenter, model, model_version)
        timezone = config.directory.timezone
        if config.calendar is not None:
            calendar = WorkCalendar.from_years(
                config.calendar.years,
                timezone=timezone,
                opens=config.calendar.office_opens,
                closes=config.calendar.office_closes,
            )
        else:
            calendar = WorkCalendar.from_years((), timezone=timezone)
        return DistrictContext(
            version=version,
            config=config,
            taxonomy=taxonomy,
            classifier=classifier,
            calendar=calendar,
            policy=config.policy or default_policy(district_id),
            missing_model=missing,
        )
