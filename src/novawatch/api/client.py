"""HTTP clients of the two services: the compute service as a model :class:`~novawatch.snapshot.Source`
(bootstrap, audit, strangers), and small JSON helpers the command line uses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec

from novawatch.redact import mask
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot
from novawatch.sources.errors import SourceError

log = logging.getLogger("novawatch.api.client")

_snapshot = msgspec.json.Decoder(Snapshot)
_node = msgspec.json.Decoder(NodeRecord)
_instance = msgspec.json.Decoder(InstanceRecord)


class ServiceError(RuntimeError):
    """A service that cannot be reached or answered with an error; the message says what to check."""


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class HttpSource:
    """The compute service's truth over HTTP (``GET /v1/snapshot``, ``/v1/snapshot/{nodes,instances}/UUID``).

    ``get_*`` are called from the model's apply path for entities it has never seen: they never raise
    (an unreachable source means "unknown", and the model builds the entity from the payload instead).
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        #: The URL as health and messages show it (its password masked); requests go to the URL as given.
        self.label = mask(self.url)
        self.client = httpx.Client(base_url=self.url, headers=_headers(token), timeout=timeout)
        self._lookup_timeout = httpx.Timeout(2.0)

    def snapshot(self, progress: Any = None) -> Snapshot:
        """The whole truth; raises :class:`SourceError` when the service cannot be reached or refuses."""
        try:
            resp = self.client.get("/v1/snapshot")
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot read the compute service at {self.label}: {mask(str(exc))}; is `novawatch "
                              "compute serve` running there? (model.compute_url)", "unreachable") from None
        if resp.status_code in (401, 403):
            raise SourceError(f"the compute service at {self.label} refused the token (HTTP {resp.status_code}): "
                              "set model.compute_token (NOVAWATCH_MODEL_COMPUTE_TOKEN) to its compute.token",
                              "auth")
        if resp.status_code != 200:
            raise SourceError(f"the compute service at {self.label} answered HTTP {resp.status_code} to "
                              "/v1/snapshot: is model.compute_url novawatch's compute service or Nova's "
                              "endpoint (http://HOST:8774/v2.1)?", "endpoint")
        try:
            return _snapshot.decode(resp.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SourceError(f"{self.label}/v1/snapshot is not a snapshot: {exc}", "endpoint") from None

    def list_nodes(self) -> Iterator[NodeRecord]:
        return iter(self.snapshot().nodes)

    def list_instances(self) -> Iterator[InstanceRecord]:
        return iter(self.snapshot().instances)

    def find_node(self, host: str) -> NodeRecord | None:
        """The node of ``host`` (from the whole snapshot: the service has no lookup by host; this is rare)."""
        return next((n for n in self.snapshot().nodes if n.host == host), None)

    def _get(self, path: str, decoder: msgspec.json.Decoder[Any]) -> Any:
        try:
            resp = self.client.get(path, timeout=self._lookup_timeout)
        except httpx.HTTPError as exc:
            log.warning("source lookup failed: %s", mask(str(exc)), extra={"path": path})
            return None
        if resp.status_code != 200:
            return None
        try:
            return decoder.decode(resp.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    def get_node(self, uuid: str) -> NodeRecord | None:
        result: NodeRecord | None = self._get(f"/v1/snapshot/nodes/{uuid}", _node)
        return result

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        result: InstanceRecord | None = self._get(f"/v1/snapshot/instances/{uuid}", _instance)
        return result

    def close(self) -> None:
        self.client.close()


def get_json(url: str, path: str, params: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
    """GET a JSON document from a service; :class:`ServiceError` with what to do when it fails."""
    base = url.rstrip("/")
    try:
        resp = httpx.get(base + path, params={k: v for k, v in (params or {}).items() if v is not None},
                         timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServiceError(f"cannot reach {mask(base)}: {mask(str(exc))}; is the service running? (start it with "
                           "`novawatch model serve`, or pass --url)") from None
    if resp.status_code >= 400:
        try:
            message = resp.json().get("error") or resp.text
        except ValueError:
            message = resp.text
        if resp.status_code == 404 and message == "Not Found":  # no such route, not a missing entity
            message += f"; is {base} a novawatch model service? (give its URL with --url)"
        raise ServiceError(mask(f"{base}{path}: HTTP {resp.status_code}: {message}"))
    return resp.json()
