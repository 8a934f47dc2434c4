"""What intake learns from the directory events: stations coming and going, streets,
communities, representatives, and the taxonomy routing publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from contracts import (
    CommunityRegistered,
    LatLong,
    RepresentativeRetired,
    StationKind,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyCategory,
    TaxonomyPublished,
)
from eventkit.consumer import Consumer
from eventkit.store import EventStore
from services.intake.settings import IntakeSettings
from services.intake.taxonomy import published_taxonomy
from tests.intake.intake_support import (
    ADMIN,
    CATEGORIES,
    COMMUNITY_STATION,
    DISTRICT,
    REPRESENTATIVE,
    STATION,
    directory_events,
    now,
    opinion_body,
    publish,
    taxonomy_published,
)

COMMON: dict[str, Any] = {"district_id": DISTRICT, "actor": ADMIN}
MakeClient = Callable[[IntakeSettings], AsyncIterator[httpx.AsyncClient]]


async def test_a_retired_station_takes_no_more_submissions(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    await publish(
        store,
        consumer,
        [StationRetired(**COMMON, occurred_at=now(), station_code=COMMUNITY_STATION)],
    )
    body = opinion_body(station_code=COMMUNITY_STATION)
    refused = await client.post("/api/v1/opinions", json=body)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/unknown-station")
    assert (await client.get(f"/q/{COMMUNITY_STATION}")).status_code == 404
    listed = (await client.get("/api/v1/stations", params={"district": DISTRICT})).json()
    assert [s["station_code"] for s in listed["stations"]] == [STATION]


async def test_registering_a_retired_station_again_reopens_it(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    again = StationRegistered(
        **COMMON,
        occurred_at=now(),
        station_code=COMMUNITY_STATION,
        name_zh="科育社区代表联络站",
        kind=StationKind.COMMUNITY,
        street_code="zgc",
    )
    retired = StationRetired(**COMMON, occurred_at=now(), station_code=COMMUNITY_STATION)
    await publish(store, consumer, [retired, again])
    accepted = await client.post(
        "/api/v1/opinions",
        json=opinion_body(station_code=COMMUNITY_STATION, district=DISTRICT),
    )
    assert accepted.status_code == 201


async def test_a_moved_station_shows_its_new_place_and_its_streets_name(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    await publish(
        store,
        consumer,
        [
            StreetRegistered(**COMMON, occurred_at=now(), street_code="hd", name_zh="海淀街道"),
            StationMoved(
                **COMMON,
                occurred_at=now(),
                station_code=COMMUNITY_STATION,
                street_code="hd",
                communities=[],
                address="海淀大街1号",
                position=LatLong(lat=39.98, long=116.31),
            ),
            CommunityRegistered(
                **COMMON, occurred_at=now(), community="海淀南路社区", street_code="hd"
            ),
            CommunityRegistered(
                **COMMON, occurred_at=now(), community="苏州街社区", street_code="hd"
            ),
        ],
    )
    station = (await client.get(f"/api/v1/stations/{COMMUNITY_STATION}")).json()
    assert station["street_name_zh"] == "海淀街道"
    assert station["address"] == "海淀大街1号"
    assert station["position"] == {"lat": 39.98, "long": 116.31}
    form = (await client.get(f"/q/{COMMUNITY_STATION}")).text
    # It serves no community of its own: the form offers its street's.
    assert '<option value="海淀南路社区">' in form
    assert '<option value="苏州街社区">' in form


async def test_a_retired_representative_is_no_longer_shown_at_the_station(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    retired = RepresentativeRetired(**COMMON, occurred_at=now(), representative_id=REPRESENTATIVE)
    await publish(store, consumer, [retired])
    station = (await client.get(f"/api/v1/stations/{STATION}")).json()
    assert station["representatives"] == []


def taxonomy(version: int, *codes: str) -> TaxonomyPublished:
    return taxonomy_published(
        version,
        [
            TaxonomyCategory(code=code, name_zh=f"类别{code}", name_en=code, keywords=[code])
            for code in codes
        ],
    )


async def test_a_newer_published_taxonomy_replaces_the_older_one(
    intake_settings: IntakeSettings,
    directory: None,
    store: EventStore,
    consumer: Consumer,
    make_client: MakeClient,
) -> None:
    settings = intake_settings.model_copy(update={"directory_cache_seconds": 0})
    async for client in make_client(settings):
        before = (await client.get("/api/v1/categories", params={"district": DISTRICT})).json()
        assert before["categories"][0]["code"] == "municipal.street_light"  # version 1

        # Version 1 arriving late never replaces version 2.
        await publish(store, consumer, [taxonomy(2, "safety", "property"), taxonomy(1, "old")])

        services = (
            await client.get("/open311/v2/services.json", params={"jurisdiction_id": DISTRICT})
        ).json()
        assert [s["service_code"] for s in services] == ["safety", "property"]
        assert services[0]["service_name"] == "类别safety"
        form = (await client.get(f"/q/{STATION}")).text
        assert '<option value="safety"' in form


async def test_a_district_without_a_published_taxonomy_offers_no_categories(
    intake_settings: IntakeSettings,
    store: EventStore,
    consumer: Consumer,
    make_client: MakeClient,
) -> None:
    await publish(
        store, consumer, [e for e in directory_events() if not isinstance(e, TaxonomyPublished)]
    )
    async for client in make_client(intake_settings):
        listed = (await client.get("/api/v1/categories", params={"district": DISTRICT})).json()
        assert listed == {"district": DISTRICT, "categories": []}
        services = await client.get(
            "/open311/v2/services.json", params={"jurisdiction_id": DISTRICT}
        )
        assert services.json() == []
        assert 'name="category_hint"' not in (await client.get(f"/q/{STATION}")).text


def test_the_published_categories_keep_their_order_names_and_keywords() -> None:
    published = [c.model_dump(mode="json") for c in CATEGORIES]
    taxonomy = published_taxonomy(DISTRICT, [*published, {**published[0], "name_zh": "重复"}])
    assert [c.code for c in taxonomy.categories] == [
        "municipal.street_light",
        "municipal.road",
        "property.elevator",
    ]
    light = taxonomy.get("municipal.street_light")
    assert light is not None
    assert (light.name_zh, light.name_en, light.keywords) == (
        "路灯照明",
        "Street lights",
        ("路灯", "不亮", "照明"),
    )
    assert (light.group, light.description) == (None, None)
    assert taxonomy.names()["property.elevator"] == ("电梯故障", "Lift breakdowns")
    grouped = published_taxonomy(DISTRICT, [{**published[1], "group": "市政设施"}])
    assert grouped.categories[0].group == "市政设施"
