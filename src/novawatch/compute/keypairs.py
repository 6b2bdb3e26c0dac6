"""Key pairs: create (generate), import and delete a user's keys, with Nova's ``keypair.*`` notifications.

As Nova's ``KeypairAPI``: each action sends the legacy notification (a plain dict on ``notifications``)
around the versioned one, from the API host; a user has at most ``quotas.KEY_PAIRS`` key pairs.
"""

from __future__ import annotations

from sqlalchemy import func, select

from novawatch.compute import db, keys, quotas
from novawatch.compute.core import ComputeCore
from novawatch.compute.errors import Conflict, NotFound, OverQuota

KEY_TYPES = ("ssh", "x509")


class KeypairActions(ComputeCore):
    """A user's key pairs (read from the database: they are not on any action's path)."""

    def keypairs(self, user_id: str) -> list[db.KeyPair]:
        """The user's key pairs, by name."""
        return self.repo.query(select(db.KeyPair).where(db.KeyPair.user_id == user_id).order_by(db.KeyPair.name))

    def keypair(self, user_id: str, name: str) -> db.KeyPair:
        """One of the user's key pairs, or :class:`NotFound` in Nova's words."""
        row: db.KeyPair | None = next(iter(self.repo.query(
            select(db.KeyPair).where(db.KeyPair.user_id == user_id, db.KeyPair.name == name))), None)
        if row is None:
            raise NotFound(f"Keypair {name} not found for user {user_id}")
        return row

    def keypair_count(self, user_id: str) -> int:
        """How many key pairs the user has (the ``key_pairs`` quota's usage)."""
        return self.repo.count(select(func.count()).select_from(db.KeyPair).where(db.KeyPair.user_id == user_id))

    def create_keypair(self, user_id: str, name: str, key_type: str = "ssh", public_key: str | None = None, *,
                       project_id: str | None = None) -> tuple[db.KeyPair, str | None]:
        """Import ``public_key``, or generate a key pair when it is None: (the key pair, its private key or None).

        ``keypair.import.*`` or ``keypair.create.*`` (the legacy ones name the caller's ``project_id``).
        Raises :class:`OverQuota`, :class:`Conflict` (the name is taken), or :class:`keys.InvalidKey` (a
        public key or certificate that cannot be read).
        """
        if key_type not in KEY_TYPES:
            raise keys.InvalidKey(f"type must be one of {', '.join(KEY_TYPES)}")
        if self.keypair_count(user_id) >= quotas.KEY_PAIRS:
            raise OverQuota("Maximum number of key pairs exceeded")
        if any(k.name == name for k in self.keypairs(user_id)):
            raise Conflict(f"Key pair '{name}' already exists.")
        action = "create" if public_key is None else "import"
        # Checked before anything is sent (Nova sends import.start first, then refuses the key).
        fingerprint = None if public_key is None else keys.fingerprint(public_key, key_type)
        now = self.now()
        row = db.KeyPair(id=self.repo.next_id(db.KeyPair), name=name, user_id=user_id, fingerprint=None,
                         public_key=public_key, type=key_type, created_at=now, updated_at=None)
        self._keypair_legacy(f"{action}.start", row, project_id)
        self._keypair_event(f"keypair.{action}.start", row)
        private_key: str | None = None
        if public_key is None:
            private_key, row.public_key, fingerprint = (keys.new_ssh_key() if key_type == "ssh"
                                                        else keys.new_x509_cert(user_id, self.clock.now()))
        row.fingerprint = fingerprint
        self.repo.add(row)
        self._keypair_event(f"keypair.{action}.end", row)
        self._keypair_legacy(f"{action}.end", row, project_id)
        return row, private_key

    def delete_keypair(self, user_id: str, name: str, *, project_id: str | None = None) -> None:
        """Delete one of the user's key pairs (``keypair.delete.*``); :class:`NotFound` when it has none such."""
        row = self.keypair(user_id, name)
        self._keypair_legacy("delete.start", row, project_id)
        self._keypair_event("keypair.delete.start", row)
        self.repo.delete(row)
        self._keypair_event("keypair.delete.end", row)
        self._keypair_legacy("delete.end", row, project_id)

    def _keypair_event(self, event_type: str, row: db.KeyPair) -> None:
        if self.emit.notifier.format.versioned:
            from novawatch.notifications.catalog.keypair import KeypairPayload

            self.emit.notifier.emit(event_type, KeypairPayload.populate({"keypair": row}),
                                    publisher_id=f"nova-api:{self.api_host}")

    def _keypair_legacy(self, suffix: str, row: db.KeyPair, project_id: str | None) -> None:
        # Nova's KeypairAPI._notify: a dict from the "api" notifier, sent whatever the versioned format says.
        if self.emit.notifier.format.unversioned:
            from novawatch.notifications.catalog.legacy_shared import LegacyKeypairPayload

            payload = LegacyKeypairPayload(tenant_id=project_id, user_id=row.user_id, key_name=row.name)
            self.emit.notifier.emit(f"keypair.{suffix}", payload, publisher_id=f"api.{self.api_host}")
