"""The districts' trained classifiers in ``routing.classifier_models``.

A row is written in the transaction that appends its ``ClassifierTrained`` event; the
newest row of a district is the model in use. Models are cached per (district, version):
a fitted model never changes, so a directory change reloads only the version number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eventkit.db import Conn
from services.routing.classifier_model import TextModel


@dataclass(frozen=True)
class StoredModel:
    """A district's model and the version that names it in ``ClassifierTrained``."""

    version: int
    model: TextModel


class ClassifierModels:
    """Reads and writes the districts' models, keeping each loaded version in memory."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], TextModel] = {}

    async def in_use(self, conn: Conn, district_id: str) -> StoredModel | None:
        """The district's newest model (None: it has trained none)."""
        version = await conn.fetchval(
            "SELECT max(version) FROM routing.classifier_models WHERE district_id = $1",
            district_id,
        )
        if version is None:
            return None
        return StoredModel(version, await self.version(conn, district_id, version))

    async def version(self, conn: Conn, district_id: str, version: int) -> TextModel:
        """One version of the district's model (read once per process)."""
        key = (district_id, version)
        model = self._loaded.get(key)
        if model is None:
            data = await conn.fetchval(
                "SELECT model FROM routing.classifier_models "
                "WHERE district_id = $1 AND version = $2",
                district_id,
                version,
            )
            if data is None:
                raise LookupError(f"no classifier version {version} for {district_id}")
            model = TextModel.from_bytes(bytes(data))
            self._loaded[key] = model
        return model

    async def next_version(self, conn: Conn, district_id: str) -> int:
        """The version the district's next model will have."""
        latest = await conn.fetchval(
            "SELECT max(version) FROM routing.classifier_models WHERE district_id = $1",
            district_id,
        )
        return 1 if latest is None else int(latest) + 1

    async def save(
        self,
        conn: Conn,
        district_id: str,
        version: int,
        taxonomy_version: int,
        model: TextModel,
        trained_at: datetime,
    ) -> None:
        """Keep a model (in the transaction appending its ``ClassifierTrained``)."""
        await conn.execute(
            """
            INSERT INTO routing.classifier_models
                (district_id, version, taxonomy_version, model_digest, model, trained_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (district_id, version) DO UPDATE SET
                taxonomy_version = excluded.taxonomy_version,
                model_digest = excluded.model_digest, model = excluded.model,
                trained_at = excluded.trained_at
            """,
            district_id,
            version,
            taxonomy_version,
            model.digest,
            model.to_bytes(),
            trained_at,
        )
        self._loaded[(district_id, version)] = model
