"""Bus URLs: parsing, transport selection, and passwords that never show."""

from __future__ import annotations

import pytest

from novawatch.bus import BusError, mask_url, open_publisher, open_subscriber, parse_url
from novawatch.bus.embedded import EmbeddedPublisher, EmbeddedSubscriber
from novawatch.bus.memory import MemoryPublisher, MemorySubscriber
from novawatch.bus.rabbit import RabbitConfig


def test_oslo_and_aio_pika_urls_mean_the_default_vhost() -> None:
    oslo = parse_url("rabbit://guest:s3cret@127.0.0.1:5672/")
    pika = parse_url("amqp://guest:s3cret@127.0.0.1:5672//")
    assert oslo.path == pika.path == "/"
    assert oslo.transport == pika.transport == "rabbit"
    assert oslo.hosts[0].host == "127.0.0.1" and oslo.hosts[0].port == 5672
    assert oslo.hosts[0].user == "guest" and oslo.hosts[0].password == "s3cret"


def test_named_vhost_several_hosts_and_options() -> None:
    url = parse_url("rabbit://u:p%40ss@h1:5672,u:p%40ss@h2:5673/nova%2Fprod?exchange=openstack&durable=false")
    assert [(h.host, h.port) for h in url.hosts] == [("h1", 5672), ("h2", 5673)]
    assert url.hosts[0].password == "p@ss"
    assert url.path == "nova/prod"
    config = RabbitConfig.from_url(url, {})
    assert config.exchange == "openstack" and config.durable is False and config.vhost == "nova/prod"


@pytest.mark.parametrize("raw", ["rabbit+ssl://u:p@h/", "amqps://u:p@h/", "rabbit://u:p@h/?ssl=1"])
def test_tls_from_scheme_or_option(raw: str) -> None:
    config = RabbitConfig.from_url(parse_url(raw), {"ssl_verify": "false"})
    assert config.tls and config.hosts == (("h", 5671),)
    context = config.ssl_context()
    assert context is not None and not context.check_hostname


def test_passwords_are_masked_everywhere(tmp_path: object) -> None:
    raw = "rabbit://nova:topsecret@h1:5672,admin:alsosecret@h2/?password=x3&ssl_key_password=k9"
    masked = mask_url(raw)
    for secret in ("topsecret", "alsosecret", "x3", "k9"):
        assert secret not in masked
    assert "nova:***@h1" in masked
    url = parse_url(raw)
    assert "topsecret" not in str(url) and "topsecret" not in repr(url)
    config = RabbitConfig.from_url(url, {})
    assert "topsecret" not in repr(config)


def test_password_from_a_file(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "password"
    secret.write_text("from-file\n")
    config = RabbitConfig.from_url(parse_url("rabbit://nova@h/"), {"password_file": str(secret)})
    assert config.user == "nova" and config.password == "from-file"


def test_transport_selection(tmp_path: pytest.TempPathFactory) -> None:
    assert isinstance(open_publisher("memory://sel"), MemoryPublisher)
    assert isinstance(open_subscriber("memory://sel"), MemorySubscriber)
    publisher = open_publisher(f"embedded://{tmp_path}/bus")
    assert isinstance(publisher, EmbeddedPublisher)
    publisher.close()
    assert isinstance(open_subscriber(f"embedded://{tmp_path}/bus"), EmbeddedSubscriber)


@pytest.mark.parametrize("raw", ["kafka://h", "nonsense", "rabbit://u:p@h:notaport/"])
def test_bad_urls_are_refused_without_showing_the_password(raw: str) -> None:
    with pytest.raises(BusError) as info:
        parse_url(raw)
    assert ":p@" not in str(info.value)
