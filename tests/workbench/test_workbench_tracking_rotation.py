"""A tracking code issued before a rotation of the index key still finds its case: the
ref inside the event cannot be rewritten, so the search tries every key it is given
(docs/privacy.md, "The blind index's key")."""

from __future__ import annotations

import pytest

from eventkit.identity import Principal, Role
from eventkit.keys import KeyRing
from eventkit.privacy import PersonalDataVault
from eventkit.settings import Settings
from services.routing.errors import CaseNotFound
from tests.workbench.conftest import ADMIN_ID, Bench

pytestmark = pytest.mark.asyncio(loop_scope="module")

NEW_KEY = "index-key-after-the-rotation-2c5f8b1e4a7d0c3f"


async def test_a_tracking_code_from_before_a_rotation_finds_its_case_while_its_key_is_listed(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Submitted under the key the services run with here (the development default).
    case_id = await bench.open_case(
        "垃圾桶满了没人清", tracking_code="MNPQRSTVWXYZ", station_code="dh_home"
    )
    before = Settings().privacy_lookup_keys()
    admin = Principal(ADMIN_ID, Role.DISTRICT_ADMIN, "demo")
    staff = bench.routing.staff
    pool = bench.routing.runtime.pool

    rotated = KeyRing("k2", NEW_KEY, {before.current_id: before.current})
    monkeypatch.setattr(staff, "_vault", PersonalDataVault(pool, lookup_keys=rotated))
    assert await staff.case_of_tracking_code(admin, "MNPQ-RSTV-WXYZ") == case_id

    monkeypatch.setattr(
        staff, "_vault", PersonalDataVault(pool, lookup_keys=KeyRing("k2", NEW_KEY))
    )
    with pytest.raises(CaseNotFound):
        await staff.case_of_tracking_code(admin, "MNPQ-RSTV-WXYZ")
