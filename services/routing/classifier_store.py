"""The districts' trained classifiers in ``routing.classifier_models``.

A row is written in the transaction that appends its ``ClassifierTrained`` event. The
version in use is the district stream's last ``ClassifierTrained``, which the directory
projection keeps in ``routing.districts.classifier_version`` (rebuilt from the events);
the table keeps the fitted arrays, which a rebuild leaves alone. A version in use that the
table does not hold (it lost its rows) is :class:`MissingModel`, never a silent fall back
to the keywords, and new versions are numbered after the events' last, never again.
Models are cached per (district, version): a fitted model never changes, so a directory
change reloads only the version number.
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


class ModelNotStored(LookupError):
    """No row of ``routing.classifier_models`` for a (district, version)."""


class MissingModel(LookupError):
    """The district's model in use (its last ``ClassifierTrained``) is not in the table:
    ``minqing routing train --district D --reproduce N`` fits it again from its event
    (or ``--replace-missing`` trains a new one, judged against the keywords)."""

    def __init__(self, district_id: str, version: int) -> None:
        super().__init__(
            f"classifier version {version} of {district_id} is in use but not in "
            f"routing.classifier_models: fit it again with "
            f"`minqing routing train --district {district_id} --reproduce {version}`"
        )
        self.district_id = district_id
        self.version = version


class ClassifierModels:
    """Reads and writes the districts' models, keeping each loaded version in memory."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], TextModel] = {}

    async def version_in_use(self, conn: Conn, district_id: str) -> int | None:
        """The version of the district's last ``ClassifierTrained`` (None: none yet).

        The table's newest row counts too: it holds no version the events do not (both
        are written in one transaction), but an instance of the code before migration
        0009 publishing during an upgrade writes its row without the column."""
        value = await conn.fetchval(
            "SELECT greatest((SELECT classifier_version FROM routing.districts "
            "                 WHERE district_id = $1), "
            "                (SELECT max(version) FROM routing.classifier_models "
            "                 WHERE district_id = $1))",
            district_id,
        )
        return None if value is None else int(value)

    async def in_use(self, conn: Conn, district_id: str) -> StoredModel | None:
        """The district's model in use (None: it has trained none); :class:`MissingModel`
        when the table does not hold it."""
        version = await self.version_in_use(conn, district_id)
        if version is None:
            return None
        try:
            return StoredModel(version, await self.version(conn, district_id, version))
        except ModelNotStored as exc:
            raise MissingModel(district_id, version) from exc

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
                raise ModelNotStored(f"no classifier version {version} for {district_id}")
            model = TextModel.from_bytes(bytes(data))
            self._loaded[key] = model
        return model

    async def next_version(self, conn: Conn, district_id: str) -> int:
        """The version the district's next model will have: after the events' last,
        whatever rows the table lost."""
        latest = await self.version_in_use(conn, district_id)
        return 1 if latest is None else latest + 1

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
