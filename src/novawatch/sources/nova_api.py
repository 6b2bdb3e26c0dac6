"""A :class:`novawatch.snapshot.Source` over Nova's Compute API: raw GETs with explicit microversions.

The HTTP goes through a keystoneauth adapter (openstacksdk's ``Connection.compute``), so every way of
authenticating that the ``openstack`` CLI knows works here; the JSON goes through
:mod:`novawatch.sources.nova_views`. What is asked, and why:

* nodes: ``GET /os-hypervisors/detail`` at 2.87, the newest microversion that still reports
  ``vcpus``/``memory_mb``/``local_gb``; on a cloud whose minimum is above 2.87, at the newest, with
  capacity from Placement (``GET /resource_providers/{uuid}/inventories``) as Watcher reads it;
* instances: ``GET /servers/detail?all_tenants=1&soft_deleted=true`` at the newest microversion this
  code was checked against (flavor embedded from 2.47); ``soft_deleted`` makes Nova list soft-deleted
  servers beside the live ones (admins only, like ``all_tenants``);
* both paged with ``limit``/``marker``, following Nova's ``*_links`` ``next`` (Nova caps a page at
  ``[api] max_limit``, 1000 by default).

Every call may raise :class:`~novawatch.sources.errors.SourceError`, whose message says what to check.
Calls block: the model service runs them in a thread, never on its event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from novawatch import snapshot
from novawatch.snapshot import InstanceRecord, NodeRecord
from novawatch.sources import nova_views
from novawatch.sources.errors import SourceError, scrub

log = logging.getLogger("novawatch.sources.nova_api")

Version = tuple[int, int]

#: The newest microversion whose hypervisor view still has the capacity fields.
HYPERVISOR_CAPACITY_VERSION: Version = (2, 87)
#: Hypervisor ids are compute node uuids from 2.53 (the model keys nodes by uuid).
MIN_VERSION: Version = (2, 53)
#: The newest microversion Nova 34 serves, whose server view the conversion was checked against.
NEWEST_CHECKED: Version = (2, 104)
#: Items asked for per page (Nova answers at most ``[api] max_limit`` and then links the next page).
PAGE_SIZE = 1000

#: ``progress(description, done, total)`` as the model service reports its bootstrap.
Progress = Callable[[str, int, "int | None"], None]

_FORBIDDEN_HINT = ("give the user the admin role on its project (for example `openstack role add --user USER "
                   "--project PROJECT admin`), or use a cloud entry whose user has it")


def _fmt(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def pick_version(lowest: Version, highest: Version, wanted: Version) -> Version:
    """``wanted`` when the endpoint serves it, else the nearest end of the endpoint's range."""
    if wanted < lowest:
        return lowest
    return min(wanted, highest)


class NovaApiSource:
    """Lists and looks up nodes and instances through Nova's API; implements :class:`~novawatch.snapshot.Source`.

    ``compute`` and ``placement`` are keystoneauth adapters (``Connection.compute``/``.placement``);
    ``label`` names the cloud in messages (never a secret). ``page_size`` bounds one listing request.
    """

    def __init__(self, compute: Any, placement: Any | None = None, *, label: str, page_size: int = PAGE_SIZE,
                 on_close: Callable[[], None] | None = None) -> None:
        self.compute = compute
        self.placement = placement
        self.label = scrub(label)
        self.page_size = page_size
        self._on_close = on_close
        self._versions: tuple[Version, Version] | None = None
        self._flavors: dict[str, Mapping[str, Any] | None] = {}
        #: Documents the last listings could not convert (each named), skipped so that the rest loads.
        self.node_problems: list[str] = []
        self.instance_problems: list[str] = []

    # --- versions ------------------------------------------------------------------------------------

    def versions(self) -> tuple[Version, Version]:
        """The endpoint's (minimum, maximum) microversion, from its version document (cached)."""
        if self._versions is None:
            data = self._call(lambda: self.compute.get_endpoint_data(), "read the version document")
            low = getattr(data, "min_microversion", None)
            high = getattr(data, "max_microversion", None)
            if data is None or low is None or high is None:
                raise SourceError(f"{self.label} has no microversioned compute API v2.1 (its version document "
                                  "names no microversions): point the compute endpoint at Nova's /v2.1", "endpoint")
            if high < MIN_VERSION:
                raise SourceError(f"{self.label} serves microversions up to {_fmt(high)}; novawatch needs "
                                  f"{_fmt(MIN_VERSION)} or later (Nova 16, Pike)", "version")
            self._versions = ((low[0], low[1]), (high[0], high[1]))
        assert self._versions is not None
        return self._versions

    @property
    def hypervisor_version(self) -> Version:
        low, high = self.versions()
        return pick_version(low, high, HYPERVISOR_CAPACITY_VERSION)

    @property
    def server_version(self) -> Version:
        low, high = self.versions()
        return pick_version(low, high, NEWEST_CHECKED)

    @property
    def uses_placement(self) -> bool:
        """True when the hypervisor view has no capacity at any microversion the endpoint serves."""
        return self.hypervisor_version > HYPERVISOR_CAPACITY_VERSION

    # --- HTTP ------------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], doing: str) -> Any:
        """``fn()`` with keystoneauth's and openstacksdk's exceptions turned into :class:`SourceError`."""
        from keystoneauth1 import exceptions as ks
        from openstack import exceptions as sdk

        try:
            return fn()
        except SourceError:
            raise
        except ks.http.Unauthorized:
            raise SourceError(f"{self.label}: Keystone refused the credentials (401) while trying to {doing}: "
                              "check the user name, password, project and domain (or the application credential, "
                              "or the token) of the cloud entry", "auth") from None
        except ks.http.Forbidden:
            raise SourceError(f"{self.label}: refused (403) while trying to {doing}: {_FORBIDDEN_HINT}",
                              "forbidden") from None
        except ks.catalog.EndpointNotFound:
            raise SourceError(f"{self.label}: the service catalog has no compute endpoint for this region and "
                              "interface: check region_name and interface in clouds.yaml (or --os-region-name, "
                              "--os-interface), or give the endpoint with --os-compute-endpoint", "catalog") from None
        except ks.connection.ConnectionError as exc:
            raise SourceError(f"{self.label}: cannot reach the endpoint while trying to {doing} "
                              f"({type(exc).__name__}: {exc}): check the URL, that the service runs and that this "
                              "host can reach it", "unreachable") from None
        except ks.discovery.DiscoveryFailure as exc:
            raise SourceError(f"{self.label}: no compute API version document while trying to {doing} ({exc}): "
                              "check the endpoint (Nova's looks like http://HOST:8774/v2.1), that Nova runs and "
                              "that this host can reach it", "unreachable") from None
        except ks.auth_plugins.AuthPluginException as exc:
            raise SourceError(f"{self.label}: the authentication settings are incomplete ({exc}): check the "
                              "cloud entry's auth section", "config") from None
        except (ks.ClientException, sdk.SDKException) as exc:
            raise SourceError(f"{self.label}: failed to {doing}: {type(exc).__name__}: {exc}", "endpoint") from None

    def _get(self, adapter: Any, path: str, *, params: Mapping[str, Any] | None = None,
             microversion: Version | None = None, allow_404: bool = False) -> Any:
        """The JSON body of ``GET path``; None for a 404 when ``allow_404``."""
        kwargs: dict[str, Any] = {"params": dict(params or {})}
        if microversion is not None:
            kwargs["microversion"] = _fmt(microversion)
        resp = self._call(lambda: adapter.get(path, raise_exc=False, **kwargs), f"GET {path}")
        status = resp.status_code
        if status == 404 and allow_404:
            return None
        if status == 401:
            raise SourceError(f"{self.label}: GET {path} answered 401: the token was refused; check the cloud "
                              "entry's credentials (or the token)", "auth")
        if status == 403:
            raise SourceError(f"{self.label}: GET {path} answered 403 ({_fault(resp)}): reading every project's "
                              f"servers and the hypervisors needs the admin role: {_FORBIDDEN_HINT}", "forbidden")
        if status >= 400:
            hint = (": is this Nova's compute API v2.1? (an endpoint like http://HOST:8774/v2.1)"
                    if status in (404, 405) else "")
            raise SourceError(f"{self.label}: GET {path} answered HTTP {status} ({_fault(resp)}){hint}", "endpoint")
        try:
            return resp.json()
        except ValueError:
            raise SourceError(f"{self.label}: GET {path} did not answer JSON: is this Nova's compute API v2.1?",
                              "endpoint") from None

    def _pages(self, path: str, key: str, params: Mapping[str, Any], microversion: Version,
               progress: Progress | None = None, what: str = "") -> Iterator[dict[str, Any]]:
        """Every item of a paged Nova listing (``limit``/``marker``)."""
        marker: str | None = None
        count = 0
        while True:
            query = {**params, "limit": self.page_size}
            if marker is not None:
                query["marker"] = marker
            body = self._get(self.compute, path, params=query, microversion=microversion)
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise SourceError(f"{self.label}: GET {path} answered without a {key!r} list: is this Nova's "
                                  "compute API v2.1?", "endpoint")
            yield from items
            count += len(items)
            if progress is not None:
                progress(f"bootstrap: {count} {what or key} listed", count, None)
            links = body.get(f"{key}_links") or []
            more = any(isinstance(link, dict) and link.get("rel") == "next" for link in links)
            if not items or (not more and len(items) < self.page_size):
                return
            last = items[-1].get("id") if isinstance(items[-1], dict) else None
            if last is None or str(last) == marker:
                return
            marker = str(last)

    # --- nodes -----------------------------------------------------------------------------------

    def _inventories(self, uuid: str) -> Mapping[str, Any] | None:
        if self.placement is None:
            raise SourceError(f"{self.label}: Nova reports no node capacity past microversion 2.87 (this endpoint "
                              f"serves {_fmt(self.versions()[0])} and newer) and the catalog has no placement "
                              "endpoint to read it from: check the cloud's catalog or placement_endpoint_override",
                              "catalog")
        body = self._get(self.placement, f"/resource_providers/{uuid}/inventories", allow_404=True)
        if body is None:
            return None
        inventories = body.get("inventories")
        return inventories if isinstance(inventories, Mapping) else None

    def _node(self, hyp: Mapping[str, Any]) -> NodeRecord:
        inventories = self._inventories(str(hyp.get("id"))) if self.uses_placement else None
        return nova_views.node_from_hypervisor(hyp, inventories)

    def _hypervisors(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        return self._pages("/os-hypervisors/detail", "hypervisors", {}, self.hypervisor_version, progress,
                           "hypervisors")

    def list_nodes(self, progress: Progress | None = None) -> Iterator[NodeRecord]:
        problems: list[str] = []
        records: list[NodeRecord] = []
        for hyp in self._hypervisors(progress):
            try:
                records.append(self._node(hyp))
            except nova_views.ViewError as exc:
                problems.append(str(exc))
        self.node_problems = problems
        return iter(sorted(records, key=lambda n: n.uuid))

    def get_node(self, uuid: str) -> NodeRecord | None:
        hyp = self._get(self.compute, f"/os-hypervisors/{uuid}", microversion=self.hypervisor_version,
                        allow_404=True)
        if hyp is None or not isinstance(hyp.get("hypervisor"), dict):
            return None
        return self._node(hyp["hypervisor"])

    def find_node(self, host: str) -> NodeRecord | None:
        """The node of the compute service on ``host``, or None when Nova has none (yet)."""
        # The pattern matches hypervisor_hostname as a substring; with libvirt it is usually the host's
        # FQDN, so this finds the node in one call; otherwise the whole list is read.
        found = self._get(self.compute, "/os-hypervisors/detail", params={"hypervisor_hostname_pattern": host},
                          microversion=self.hypervisor_version, allow_404=True)
        candidates = (found or {}).get("hypervisors") or []
        for hyp in candidates:
            if _service_host(hyp) == host:
                return self._node(hyp)
        for hyp in self._hypervisors():
            if _service_host(hyp) == host:
                return self._node(hyp)
        return None

    # --- instances -------------------------------------------------------------------------------

    def _flavor(self, flavor_id: str) -> Mapping[str, Any] | None:
        if flavor_id not in self._flavors:
            body = self._get(self.compute, f"/flavors/{flavor_id}", allow_404=True)
            self._flavors[flavor_id] = body.get("flavor") if isinstance(body, dict) else None
        return self._flavors[flavor_id]

    def _instance(self, server: Mapping[str, Any]) -> InstanceRecord:
        try:
            return nova_views.instance_from_server(server, self._flavor)
        except nova_views.HiddenFields as exc:
            raise SourceError(f"{self.label}: {exc}; {_FORBIDDEN_HINT}", "forbidden") from None

    def list_instances(self, progress: Progress | None = None) -> Iterator[InstanceRecord]:
        problems: list[str] = []
        seen: dict[str, InstanceRecord] = {}
        params = {"all_tenants": "1", "soft_deleted": "true"}
        for server in self._pages("/servers/detail", "servers", params, self.server_version, progress, "servers"):
            if nova_views.is_deleted(server):
                continue
            try:
                record = self._instance(server)
            except nova_views.ViewError as exc:
                problems.append(str(exc))
                continue
            seen[record.uuid] = record  # a server that moved between pages counts once
        self.instance_problems = problems
        return iter(sorted(seen.values(), key=lambda i: i.uuid))

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        body = self._get(self.compute, f"/servers/{uuid}", microversion=self.server_version, allow_404=True)
        server = body.get("server") if isinstance(body, dict) else None
        if not isinstance(server, dict) or nova_views.is_deleted(server):
            return None
        return self._instance(server)

    # --- whole -----------------------------------------------------------------------------------

    def snapshot(self, progress: Progress | None = None) -> snapshot.Snapshot:
        """Everything Nova lists, as a ``novawatch.model/1`` snapshot (``problems`` names what was skipped)."""
        nodes = list(self.list_nodes(progress))
        instances = list(self.list_instances(progress))
        problems = self.problems
        if problems:
            log.warning("%d documents from %s could not be read and were skipped", len(problems), self.label,
                        extra={"problems": problems[:20]})
        return snapshot.build(nodes, instances)

    @property
    def problems(self) -> list[str]:
        """What the last listings skipped, each named."""
        return self.node_problems + self.instance_problems

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


def _service_host(hyp: Any) -> str | None:
    service = hyp.get("service") if isinstance(hyp, dict) else None
    return service.get("host") if isinstance(service, dict) else None


def _fault(resp: Any) -> str:
    """Nova's fault message (``{"forbidden": {"message": ...}}``), or the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip()[:200] or "no body"
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])[:300]
    return str(body)[:200]
