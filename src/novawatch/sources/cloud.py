"""Connecting to a cloud's Compute API the way the ``openstack`` CLI does: clouds.yaml, Keystone, overrides.

openstacksdk reads the cloud entry (``clouds.yaml`` in the current directory,
``~/.config/openstack/`` or ``/etc/openstack/``, or the file ``OS_CLIENT_CONFIG_FILE`` names, with
``secure.yaml`` beside it), keystoneauth authenticates (password, application credential, token, or
none) and finds the compute endpoint in the catalog. Nothing connects until the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novawatch.sources.errors import SourceError, scrub
from novawatch.sources.nova_api import PAGE_SIZE, NovaApiSource


@dataclass(frozen=True)
class CloudOptions:
    """Which cloud, and the overrides the ``openstack`` CLI takes (``--os-region-name``, ``--os-interface``)."""

    cloud: str
    region_name: str = ""
    interface: str = ""
    compute_endpoint_override: str = ""

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.region_name:
            out["region_name"] = self.region_name
        if self.interface:
            out["interface"] = self.interface
        if self.compute_endpoint_override:
            out["compute_endpoint_override"] = self.compute_endpoint_override
        return out


def _connection(config: Any, **kwargs: Any) -> Any:
    """An openstacksdk connection from an ``OpenStackConfig`` and ``get_one`` arguments; config errors explained."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk
    from openstack.connection import Connection

    name = kwargs.get("cloud")
    what = f"cloud {name!r}" if name else "the compute endpoint"
    try:
        region = config.get_one(**kwargs)
    except sdk.ConfigException as exc:
        files = ", ".join(str(f) for f in getattr(config, "_config_files", [])[:4])
        raise SourceError(f"{what}: {exc} (clouds.yaml looked for in: {files}; set OS_CLIENT_CONFIG_FILE to name "
                          "the file, and check the name under 'clouds:')", "config") from None
    except ks.auth_plugins.MissingRequiredOptions as exc:
        options = ", ".join(o.dest for o in exc.options)
        raise SourceError(f"{what}: the auth section lacks {options}: add it to the cloud entry in clouds.yaml",
                          "config") from None
    except ks.auth_plugins.AuthPluginException as exc:
        raise SourceError(f"{what}: {exc}: check auth_type and the auth section of the cloud entry",
                          "config") from None
    return Connection(config=region)


def open_cloud(options: CloudOptions, *, page_size: int = PAGE_SIZE) -> NovaApiSource:
    """A source over the compute endpoint of a clouds.yaml entry (raises :class:`SourceError` when it is unusable)."""
    from openstack.config import OpenStackConfig

    conn = _connection(OpenStackConfig(), cloud=options.cloud, **options.overrides())
    label = f"cloud {options.cloud!r}" + (f" (region {options.region_name})" if options.region_name else "")
    return _source(conn, label, page_size)


def open_endpoint(url: str, *, token: str | None = None, page_size: int = PAGE_SIZE) -> NovaApiSource:
    """A source over one Nova endpoint (``http://nova:8774/v2.1``) without Keystone.

    With ``token`` every request carries ``X-Auth-Token: token`` (keystoneauth's ``admin_token``; for
    Nova with ``auth_strategy = noauth2`` a token of ``admin:admin`` makes an admin); without, none.
    """
    from openstack.config import OpenStackConfig

    config = OpenStackConfig(load_yaml_config=False, load_envvars=False)
    auth: Mapping[str, Any] = ({"auth_type": "admin_token", "auth": {"token": token, "endpoint": url}} if token
                               else {"auth_type": "none"})
    conn = _connection(config, compute_endpoint_override=url, **auth)
    return _source(conn, f"Nova at {scrub(url)}", page_size)


def _source(conn: Any, label: str, page_size: int) -> NovaApiSource:
    return NovaApiSource(LazyAdapter(conn, "compute"), LazyAdapter(conn, "placement"), label=label,
                         page_size=page_size, on_close=conn.close)


class LazyAdapter:
    """``conn.<service>``, made on each use: openstacksdk discovers versions when the proxy is first made,
    so a cloud that cannot be reached (or has no Placement) fails inside the source's error handling,
    and works once it can be reached."""

    def __init__(self, conn: Any, service: str) -> None:
        self._conn = conn
        self._service = service

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._conn, self._service).get(*args, **kwargs)

    def get_endpoint_data(self) -> Any:
        return getattr(self._conn, self._service).get_endpoint_data()
