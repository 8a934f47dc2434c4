"""The staff's sealed texts a rebuild folds, opened where they are folded.

Case events carry the staff's texts sealed with the case's key
(:mod:`eventkit.sealed_texts`). Of those texts the projections keep only the ones that
become a step's note in a representative's archive: the reply, the result, the closing
note, the reason for reopening and the suggestion's title (:data:`FOLDED_TEXTS`). A
rebuild opens those and no others: the texts of an opening (matched words, evidence), a
transfer, a whistle or a merge are never read by reporting, and a year of a large
district has a sealed ``CaseOpened`` for every case. Leaving them sealed changes no row
(``tests/reporting/test_reporting_folded_texts.py`` folds every type of sealed event
both ways); the live consumer opens every text, as the runtime does for every service.

Opening costs a key's unwrapping (once per case) and a decryption per event. The event
is validated from its JSON as every other (pydantic, from bytes), then its texts are
opened into a copy: no decoding of the JSON into a dict and validating that again
(measured on a year of a large district: 31 µs an event that way). The fold processes
open the events they fold (:mod:`services.reporting.fold_workers`), each looking the keys
up on a connection of its own, so that the work is shared out like the rest of the
folding; a rebuild folding in one process opens them as it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from contracts.base import Event
from contracts.intake import SealedText
from eventkit.db import Conn
from eventkit.privacy_rights import ERASED
from eventkit.sealed_texts import TextKey, TextKeys
from services.reporting.shadow import every_district

FOLDED_TEXTS: Final[Mapping[str, tuple[str, ...]]] = {
    "CaseReplied": ("message",),
    "CaseResolved": ("result",),
    "CaseClosed": ("note",),
    "CaseReopened": ("reason",),
    "CaseConvertedToSuggestion": ("title",),
}
"""The case events whose sealed texts a projection keeps (as the note of a step), with
those texts (each a text, or None): all of the texts each of them seals
(:data:`eventkit.sealed_texts.CASE_TEXTS`)."""

Parse = Callable[[str, int, Any], Event]
"""Makes an event from its type, schema version and stored data."""


def sealed_and_folded(event_type: str, data: Any) -> bool:
    """Whether a stored event's data (JSON bytes or text, or a dict) holds sealed texts
    a projection keeps."""
    if event_type not in FOLDED_TEXTS:
        return False
    if isinstance(data, bytes):
        return b'"sealed": {' in data or b'"sealed":{' in data
    if isinstance(data, str):
        return '"sealed": {' in data or '"sealed":{' in data
    return bool(data.get("sealed"))


def opened(event: Event, keys: Mapping[str, TextKey]) -> Event:
    """``event`` (one of :data:`FOLDED_TEXTS`, just made from its stored data) with its
    texts opened and ``sealed`` dropped, in place: what the live consumer folds after
    opening the stored data; the erased mark where the key is gone (forgotten, or its
    retention ended)."""
    token: SealedText | None = getattr(event, "sealed", None)
    if token is None:
        return event
    fields = FOLDED_TEXTS[event.event_type]
    key = keys.get(token.key_id)
    if key is None:
        values: dict[str, Any] = dict.fromkeys(fields, ERASED)
    else:
        texts = key.open(event.event_type, token)
        values = {f: texts.get(f) for f in fields}
    # Into the event itself, which only its caller holds (it was just made from the
    # stored JSON): a copy (``model_copy``) cost as much as opening. The texts were
    # validated as the event's own before they were sealed.
    fields_of = event.__dict__
    fields_of.update(values)
    fields_of["sealed"] = None
    return event


class FoldedTextOpener:
    """Opens the folded texts of the events read, their keys looked up in one query per
    batch and kept for the rest of the rebuild (a case's events are spread over the
    year). A key deleted meanwhile (a resident forgotten while the rebuild reads) would
    still open that case's later texts: the rebuild asks which keys it found
    (:meth:`take_found`) and erases, under its swap's lock, the rows of those deleted
    since."""

    def __init__(self, texts: TextKeys) -> None:
        self._texts = texts
        self._keys: dict[str, TextKey] = {}
        self._asked: set[str] = set()
        self._found: list[str] = []

    def take_found(self) -> list[str]:
        """The ids of the keys found since the last call: texts opened with them are in
        the rebuilt rows, so a key deleted before the swap means those rows must be
        erased as the live ones were (:meth:`services.reporting.rebuild._Run`)."""
        found, self._found = self._found, []
        return found

    async def open(
        self, conn: Conn, items: Sequence[tuple[Any, ...]], parse: Parse
    ) -> list[Any] | None:
        """The data of stored events given as tuples that begin (event type, schema
        version, stored data), in their order: where texts a projection keeps are
        sealed, the event itself (made with ``parse``) with them opened; the data as it
        was otherwise. None when nothing was sealed.
        Keys are looked up in ``conn``, in a transaction scoped to every district."""
        sealed = {
            i: parse(item[0], item[1], item[2])
            for i, item in enumerate(items)
            if sealed_and_folded(item[0], item[2])
        }
        if not sealed:
            return None
        tokens: list[SealedText | None] = [getattr(e, "sealed", None) for e in sealed.values()]
        wanted = {t.key_id for t in tokens if t is not None} - self._asked
        if wanted:
            async with every_district(conn):
                found = await self._texts.found(conn, wanted)
            self._keys.update(found)
            self._found += found
            self._asked |= wanted
        out = [item[2] for item in items]
        for i, event in sealed.items():
            out[i] = opened(event, self._keys)
        return out
