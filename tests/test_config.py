"""Configuration: file < environment < flags, typed values, clear errors, secrets masked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest

from novawatch.config import MASK, Config, ConfigError, load, masked, parse_overrides, to_toml
from novawatch.redact import mask


def test_defaults_bind_to_loopback() -> None:
    config = load(env={"HOME": "/nonexistent"})
    assert config.model.host == "127.0.0.1" and config.compute.host == "127.0.0.1"
    assert config.model.port == 9322 and config.compute.port == 8774
    assert config.bus.url == ""


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "nw.toml"
    path.write_text('[model]\nport = 1000\naudit_interval = 5.5\nhost = "10.0.0.1"\n[bus]\nurl = "memory://x"\n')
    env = {"NOVAWATCH_MODEL_PORT": "2000", "HOME": str(tmp_path)}
    config = load(path, env=env)
    assert config.model.port == 2000  # environment beats the file
    assert config.model.audit_interval == 5.5 and config.model.host == "10.0.0.1" and config.bus.url == "memory://x"
    config = load(path, env=env, overrides={"model": {"port": "3000", "host": None}})
    assert config.model.port == 3000  # flags beat the environment; None means "flag not given"
    assert config.model.host == "10.0.0.1"
    # $NOVAWATCH_CONFIG names the file when no --config is given.
    assert load(env={"NOVAWATCH_CONFIG": str(path), "HOME": str(tmp_path)}).model.port == 1000


def test_default_file_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg" / "novawatch"
    xdg.mkdir(parents=True)
    (xdg / "config.toml").write_text("[demo]\nhosts = 3\n")
    monkeypatch.chdir(tmp_path)
    assert load(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).demo.hosts == 3
    (tmp_path / "novawatch.toml").write_text("[demo]\nhosts = 4\n")  # ./novawatch.toml comes first
    assert load(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).demo.hosts == 4


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"NOVAWATCH_MODEL_PORT": "nine"}, "model.port"),
        ({"NOVAWATCH_COMPUTE_PORT": "65536"}, r"compute.port = '65536': Expected `int` <= 65535"),
        ({"NOVAWATCH_MODEL_PORT": "-1"}, r"model.port = '-1': Expected `int` >= 0"),
        ({"NOVAWATCH_DEMO_HOSTS": "0"}, r"demo.hosts = '0': Expected `int` >= 1"),
        ({"NOVAWATCH_DEMO_RATE": "0"}, r"demo.rate = '0': Expected `float` > 0.0"),
        ({"NOVAWATCH_DEMO_INSTANCES": "-1"}, r"demo.instances = '-1': Expected `int` >= 0"),
        ({"NOVAWATCH_COMPUTE_FAILURE_RATE": "1.5"}, r"compute.failure_rate = '1.5': Expected `float` <= 1.0"),
        ({"NOVAWATCH_MODEL_PROT": "1"}, "unknown environment variable NOVAWATCH_MODEL_PROT"),
        ({"NOVAWATCH_DEMO_HOST": "1"}, "known ones: .*NOVAWATCH_DEMO_HOSTS"),
    ],
)
def test_bad_environment_is_explained(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(env={"HOME": "/nonexistent", **env})


def test_other_tools_variables_are_left_alone() -> None:
    env = {"HOME": "/nonexistent", "NOVAWATCH_PYTHON": "python3.12", "NOVAWATCH_NW_INFO_DIR": "/tmp/x",
           "NOVAWATCH_SHARED_DIR": "/work/shared", "NOVAWATCH_MODEL_PORT": "1234"}
    assert load(env=env).model.port == 1234


def test_bad_file_is_explained(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad, env={})
    bad.write_text("[modle]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[modle\]"):
        load(bad, env={})
    bad.write_text("[model]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key model\.prot; keys of"):
        load(bad, env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match=r"SECTION\.KEY=VALUE"):
        parse_overrides(["port=1"])


def test_secrets_are_masked() -> None:
    config = load(env={
        "HOME": "/nonexistent",
        "NOVAWATCH_MODEL_TOKEN": "tok-123",
        "NOVAWATCH_BUS_URL": "rabbit://nova:hunter2@broker:5672/",
        "NOVAWATCH_BUS_PASSWORD": "pw",
        "NOVAWATCH_COMPUTE_DATABASE_URL": "postgresql+psycopg://nw:dbpass@db/nw",
    })
    tables = masked(config)
    assert tables["model"]["token"] == MASK and tables["bus"]["password"] == MASK
    assert tables["bus"]["url"] == f"rabbit://nova:{MASK}@broker:5672/"
    assert tables["compute"]["database_url"] == f"postgresql+psycopg://nw:{MASK}@db/nw"
    assert tables["compute"]["token"] == ""  # unset stays visibly unset
    text = to_toml(tables)
    for secret in ("tok-123", "hunter2", "dbpass", '"pw"'):
        assert secret not in text
    assert mask("embedded:///tmp/x") == "embedded:///tmp/x"


def test_config_show_command(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[model]\ntoken = "abc-secret"\nport = 9999\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NOVAWATCH_BUS_URL": "amqp://u:p4ss@h//"}
    cmd = [sys.executable, "-m", "novawatch.cli", "config", "show", "--config", str(path), "--set", "demo.rate=2"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "port = 9999" in out.stdout and "rate = 2.0" in out.stdout
    assert "abc-secret" not in out.stdout and "p4ss" not in out.stdout and MASK in out.stdout
    js = subprocess.run([*cmd, "--format", "json"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert json.loads(js.stdout)["model"]["token"] == MASK
    bad = subprocess.run([*cmd[:-2], "--set", "model.port=x"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "model.port" in bad.stderr and "Traceback" not in bad.stderr


def test_log_level_and_bind_policy() -> None:
    from novawatch.api.common import BindError, required_token

    with pytest.raises(ConfigError, match="log_level"):
        load(env={"HOME": "/nonexistent", "NOVAWATCH_GENERAL_LOG_LEVEL": "loud"})
    assert required_token("127.0.0.1", "", "model") is None
    assert required_token("::1", "t", "model") == "t"
    assert required_token("0.0.0.0", "t", "model") == "t"
    with pytest.raises(BindError, match="NOVAWATCH_MODEL_TOKEN"):
        required_token("0.0.0.0", "", "model")


def test_docs_show_every_key_with_its_default() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    block = re.search(r"## Configuration.*?```toml\n(.*?)```", text, re.S)
    assert block, "docs/api.md has no TOML block under ## Configuration"
    assert tomllib.loads(block.group(1)) == msgspec.to_builtins(Config())


def test_connection_limits_are_checked() -> None:
    config = load(env={"HOME": "/nonexistent", "NOVAWATCH_MODEL_MAX_CONNECTIONS": "500",
                       "NOVAWATCH_COMPUTE_HEADER_TIMEOUT": "2.5"})
    assert config.model.max_connections == 500 and config.compute.header_timeout == 2.5
    assert config.compute.max_connections == 0 and config.model.idle_timeout == 15.0
    for key, value in (("MODEL_MAX_CONNECTIONS", "-1"), ("COMPUTE_IDLE_TIMEOUT", "-3")):
        with pytest.raises(ConfigError, match=r">= 0"):
            load(env={"HOME": "/nonexistent", f"NOVAWATCH_{key}": value})


def test_model_source_keys_and_which_cloud_is_used() -> None:
    from novawatch.api.sources import cloud_name
    from novawatch.config import load, masked

    config = load(env={"HOME": "/nonexistent", "NOVAWATCH_MODEL_OS_CLOUD": "prod",
                       "NOVAWATCH_MODEL_NODE_REFRESH_INTERVAL": "30",
                       "NOVAWATCH_MODEL_OS_COMPUTE_ENDPOINT_OVERRIDE": "http://u:pw@nova:8774/v2.1"})
    assert (config.model.os_cloud, config.model.node_refresh_interval) == ("prod", 30.0)
    assert "pw" not in str(masked(config))
    assert cloud_name(config.model, {"OS_CLOUD": "other"}) == "prod"  # the setting wins over OS_CLOUD
    plain = load(env={"HOME": "/nonexistent"})
    assert cloud_name(plain.model, {"OS_CLOUD": "other"}) == "other"
    assert cloud_name(plain.model, {}) == ""
    # a compute URL of one's own means that, not a cloud someone left in OS_CLOUD
    plain.model.compute_url = "http://nova:8774/v2.1"
    assert cloud_name(plain.model, {"OS_CLOUD": "other"}) == ""
