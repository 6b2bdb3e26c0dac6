"""``keypair.*``: a keypair was created, imported or deleted; ``KeypairPayload`` is also in ``instance.create``."""

from __future__ import annotations

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload


class KeypairPayload(Payload, kw_only=True):
    """A keypair (its public half)."""

    VERSION = "1.0"
    SCHEMA = {name: ("keypair", name) for name in ("user_id", "name", "public_key", "fingerprint", "type")}

    user_id: str | None
    name: str
    fingerprint: str | None
    public_key: str | None
    type: str


for _action in ("create", "import", "delete"):
    for _phase in ("start", "end"):
        event(f"keypair.{_action}.{_phase}", KeypairPayload, source="nova-api")
