"""Learning the directory from its events on ``minqing.directory.v1``: the ``intake``
consumer's handlers keep ``intake.districts``, ``intake.streets``,
``intake.communities``, ``intake.stations``, ``intake.representatives``,
``intake.station_representatives``, ``intake.taxonomies`` and the stations' coming
``intake.reception_days`` (as scheduled, cancelled or moved) in its transaction.
"""

from __future__ import annotations

from contracts import (
    CommunityRegistered,
    DistrictRegistered,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    ReceptionDayScheduled,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeRegistered,
    RepresentativeRetired,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyPublished,
)
from eventkit.consumer import Consumer, HandlerContext


async def _district_registered(event: DistrictRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.districts (district_id, name_zh, name_en, timezone)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id) DO UPDATE
           SET name_zh = excluded.name_zh, name_en = excluded.name_en,
               timezone = excluded.timezone, updated_at = now()
        """,
        event.district_id,
        event.name_zh,
        event.name_en,
        event.timezone,
    )


async def _station_registered(event: StationRegistered, ctx: HandlerContext) -> None:
    # Registering a station again replaces its details (and reopens it).
    await ctx.conn.execute(
        """
        INSERT INTO intake.stations (district_id, station_code, name_zh, kind, street_code,
            street_name_zh, communities, address, lat, long, star_rating, retired_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)
        ON CONFLICT (district_id, station_code) DO UPDATE
           SET name_zh = excluded.name_zh, kind = excluded.kind,
               street_code = excluded.street_code, street_name_zh = excluded.street_name_zh,
               communities = excluded.communities, address = excluded.address,
               lat = excluded.lat, long = excluded.long, star_rating = excluded.star_rating,
               retired_at = NULL, updated_at = now()
        """,
        event.district_id,
        event.station_code,
        event.name_zh,
        event.kind.value,
        event.street_code,
        event.street_name_zh,
        list(event.communities),
        event.address,
        event.position.lat if event.position else None,
        event.position.long if event.position else None,
        event.star_rating,
    )


async def _representative_registered(event: RepresentativeRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.representatives (district_id, representative_id, name_zh, level,
            leading_cadre)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (district_id, representative_id) DO UPDATE
           SET name_zh = excluded.name_zh, level = excluded.level,
               leading_cadre = excluded.leading_cadre, retired_at = NULL, updated_at = now()
        """,
        event.district_id,
        event.representative_id,
        event.name_zh,
        event.level.value,
        event.leading_cadre,
    )


async def _joined(event: RepresentativeJoinedStation, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.station_representatives (district_id, station_code, representative_id)
        VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
        """,
        event.district_id,
        event.station_code,
        event.representative_id,
    )


async def _left(event: RepresentativeLeftStation, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        "DELETE FROM intake.station_representatives "
        "WHERE district_id = $1 AND station_code = $2 AND representative_id = $3",
        event.district_id,
        event.station_code,
        event.representative_id,
    )


async def _station_moved(event: StationMoved, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        UPDATE intake.stations
           SET street_code = $3, communities = $4, address = $5, lat = $6, long = $7,
               updated_at = now()
         WHERE district_id = $1 AND station_code = $2
        """,
        event.district_id,
        event.station_code,
        event.street_code,
        list(event.communities),
        event.address,
        event.position.lat if event.position else None,
        event.position.long if event.position else None,
    )


async def _station_retired(event: StationRetired, ctx: HandlerContext) -> None:
    # Its QR code takes no more submissions; its cases and their history stay.
    await ctx.conn.execute(
        "UPDATE intake.stations SET retired_at = $3, updated_at = now() "
        "WHERE district_id = $1 AND station_code = $2",
        event.district_id,
        event.station_code,
        event.occurred_at,
    )


async def _representative_retired(event: RepresentativeRetired, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        "UPDATE intake.representatives SET retired_at = $3, updated_at = now() "
        "WHERE district_id = $1 AND representative_id = $2",
        event.district_id,
        event.representative_id,
        event.occurred_at,
    )


async def _street_registered(event: StreetRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.streets (district_id, street_code, name_zh) VALUES ($1, $2, $3)
        ON CONFLICT (district_id, street_code) DO UPDATE
           SET name_zh = excluded.name_zh, updated_at = now()
        """,
        event.district_id,
        event.street_code,
        event.name_zh,
    )


async def _community_registered(event: CommunityRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.communities (district_id, community, street_code) VALUES ($1, $2, $3)
        ON CONFLICT (district_id, community) DO UPDATE SET street_code = excluded.street_code
        """,
        event.district_id,
        event.community,
        event.street_code,
    )


async def _taxonomy_published(event: TaxonomyPublished, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.taxonomies (district_id, version, categories, published_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id) DO UPDATE
           SET version = excluded.version, categories = excluded.categories,
               published_at = excluded.published_at
         WHERE intake.taxonomies.version <= excluded.version
        """,
        event.district_id,
        event.version,
        [c.model_dump(mode="json") for c in event.categories],
        event.occurred_at,
    )


async def _day_scheduled(event: ReceptionDayScheduled, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.reception_days (district_id, representative_id, station_code, day,
            starts_at, ends_at, status)
        VALUES ($1, $2, $3, $4, $5, $6, 'scheduled')
        ON CONFLICT (district_id, representative_id, station_code, day) DO UPDATE
           SET starts_at = excluded.starts_at, ends_at = excluded.ends_at, status = 'scheduled'
        """,
        event.district_id,
        event.representative_id,
        event.station_code,
        event.day,
        event.starts_at,
        event.ends_at,
    )


async def _day_cancelled(event: ReceptionDayCancelled, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        "UPDATE intake.reception_days SET status = 'cancelled' WHERE district_id = $1 "
        "AND representative_id = $2 AND station_code = $3 AND day = $4",
        event.district_id,
        event.representative_id,
        event.station_code,
        event.day,
    )


async def _day_moved(event: ReceptionDayMoved, ctx: HandlerContext) -> None:
    old = await ctx.conn.fetchrow(
        "UPDATE intake.reception_days SET status = 'moved', moved_to = $5 WHERE district_id = $1 "
        "AND representative_id = $2 AND station_code = $3 AND day = $4 "
        "RETURNING starts_at, ends_at",
        event.district_id,
        event.representative_id,
        event.station_code,
        event.day,
        event.to_day,
    )
    await ctx.conn.execute(
        """
        INSERT INTO intake.reception_days (district_id, representative_id, station_code, day,
            starts_at, ends_at, status)
        VALUES ($1, $2, $3, $4, $5, $6, 'scheduled')
        ON CONFLICT (district_id, representative_id, station_code, day) DO UPDATE
           SET starts_at = excluded.starts_at, ends_at = excluded.ends_at, status = 'scheduled'
        """,
        event.district_id,
        event.representative_id,
        event.station_code,
        event.to_day,
        event.starts_at or (old["starts_at"] if old else None),
        event.ends_at or (old["ends_at"] if old else None),
    )


def register_directory_handlers(consumer: Consumer) -> None:
    """Teach ``consumer`` to keep intake's directory tables."""
    consumer.handles(DistrictRegistered)(_district_registered)
    consumer.handles(StationRegistered)(_station_registered)
    consumer.handles(StationMoved)(_station_moved)
    consumer.handles(StationRetired)(_station_retired)
    consumer.handles(RepresentativeRegistered)(_representative_registered)
    consumer.handles(RepresentativeRetired)(_representative_retired)
    consumer.handles(RepresentativeJoinedStation)(_joined)
    consumer.handles(RepresentativeLeftStation)(_left)
    consumer.handles(StreetRegistered)(_street_registered)
    consumer.handles(CommunityRegistered)(_community_registered)
    consumer.handles(TaxonomyPublished)(_taxonomy_published)
    consumer.handles(ReceptionDayScheduled)(_day_scheduled)
    consumer.handles(ReceptionDayCancelled)(_day_cancelled)
    consumer.handles(ReceptionDayMoved)(_day_moved)
