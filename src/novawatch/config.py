"""Configuration: a TOML file, then ``NOVAWATCH_<SECTION>_<KEY>`` environment variables, then flags.

Each later layer overrides the earlier ones key by key. Everything is typed (msgspec Structs), so a
wrong value is reported with the layer it came from and the key it was meant for. Secrets (tokens,
passwords, the password inside a URL) are masked by :func:`masked` for ``novawatch config show``, with
:func:`novawatch.redact.mask`, the function everything that shows a URL uses.

The file is the first of: the ``--config`` flag, ``$NOVAWATCH_CONFIG``, ``./novawatch.toml``,
``$XDG_CONFIG_HOME/novawatch/config.toml`` (``~/.config/...``). A missing default file is fine; a
missing file that was asked for by name is an error.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from novawatch.redact import MASK, mask

ENV_PREFIX = "NOVAWATCH_"
ENV_CONFIG_FILE = "NOVAWATCH_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: Keys whose values are never shown; a key matches when its last ``_``-part is one of these.
SECRET_KEYS = frozenset({"token", "password", "secret"})
#: Keys holding URLs whose password part is masked.
URL_KEYS = frozenset({"url", "database_url", "compute_url", "os_compute_endpoint_override"})


class GeneralConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where state lives and how chatty the logs are."""

    data_dir: str = ".novawatch"  # SQLite database, embedded bus queue, dead letters
    log_level: str = "warning"


class BusConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The message bus between the compute service and the model (``novawatch.bus`` picks it by URL)."""

    url: str = ""  # empty: the embedded bus in data_dir; memory://, rabbit://user:pass@host:5672/vhost
    password: str = ""  # overrides the password of a rabbit:// URL, so the URL itself can be shown
    queue: str = "novawatch-model"  # the model service's consumer group (RabbitMQ options go in the URL)
    notification_format: str = "both"  # versioned | unversioned | both


#: A TCP port; 0 lets the system choose a free one.
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
#: The probability that a hypervisor call fails (failure injection).
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class ServiceConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An HTTP service: where it listens, the bearer token write endpoints need off loopback, limits."""

    host: str = "127.0.0.1"
    port: Port = 0
    token: str = ""
    max_body_bytes: int = 1024 * 1024
    max_connections: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0: from the descriptor limit (3/4 of `ulimit -n`)
    header_timeout: Annotated[float, msgspec.Meta(ge=0)] = 10.0  # a request's first byte to its end; 0: none
    idle_timeout: Annotated[float, msgspec.Meta(ge=0)] = 15.0  # seconds a connection may wait for a request


class ComputeConfig(ServiceConfig, kw_only=True, forbid_unknown_fields=True):
    """The compute service: its database and the actions' failure rate."""

    port: Port = 8774
    database_url: str = ""  # empty: SQLite in data_dir; postgresql+psycopg://user:pass@host/db
    failure_rate: Probability = 0.0
    seed: int = 1
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1  # processes serving the port; > 1 needs PostgreSQL


class ModelConfig(ServiceConfig, kw_only=True, forbid_unknown_fields=True):
    """The data model service: where it bootstraps and audits from, and how often."""

    port: Port = 9322
    compute_url: str = "http://127.0.0.1:8774"  # novawatch's compute service or a Nova endpoint; empty: none
    compute_token: str = ""  # novawatch's bearer token, or X-Auth-Token for a Nova endpoint without Keystone
    os_cloud: str = ""  # a clouds.yaml entry (Keystone); empty: OS_CLOUD, unless compute_url was changed
    os_region_name: str = ""  # overrides of the cloud entry, as the openstack CLI's --os-region-name ...
    os_interface: str = ""  # public | internal | admin
    os_compute_endpoint_override: str = ""  # the compute endpoint, instead of the catalog's
    node_refresh_interval: float = 300.0  # seconds between re-reading nodes' capacity from the source; 0: never
    audit_interval: float = 60.0  # seconds; 0 disables the periodic audit
    recent: int = 200  # applied notifications kept for /v1/notifications and the dashboard
    watch_buffer: int = 10000  # changes kept for resuming the watch stream
    checkpoint: str = ""  # a file to keep checkpoints in (restart from it instead of bootstrapping); empty: none
    checkpoint_interval: float = 60.0  # seconds between checkpoints (one is also written on shutdown)
    checkpoint_max_age: float = 86400.0  # seconds; an older checkpoint is not used (0: any age)
    series_window: float = 604800.0  # seconds of overview series kept (GET /v1/series)
    series_resolution: float = 10.0  # seconds between samples (the finest step, kept for the last hour)
    history_per_instance: int = 50  # changes kept per instance (GET /v1/instances/{uuid}/history)
    history_total: int = 100000  # changes kept in all
    host_series_points: int = 120  # points kept per node (GET /v1/nodes/{host}/series)
    host_series_step: float = 60.0  # seconds: at most one point per node per step


class DemoConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The seeded workload of ``novawatch demo``."""

    hosts: Annotated[int, msgspec.Meta(ge=1)] = 12
    instances: Annotated[int, msgspec.Meta(ge=0)] = 40
    seed: int = 42
    rate: Annotated[float, msgspec.Meta(gt=0.0)] = 4.0  # actions per second
    failure_rate: Probability = 0.02


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole effective configuration."""

    general: GeneralConfig = msgspec.field(default_factory=GeneralConfig)
    bus: BusConfig = msgspec.field(default_factory=BusConfig)
    compute: ComputeConfig = msgspec.field(default_factory=ComputeConfig)
    model: ModelConfig = msgspec.field(default_factory=ModelConfig)
    demo: DemoConfig = msgspec.field(default_factory=DemoConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.general.data_dir).expanduser()


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file/variable/flag and the key."""


SECTIONS: dict[str, type[msgspec.Struct]] = {
    f.name: f.type for f in msgspec.structs.fields(Config)
}


def _keys(section: str) -> list[str]:
    return [f.name for f in msgspec.structs.fields(SECTIONS[section])]


def default_paths(env: Mapping[str, str]) -> list[Path]:
    """Files looked at, in order, when no file was named."""
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")) / ".config")
    return [Path("novawatch.toml"), Path(xdg).expanduser() / "novawatch" / "config.toml"]


def read_file(path: Path) -> dict[str, Any]:
    """The raw tables of a TOML file."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; fix the path or drop --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def from_env(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``NOVAWATCH_<SECTION>_<KEY>`` variables as raw tables.

    Variables whose second word is not a section belong to other tools (``NOVAWATCH_PYTHON`` of
    ``./run``, ``NOVAWATCH_NW_INFO_DIR`` of a hook) and are left alone; an unknown key in a known
    section is an error, so that a typo does not silently leave a setting at its default.
    """
    out: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS:
            continue
        if key not in _keys(section):
            known = ", ".join(f"{ENV_PREFIX}{s.upper()}_{k.upper()}" for s in SECTIONS for k in _keys(s))
            raise ConfigError(f"unknown environment variable {name}; known ones: {known}")
        out.setdefault(section, {})[key] = value
    return out


def parse_overrides(items: list[str]) -> dict[str, dict[str, str]]:
    """``--set section.key=value`` flags as raw tables."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        dotted, eq, value = item.partition("=")
        section, dot, key = dotted.strip().partition(".")
        if not eq or not dot:
            raise ConfigError(f"--set {item!r}: write it as SECTION.KEY=VALUE, for example model.port=9400")
        out.setdefault(section, {})[key] = value
    return out


def _merge(base: dict[str, dict[str, Any]], layer: Mapping[str, Any], where: str) -> None:
    for section, table in layer.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{section}]; sections are {', '.join(SECTIONS)}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [{section}] must be a table of keys")
        for key, value in table.items():
            if key not in _keys(section):
                raise ConfigError(
                    f"{where}: unknown key {section}.{key}; keys of [{section}] are {', '.join(_keys(section))}"
                )
            try:
                # Strings from the environment and from flags are converted (strict=False: "8080" -> 8080).
                field = next(f for f in msgspec.structs.fields(SECTIONS[section]) if f.name == key)
                converted = msgspec.convert(value, field.type, strict=False)
            except msgspec.ValidationError as exc:
                shown = MASK if is_secret(key) else mask(value) if isinstance(value, str) else value
                raise ConfigError(f"{where}: {section}.{key} = {shown!r}: {exc}") from None
            base.setdefault(section, {})[key] = converted


def load(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """The effective configuration: defaults < TOML file < environment < ``overrides`` (flags)."""
    env = os.environ if env is None else env
    merged: dict[str, dict[str, Any]] = {}
    named = str(path) if path else env.get(ENV_CONFIG_FILE)
    if named:
        _merge(merged, read_file(Path(named).expanduser()), str(named))
    else:
        for candidate in default_paths(env):
            if candidate.is_file():
                _merge(merged, read_file(candidate), str(candidate))
                break
    _merge(merged, from_env(env), "environment")
    if overrides:
        _merge(merged, {s: {k: v for k, v in t.items() if v is not None} for s, t in overrides.items()}, "flags")
    try:
        config = msgspec.convert(merged, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"configuration: {exc}") from None
    if config.general.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"general.log_level = {config.general.log_level!r}: use one of {', '.join(LOG_LEVELS)}")
    return config


def is_secret(key: str) -> bool:
    return key.rsplit("_", 1)[-1] in SECRET_KEYS


def masked(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as plain tables, secrets masked (empty secrets stay empty: "not set" is useful)."""
    out: dict[str, dict[str, Any]] = msgspec.to_builtins(config)
    for table in out.values():
        for key, value in table.items():
            if is_secret(key) and value:
                table[key] = MASK
            elif key in URL_KEYS and isinstance(value, str):
                table[key] = mask(value)
    return out


def to_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """Render plain tables as TOML (the types config uses: str, int, float, bool)."""
    lines: list[str] = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return msgspec.json.encode(str(value)).decode()  # a JSON string is a valid TOML basic string
