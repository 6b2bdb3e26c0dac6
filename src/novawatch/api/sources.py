"""Which source the model service bootstraps and audits from, chosen from its configuration.

* a cloud (``model.os_cloud``, or ``OS_CLOUD`` when no other compute URL is set): Nova's API through
  Keystone, as the ``openstack`` CLI reaches it (:mod:`novawatch.sources.cloud`);
* ``model.compute_url``: either novawatch's own compute service (``/v1/snapshot``) or a Nova endpoint
  (``http://nova:8774/v2.1``), told apart by what the URL answers; ``model.compute_token`` is sent as
  novawatch's bearer token or as Nova's ``X-Auth-Token``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import httpx

from novawatch.api.client import HttpSource
from novawatch.config import ModelConfig, mask_url
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot
from novawatch.sources.cloud import CloudOptions, open_cloud, open_endpoint
from novawatch.sources.errors import SourceError
from novawatch.sources.nova_api import Progress

DEFAULT_COMPUTE_URL = ModelConfig().compute_url


class ModelSource(Protocol):
    """What the model service needs of a source: the snapshot protocol plus a lookup by host."""

    label: str

    def snapshot(self, progress: Progress | None = None) -> Snapshot: ...

    def list_nodes(self) -> Iterator[NodeRecord]: ...

    def list_instances(self) -> Iterator[InstanceRecord]: ...

    def get_node(self, uuid: str) -> NodeRecord | None: ...

    def get_instance(self, uuid: str) -> InstanceRecord | None: ...

    def find_node(self, host: str) -> NodeRecord | None: ...

    def close(self) -> None: ...


def cloud_name(mc: ModelConfig, env: Mapping[str, str] | None = None) -> str:
    """The clouds.yaml entry in effect: ``model.os_cloud``, else ``OS_CLOUD`` unless a compute URL was set."""
    env = os.environ if env is None else env
    if mc.os_cloud:
        return mc.os_cloud
    if mc.compute_url == DEFAULT_COMPUTE_URL:
        return env.get("OS_CLOUD", "")
    return ""


def open_model_source(mc: ModelConfig, env: Mapping[str, str] | None = None) -> ModelSource | None:
    """The configured source (nothing is contacted yet), or None; :class:`SourceError` for a bad cloud entry."""
    cloud = cloud_name(mc, env)
    if cloud:
        return open_cloud(CloudOptions(cloud, mc.os_region_name, mc.os_interface, mc.os_compute_endpoint_override))
    if mc.compute_url:
        return DetectingSource(mc.compute_url, token=mc.compute_token or None)
    return None


class DetectingSource:
    """A compute URL that is either novawatch's compute service or a Nova endpoint, found out on first use."""

    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.label = mask_url(self.url)
        self._inner: Any = None

    def _source(self) -> Any:
        if self._inner is None:
            self._inner = detect(self.url, self.token)
            self.label = self._inner.label
        return self._inner

    def snapshot(self, progress: Progress | None = None) -> Snapshot:
        result: Snapshot = self._source().snapshot(progress)
        return result

    def list_nodes(self) -> Iterator[NodeRecord]:
        result: Iterator[NodeRecord] = self._source().list_nodes()
        return result

    def list_instances(self) -> Iterator[InstanceRecord]:
        result: Iterator[InstanceRecord] = self._source().list_instances()
        return result

    def get_node(self, uuid: str) -> NodeRecord | None:
        result: NodeRecord | None = self._source().get_node(uuid)
        return result

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        result: InstanceRecord | None = self._source().get_instance(uuid)
        return result

    def find_node(self, host: str) -> NodeRecord | None:
        result: NodeRecord | None = self._source().find_node(host)
        return result

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def detect(url: str, token: str | None = None, *, timeout: float = 10.0) -> Any:
    """The source behind ``url``: a Nova version document means Nova, ``/v1/health`` means novawatch."""
    label = mask_url(url)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            resp = client.get(url)
            body = _json(resp)
            if isinstance(body, dict) and isinstance(body.get("version"), dict):
                return open_endpoint(url, token=token)
            if isinstance(body, dict) and isinstance(body.get("versions"), list):
                # A root that lists API versions: novawatch's compute service serves one too.
                if client.get(url + "/v1/health").status_code == 200:
                    return HttpSource(url, token=token)
                # Nova's root: its v2.1 API is under it (the links in the document may name an internal host).
                return open_endpoint(url + "/v2.1", token=token)
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach {label}: {exc}; is `novawatch compute serve` or Nova running there? "
                          "(model.compute_url, --compute-url)", "unreachable") from None
    return HttpSource(url, token=token)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
