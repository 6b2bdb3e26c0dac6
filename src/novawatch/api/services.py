"""Assembling the model service from configuration: bus subscriber, source, runtime, app.

The order matters: subscribe first (so the bus keeps what is published from then on), then list the
source (bootstrap), then apply the stream. Notifications published while listing are applied after
the list; the model's ordering rules make applying them twice harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from novawatch.api.common import required_token
from novawatch.api.model_app import create_model_app
from novawatch.api.sources import ModelSource, open_model_source
from novawatch.bus.factory import open_subscriber
from novawatch.bus.url import default_url, parse_url, with_password
from novawatch.config import Config
from novawatch.model.live.checkpoints import Checkpoints
from novawatch.model.live.lookups import SourceWorker
from novawatch.model.live.runtime import ModelRuntime
from novawatch.model.live.state import Retention
from novawatch.redact import mask
from novawatch.sources.errors import SourceError

log = logging.getLogger("novawatch.api.services")

RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 10.0
#: Credentials and roles do not fix themselves: ask far less often (Keystone may lock a user out after
#: repeated failed logins).
MAX_RETRY_SECONDS_REFUSED = 300.0


def bus_url(config: Config) -> str:
    """The configured bus URL, or the embedded bus in the data directory; ``bus.password`` filled in."""
    url = config.bus.url or default_url(config.data_path)
    return with_password(url, config.bus.password) if config.bus.password else url


#: ``progress(description, done, total)``: how far a long step (the bootstrap) has come.
Progress = Callable[[str, int, "int | None"], None]


def model_service(
    config: Config, *, bus: str | None = None, announce: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> tuple[FastAPI, ModelRuntime]:
    """The model service app and its runtime; the lifespan runs the consumer and the audits.

    ``announce`` receives one line when the model has bootstrapped (the command line prints it);
    ``progress`` the bootstrap's steps (the command line draws a bar).
    """
    mc = config.model
    token = required_token(mc.host, mc.token, "model")
    url = bus or bus_url(config)
    parse_url(url)  # a wrong URL is an error now, not a consumer that fails for ever
    source = open_model_source(mc)  # SourceError for a cloud entry that cannot be used
    retention = Retention(series_window=mc.series_window, series_resolution=mc.series_resolution,
                          history_per_instance=mc.history_per_instance, history_total=mc.history_total,
                          host_series_points=mc.host_series_points, host_series_step=mc.host_series_step)
    runtime = ModelRuntime(source, recent=mc.recent, watch_buffer=mc.watch_buffer, retention=retention)
    runtime.state.bus = mask(url)
    runtime.state.source = source.label if source is not None else None
    checkpoints: Checkpoints | None = None
    if mc.checkpoint:
        identity = {"bus": mask(url), "queue": config.bus.queue, "source": runtime.state.source}
        checkpoints = Checkpoints(runtime, Path(mc.checkpoint).expanduser(), identity=identity,
                                  interval=mc.checkpoint_interval, max_age=mc.checkpoint_max_age)
        runtime.state.keep_in_checkpoints()

    async def run(ready: asyncio.Event) -> None:
        delay = RETRY_SECONDS
        restored = None
        if checkpoints is not None:
            restored = await checkpoints.load()
            if restored is not None and announce is not None:
                announce(f"restored from checkpoint {mc.checkpoint}: {restored.nodes} nodes, {restored.instances} "
                         f"instances in {checkpoints.load_seconds or 0:.1f}s")
        bootstrapped = restored is not None
        first = True
        while True:
            subscriber = open_subscriber(url, group=config.bus.queue)
            runtime.follow(subscriber, source.snapshot if source is not None else None)  # re-list after gaps
            runtime.state.bus_backlog = subscriber.backlog
            if first and restored is not None:
                subscriber.resumed = True  # judged as a reconnection: a queue lost meanwhile is a gap (re-listed)
            if runtime.kind == "stream" and runtime.position is not None:
                # just after the last offset applied: the checkpoint's, or the previous subscriber's
                subscriber.resume_after(runtime.position)
            try:
                await subscriber.start()
                if first and checkpoints is not None and restored is not None:
                    gap = checkpoints.resume_gap(subscriber.kind, subscriber.position)
                    if gap is not None:
                        runtime.gap(gap)
                first = False
                if source is not None and not bootstrapped:
                    await _bootstrap(runtime, source, announce, progress)
                    bootstrapped = True
                ready.set()
                runtime.state.consumer_error = None
                delay = RETRY_SECONDS
                await runtime.consume(subscriber)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                runtime.state.consumer_error = mask(f"{type(exc).__name__}: {exc}")
                log.warning("model consumer failed, retrying in %.0fs: %s", delay, runtime.state.consumer_error)
                await asyncio.sleep(delay)
                delay = min(MAX_RETRY_SECONDS, delay * 2)
            finally:
                with contextlib.suppress(Exception):
                    await subscriber.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ready = asyncio.Event()
        tasks = [asyncio.create_task(run(ready), name="novawatch-model-consumer"),
                 asyncio.create_task(runtime.sample_forever(), name="novawatch-model-series")]
        if source is not None:
            worker = SourceWorker(runtime, source, refresh_interval=mc.node_refresh_interval)
            tasks.append(asyncio.create_task(_after(ready, worker.run()), name="novawatch-model-lookups"))
        if source is not None and mc.audit_interval > 0:
            tasks.append(asyncio.create_task(runtime.audit_forever(source.snapshot, mc.audit_interval),
                                             name="novawatch-model-audit"))
        if checkpoints is not None and mc.checkpoint_interval > 0:
            tasks.append(asyncio.create_task(_after(ready, checkpoints.run()), name="novawatch-model-checkpoints"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            if checkpoints is not None and ready.is_set():
                # the consumer has stopped: this checkpoint covers everything applied
                await checkpoints.write(final=True)
                if checkpoints.error is None and announce is not None:
                    announce(f"wrote checkpoint {mc.checkpoint} ({checkpoints.size} bytes)")
            runtime.state.feed.close()
            if source is not None:
                source.close()

    async def audit() -> int:
        if source is None:
            return 0
        return await runtime.audit_once(source.snapshot)

    app = create_model_app(runtime.state, token=token, max_body_bytes=mc.max_body_bytes,
                           audit=audit if source is not None else None, lifespan=lifespan)
    return app, runtime


async def _after(ready: asyncio.Event, job: Coroutine[Any, Any, None]) -> None:
    """Run ``job`` once the model has bootstrapped (lookups before it would race the listing)."""
    try:
        await ready.wait()
    except BaseException:
        job.close()
        raise
    await job


async def _bootstrap(runtime: ModelRuntime, source: ModelSource, announce: Callable[[str], None] | None,
                     progress: Progress | None = None) -> None:
    """List the source, retrying until it answers (the compute service may start after the model).

    ``progress`` hears of the listing (items counted as pages arrive) and of loading the model. Each
    distinct failure is logged once and shown by health (``consumer: waiting for the source: ...``).
    """
    started = time.perf_counter()
    delay = RETRY_SECONDS
    last_error = None
    if progress is not None:
        progress(f"bootstrap: listing {source.label}", 0, None)
    while True:
        try:
            async with runtime.source_lock:
                snapshot = await asyncio.to_thread(source.snapshot, progress)
            break
        except SourceError as exc:
            message = str(exc)
            runtime.state.consumer_error = f"waiting for the source: {message}"
            if message != last_error:
                log.warning("bootstrap: %s (retrying)", message, extra={"kind": exc.kind})
                last_error = message
            if progress is not None:
                progress(f"bootstrap: waiting for {source.label}", 0, None)
            await asyncio.sleep(delay)
            limit = MAX_RETRY_SECONDS_REFUSED if exc.kind in ("auth", "forbidden", "config") else MAX_RETRY_SECONDS
            delay = min(limit, delay * 2)
    runtime.state.consumer_error = None
    runtime.state.source = source.label
    runtime.state.source_problems = list(getattr(source, "problems", []) or [])
    runtime.state.source_warnings = list(getattr(source, "warnings", []) or [])
    for warning in runtime.state.source_warnings:
        log.warning("bootstrap: %s", warning)
    total = len(snapshot.nodes) + len(snapshot.instances)
    if progress is not None:
        progress(f"bootstrap: loading {len(snapshot.nodes)} nodes, {len(snapshot.instances)} instances", 0, total)
    runtime.load(snapshot)
    if progress is not None:
        progress("bootstrap: done", total, total)
    line = (f"bootstrapped from {source.label}: {len(snapshot.nodes)} nodes, {len(snapshot.instances)} instances "
            f"in {time.perf_counter() - started:.1f}s")
    log.info(line)
    if announce is not None:
        announce(line)


def database_url(config: Config) -> str:
    """The configured compute database, or SQLite in the data directory."""
    if config.compute.database_url:
        return config.compute.database_url
    config.data_path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(config.data_path / 'compute.sqlite3').resolve()}"


def seed_cloud(service: Any, hosts: int) -> None:
    """Default flavors when there are none, and ``hosts`` hosts when there are no services yet."""
    from novawatch.simulate import FLAVORS, NODE_SIZES

    if not service.flavors:
        for name, vcpus, memory, root, eph, swap in FLAVORS:
            service.create_flavor(name, vcpus=vcpus, memory_mb=memory, root_gb=root, ephemeral_gb=eph, swap=swap)
    if not service.services:
        for n in range(1, hosts + 1):
            vcpus, memory, disk = NODE_SIZES[n % len(NODE_SIZES)]
            service.create_service(f"host-{n:04d}", vcpus=vcpus, memory_mb=memory, local_gb=disk)
    service.commit()


def compute_service(
    config: Config,
    *,
    bus: str | None = None,
    service: Any = None,
    hosts: int = 0,
    background: Callable[[Any], Coroutine[Any, Any, None]] | None = None,
    worker: int | None = None,
) -> tuple[FastAPI, Any]:
    """The compute service app and the compute service behind it (opened here unless ``service`` is given).

    ``background(service)`` runs on the app's loop for the app's lifetime (the demo's workload): the loop
    serialises it with the REST actions. ``worker``: this process is worker number ``worker`` of several
    on one PostgreSQL database (``compute serve --workers N``): writes take the workers' lock.
    """
    from novawatch.bus import open_publisher
    from novawatch.compute.failures import FailureInjector
    from novawatch.compute.outbox import Outbox
    from novawatch.compute.service import open_service
    from novawatch.notifications import Notifier

    cc = config.compute
    token = required_token(cc.host, cc.token, "compute")
    url = bus or bus_url(config)
    publisher = open_publisher(url)
    # Notifications reach the bus through the database's outbox: only what was committed is published.
    if service is None:
        notifier = Notifier([], notification_format=config.bus.notification_format)
        seed = cc.seed if worker is None else cc.seed * 1000 + worker  # workers do not fail in lockstep
        service = open_service(database_url(config), notifier, publisher=publisher,
                               failures=FailureInjector(cc.failure_rate, seed=seed), shared=worker is not None)
        if service.shared is not None:
            with service.shared.locked():
                service.sync()
                seed_cloud(service, hosts)  # the first worker seeds; the others find the cloud there
        else:
            seed_cloud(service, hosts)
    else:
        service.commit()
        service.attach_outbox(Outbox(service.repo.engine, publisher).start())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        if background is not None:
            task = asyncio.create_task(background(service), name="novawatch-workload")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception):
                service.commit()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(service.outbox.close, 10)
            publisher.close()

    from novawatch.api.compute_app import create_compute_app
    from novawatch.api.nova import mount_nova

    app = create_compute_app(service, token=token, max_body_bytes=cc.max_body_bytes, lifespan=lifespan)
    # The Nova-compatible API (openstacksdk, the openstack CLI) is served beside novawatch's own.
    mount_nova(app, service, token=token, max_body_bytes=cc.max_body_bytes)
    if getattr(service, "shared", None) is not None:
        from novawatch.api.shared_writes import SharedWrites

        app.add_middleware(SharedWrites, service=service, max_body_bytes=cc.max_body_bytes)  # outermost: Nova too
    return app, service
