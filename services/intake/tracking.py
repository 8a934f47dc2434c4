"""Following an opinion: the tracking view of a code (``GET /api/v1/track/<code>`` and
the page ``/t/<code>``), and the names that put a case's steps into plain words."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventkit.db import ALL_DISTRICTS, scope
from services.intake.cases import matter_of
from services.intake.directory import SHANGHAI, Directory, TaxonomySource
from services.intake.feedback import feedback_given
from services.intake.opinions import opinion_by_code
from services.intake.progress import Names
from services.intake.tracking_views import TrackingView, timeline


class Tracking:
    """Reads what residents and Open311 clients see of an opinion and its case."""

    def __init__(
        self, *, pool: asyncpg.Pool, directory: Directory, taxonomy: TaxonomySource
    ) -> None:
        self._pool = pool
        self._directory = directory
        self._taxonomy = taxonomy

    async def names(
        self,
        district_id: str,
        station_codes: Sequence[str | None],
        representative_ids: Sequence[str | None],
        *,
        also: Sequence[str] = (),
    ) -> Names:
        """The names needed to tell a district's cases in plain words (``also``: other
        districts involved, when a case was transferred to one)."""
        stations, reps = await self._directory.names(
            [district_id, *also],
            [c for c in station_codes if c],
            [r for r in representative_ids if r],
        )
        district = await self._directory.district(district_id)
        return Names(
            stations=stations,
            representatives=reps,
            categories=(await self._taxonomy.for_district(district_id)).names(),
            districts=await self._directory.district_names(),
            timezone=district.timezone if district else SHANGHAI,
        )

    async def track(self, raw_code: str) -> TrackingView:
        """The tracking view of a code as a resident typed it (:class:`TrackingNotFound`
        for any code that is not one)."""
        async with self._pool.acquire() as conn, conn.transaction():
            # The code is the resident's credential, unique across districts, and says
            # nothing of its district: it is looked up in every district. The rest is
            # read in the opinion's district (and those its matter was transferred to).
            await scope(conn, ALL_DISTRICTS)
            opinion = await opinion_by_code(conn, raw_code)
            progress, steps = await matter_of(conn, opinion.opinion_id, opinion.district_id)
            feedback = await feedback_given(conn, opinion.opinion_id)
        names = await self.names(
            opinion.district_id,
            [opinion.station_code, *(s.station_code for s in steps)],
            [s.representative_id for s in steps],
            also=[progress.district_id] if progress else [],
        )
        category_code = (progress.category_code if progress else None) or opinion.category_hint
        return TrackingView(
            opinion=opinion,
            progress=progress,
            entries=timeline(opinion, steps, feedback, names),
            feedback=tuple(feedback),
            station_name=names.stations.get(opinion.station_code or ""),
            category=names.categories.get(category_code or ""),
            names=names,
        )
