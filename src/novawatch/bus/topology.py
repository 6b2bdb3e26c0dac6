"""Declarations on a RabbitMQ broker shared with OpenStack: never different from what oslo.messaging declares.

RabbitMQ refuses (406 PRECONDITION_FAILED) a declaration whose settings differ from those of an existing
exchange or queue, and the refusal goes to whoever declares *second*. oslo.messaging declares Nova's
control exchange as a ``topic`` exchange, ``durable`` = ``amqp_durable_queues or rabbit_quorum_queue``,
``auto_delete`` = ``amqp_auto_delete``, without arguments, on every connection of every Nova service; so
novawatch looks first (a passive declaration, which needs no permission at all) and declares only what
is missing, with exactly oslo's settings. With the permissions docs/bus.md recommends, novawatch may not
create Nova's exchange either, and waits for a Nova service to declare it.

novawatch's own queues are looked at first too: one that exists is used as it is, whatever its settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from novawatch.bus import amqp
from novawatch.bus.base import BusError

_T = TypeVar("_T")

ACCESS_REFUSED, NOT_FOUND, PRECONDITION_FAILED = 403, 404, 406
NOT_ALLOWED = 530  # connection-level: no access to the virtual host

#: Where the RabbitMQ user and its permissions are documented (named in every permission error).
PERMISSIONS_DOC = "docs/bus.md, 'On Nova's RabbitMQ'"


def permissions_command(user: str, vhost: str) -> str:
    """The ``rabbitmqctl set_permissions`` that gives ``user`` what novawatch needs, and nothing of Nova's."""
    return f"rabbitmqctl set_permissions -p {vhost} {user} '^novawatch-.*' '^novawatch-.*' '^(nova|novawatch-.*)$'"


class Refused(BusError):
    """The broker refused a step; retrying only helps once the cause is gone. ``advice`` says what to change.

    ``key`` names the condition, so that a retry loop logs it once, not once per attempt.
    """

    def __init__(self, step: str, exc: amqp.AMQPError, advice: str) -> None:
        super().__init__(f"{step}: {exc}; {advice}")
        self.step = step
        self.code = getattr(exc, "reply_code", 0)
        self.advice = advice
        self.key = f"{step}:{self.code}"


class ExchangeMissing(Refused):
    """The control exchange does not exist and novawatch may not create it: wait for Nova to declare it."""


@dataclass(frozen=True)
class Exchange:
    """What :meth:`Declarer.control_exchange` found.

    ``durable`` is the exchange's durability when known (novawatch created it, or a declaration with
    novawatch's settings was accepted, or refused as inequivalent); None when the user may not check.
    """

    created: bool
    durable: bool | None


class Declarer:
    """Declarations on one connection, each looking before creating, each failure explained.

    A failed passive declaration closes its channel (that is how AMQP says "not found"), so the channel
    is replaced whenever the broker closed it.
    """

    def __init__(self, connection: amqp.Connection, *, user: str, vhost: str) -> None:
        self.connection = connection
        self.user = user
        self.vhost = vhost
        self._channel: amqp.Channel | None = None

    async def _open(self) -> amqp.Channel:
        if self._channel is None or self._channel.closed is not None:
            self._channel = await self.connection.channel()
        return self._channel

    async def _exists(self, look: Callable[[amqp.Channel], Awaitable[object]]) -> bool:
        channel = await self._open()
        try:
            await look(channel)
        except amqp.ChannelClosed as exc:
            if exc.reply_code == NOT_FOUND:
                return False
            raise
        return True

    async def _step(self, step: str, action: Callable[[amqp.Channel], Awaitable[_T]], needs: str) -> _T:
        """Run one declaration; a refusal becomes :class:`Refused` naming the permission ``needs``."""
        channel = await self._open()
        try:
            return await action(channel)
        except amqp.ChannelClosed as exc:
            if exc.reply_code == ACCESS_REFUSED:
                raise Refused(step, exc, f"user '{self.user}' needs {needs} ({self.grant()}; see "
                                         f"{PERMISSIONS_DOC})") from None
            if exc.reply_code == PRECONDITION_FAILED:
                raise Refused(step, exc, "it exists with other settings; retrying") from None
            raise

    def grant(self) -> str:
        return permissions_command(self.user, self.vhost)

    async def control_exchange(self, name: str, *, durable: bool, auto_delete: bool, check: bool = True) -> Exchange:
        """Make sure Nova's exchange exists without ever declaring it differently from oslo.messaging.

        Present: it is used as it is; when ``check``, a declaration with novawatch's settings then only
        checks them (accepted: they match; 406: they differ, and only this check's channel is closed;
        403: the user may not check, which is fine: RabbitMQ logs the refusal, so callers stop checking).
        Missing: created with oslo's settings (``durable``, ``auto_delete``, no arguments) when the user
        may; otherwise :class:`ExchangeMissing`.
        """
        if await self._exists(lambda ch: ch.exchange_declare(name, passive=True)):
            if not check:
                return Exchange(created=False, durable=None)
            channel = await self._open()
            try:
                await channel.exchange_declare(name, "topic", durable=durable, auto_delete=auto_delete)
            except amqp.ChannelClosed as exc:
                if exc.reply_code == PRECONDITION_FAILED:
                    return Exchange(created=False, durable=not durable if "'durable'" in str(exc) else durable)
                if exc.reply_code == ACCESS_REFUSED:
                    return Exchange(created=False, durable=None)
                raise
            return Exchange(created=False, durable=durable)
        channel = await self._open()
        try:
            await channel.exchange_declare(name, "topic", durable=durable, auto_delete=auto_delete)
        except amqp.ChannelClosed as exc:
            if exc.reply_code == ACCESS_REFUSED:
                raise ExchangeMissing(
                    f"exchange '{name}'", exc,
                    f"it does not exist yet and user '{self.user}' may not create it: waiting for a Nova service "
                    "to declare it (each does when it starts)") from None
            if exc.reply_code == PRECONDITION_FAILED:  # declared by someone else meanwhile: use theirs
                return await self.control_exchange(name, durable=durable, auto_delete=auto_delete, check=check)
            raise
        return Exchange(created=True, durable=durable)

    async def queue(
        self, name: str, *, durable: bool, auto_delete: bool = False, arguments: dict[str, Any] | None = None
    ) -> bool:
        """Make sure queue ``name`` exists; True when it had to be created.

        One that exists is used as it is, except that a queue asked for with ``arguments`` (a quorum
        queue, a stream) is declared once more as a check: one of another type (or other retention) is
        refused with what to do, rather than read as something it is not.
        """
        if await self._exists(lambda ch: ch.queue_declare(name, passive=True)):
            if arguments:
                await self._check_queue(name, durable, auto_delete, arguments)
            return False
        await self._step(f"declare queue '{name}'",
                         lambda ch: ch.queue_declare(name, durable=durable, auto_delete=auto_delete,
                                                     arguments=arguments),
                         f"configure permission on '{name}'")
        return True

    async def _check_queue(self, name: str, durable: bool, auto_delete: bool, arguments: dict[str, Any]) -> None:
        channel = await self._open()
        try:
            await channel.queue_declare(name, durable=durable, auto_delete=auto_delete, arguments=arguments)
        except amqp.ChannelClosed as exc:
            if exc.reply_code == PRECONDITION_FAILED:
                kind = arguments.get("x-queue-type", "classic")
                raise Refused(
                    f"queue '{name}'", exc,
                    f"it exists with other settings than a {kind} queue with these arguments ({exc}): delete it "
                    f"(rabbitmqctl delete_queue {name}; what it holds goes with it) or set [bus] queue to another "
                    "name; a stream's retention can be changed with a policy instead") from None
            if exc.reply_code != ACCESS_REFUSED:  # 403: the user may not check; the queue is used as it is
                raise

    async def bind(self, queue: str, exchange: str, keys: Iterable[str]) -> None:
        """Bind ``queue`` to ``exchange`` with each routing key (binding again is harmless)."""
        needs = f"read permission on exchange '{exchange}' and write permission on queue '{queue}'"
        step = f"bind queue '{queue}' to exchange '{exchange}'"
        for key in keys:
            await self._step(step, _binding(queue, exchange, key), needs)

    async def dead_letter(self, name: str, *, replicated: bool = False) -> None:
        """A durable queue ``name`` behind a fanout exchange of the same name, both novawatch's own.

        Dead letters go through an exchange of novawatch's rather than the default one: publishing to the
        default exchange needs write permission on ``amq.default``, which would let the user put a
        message in any queue, Nova's RPC queues included. ``replicated``: a quorum queue, so that the
        loss of a cluster node (the home of a classic queue) does not take it away.
        """
        if not await self._exists(lambda ch: ch.exchange_declare(name, passive=True)):
            await self._step(f"declare exchange '{name}'",
                             lambda ch: ch.exchange_declare(name, "fanout", durable=True, auto_delete=False),
                             f"configure permission on '{name}'")
        await self.queue(name, durable=True, arguments={"x-queue-type": "quorum"} if replicated else None)
        await self.bind(name, name, [""])

    async def consume(
        self, channel: amqp.Channel, queue: str, callback: Callable[[amqp.Message], None],
        arguments: dict[str, Any] | None = None,
    ) -> None:
        """``basic.consume`` on ``channel`` (``arguments``: the consumer's), a refusal explained."""
        try:
            await channel.basic_consume(queue, callback, arguments)
        except amqp.ChannelClosed as exc:
            if exc.reply_code == ACCESS_REFUSED:
                raise Refused(f"consume queue '{queue}'", exc,
                              f"user '{self.user}' needs read permission on '{queue}' ({self.grant()})") from None
            raise


def _binding(queue: str, exchange: str, key: str) -> Callable[[amqp.Channel], Awaitable[None]]:
    return lambda channel: channel.queue_bind(queue, exchange, key)


def explain(exc: BaseException, *, user: str, vhost: str, where: str) -> tuple[str, str]:
    """(key, one line for the log and the health endpoint) for why connecting or declaring failed."""
    if isinstance(exc, Refused):
        return exc.key, str(exc)
    if isinstance(exc, amqp.ConnectionClosed):
        if exc.reply_code == ACCESS_REFUSED:
            return ("login", f"{where} refused user '{user}' ({exc}): check the user and password of the bus "
                             "URL ([bus] password, ?password_file=)")
        if exc.reply_code == NOT_ALLOWED:
            return ("vhost", f"{where}: user '{user}' has no access to virtual host '{vhost}' ({exc}): "
                             f"{permissions_command(user, vhost)}")
        if exc.reply_code:
            return f"closed:{exc.reply_code}", f"{where} closed the connection ({exc})"
    if isinstance(exc, amqp.ChannelClosed) and exc.reply_code == ACCESS_REFUSED:
        return ("refused", f"{where} refused user '{user}' an operation ({exc}): {permissions_command(user, vhost)} "
                           f"gives the model service what it needs (see {PERMISSIONS_DOC})")
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return (f"unreachable:{type(exc).__name__}",
                f"{where} is unreachable or dropped the connection ({type(exc).__name__}: {exc}): is RabbitMQ "
                "running there, and are the bus URL's host and port right?")
    return f"other:{type(exc).__name__}", f"{where}: {type(exc).__name__}: {exc}"
