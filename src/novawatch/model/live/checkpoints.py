"""The model service's checkpoints: load one at start (or say why not), write one periodically and on shutdown.

The file format is :mod:`novawatch.model.checkpoint`. Other parts of the service keep their own state in a
checkpoint through named sections (:meth:`Checkpoints.section`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from novawatch.logs import QuietLog
from novawatch.model import checkpoint as fmt
from novawatch.model.checkpoint import CheckpointError, Header
from novawatch.model.live.runtime import ModelRuntime

log = logging.getLogger("novawatch.model.live.checkpoints")

#: What a checkpoint was written for: the bus (masked URL), the queue and the source; another means another
#: cloud or bus, whose model this one is not.
Identity = Mapping[str, "str | None"]


class Checkpoints:
    """Loads and writes the checkpoint of one runtime at ``path``."""

    def __init__(self, runtime: ModelRuntime, path: str | Path, *, identity: Identity, interval: float = 60.0,
                 max_age: float = 86400.0, clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.path = Path(path)
        self.identity = dict(identity)
        self.interval = interval
        self.max_age = max_age
        self.clock = clock
        #: The named sections, shared with ``runtime.state`` (:meth:`ModelState.checkpoint_section` adds one too).
        self.sections = runtime.state.checkpoint_sections
        #: The checkpoint the model was restored from, or None (then ``fallback`` says why).
        self.loaded: Header | None = None
        self.load_seconds: float | None = None
        self.fallback: str | None = None
        self.written: Header | None = None  #: the last one written by this process
        self.size: int | None = None
        self.write_seconds: float | None = None
        self.pause_seconds: float | None = None  #: how long the last capture held the event loop
        self.writes = 0
        self.error: str | None = None
        self._trouble = QuietLog(log)
        self._lock = asyncio.Lock()
        runtime.state.checkpoint_status = self.status

    def section(self, name: str, save: Callable[[], Any], load: Callable[[Any], None]) -> None:
        """Keep ``name`` in every checkpoint from now on; ``load`` is called at start when a checkpoint has it."""
        self.runtime.state.checkpoint_section(name, save, load)

    # --- load -------------------------------------------------------------------------------------

    async def load(self) -> Header | None:
        """Restore the runtime's (empty) model from the checkpoint; None when there is none that can be used
        (``fallback`` says why, the log and the health too: the service bootstraps instead)."""
        started = time.perf_counter()
        with contextlib.suppress(OSError):
            fmt.remove_leftovers(self.path)
        try:
            checkpoint = await asyncio.to_thread(fmt.read, self.path)
        except CheckpointError as exc:
            self._fall_back(exc.kind, str(exc))
            return None
        header = checkpoint.header
        age = self.clock() - header.written_at
        if self.max_age > 0 and age > self.max_age:
            self._fall_back("too old", f"checkpoint {self.path} is {age:.0f}s old, older than the "
                                       f"{self.max_age:.0f}s allowed (model.checkpoint_max_age)")
            return None
        for key, value in self.identity.items():
            theirs = header.identity.get(key)
            if theirs != value:
                self._fall_back("another bus or cloud", f"checkpoint {self.path} was written for {key} "
                                f"{theirs!r}, this service has {value!r}")
                return None
        try:
            self.runtime.restore(checkpoint)
        except CheckpointError as exc:
            self.runtime.clear()
            self._fall_back(exc.kind, f"{self.path}: {exc}")
            return None
        for name, value in checkpoint.sections.items():
            section = self.sections.get(name)
            if section is None:
                continue
            try:
                section.load(value)
            except Exception as exc:  # a part of the service that cannot take its state back starts afresh
                log.warning("checkpoint section %r could not be loaded: %s", name, exc,
                            extra={"section": name, "error": str(exc)})
        self.loaded = header
        self.load_seconds = time.perf_counter() - started
        where = _where(header.kind, header.position)
        log.info("restored the model from checkpoint %s (%d nodes, %d instances, %s, written %.0fs ago) in %.2fs",
                 self.path, header.nodes, header.instances, where, age, self.load_seconds,
                 extra={"checkpoint": str(self.path), "position": header.position, "kind": header.kind})
        return header

    def _fall_back(self, kind: str, message: str) -> None:
        self.fallback = f"{kind}: {message}"
        if kind == "missing":
            log.info("%s: bootstrapping from the source", message, extra={"checkpoint": str(self.path)})
        else:
            log.warning("checkpoint not used, bootstrapping from the source instead: %s", message,
                        extra={"checkpoint": str(self.path), "reason": kind})
        return None

    def resume_gap(self, kind: str, position: int | None) -> str | None:
        """After the subscriber started: why the bus may not hold everything since the checkpoint (a re-list
        against the source then fills the gap), or None when it does. ``kind`` and ``position`` are the
        subscriber's."""
        header = self.loaded
        if header is None:
            return None
        if kind == "stream" and header.kind == "stream" and header.position is not None:
            return None  # read again from just after the checkpoint's offset
        if kind == "embedded" and header.kind == "embedded":
            if position == header.position or (header.position is None and header.final):
                return None  # the group's cursor stands where the checkpoint stopped (or nothing came meanwhile)
            if header.position is not None:
                return (f"the model was restored from a checkpoint at sequence {header.position} but the embedded "
                        f"bus's queue resumes after {position}")
        if header.final and kind in ("classic", "quorum") and header.kind == kind:
            return None  # written when it stopped: nothing was acknowledged after it, the queue kept the rest
        return ("the model was restored from a checkpoint written before the service stopped uncleanly (or "
                "that says nothing of where on this bus it stopped): what the bus delivered after it is not in the "
                "model")

    # --- write ------------------------------------------------------------------------------------

    async def write(self, *, final: bool = False) -> None:
        """Capture the model (briefly, on the loop) and write it (in a thread); errors are kept and logged."""
        async with self._lock:
            runtime = self.runtime
            started = time.perf_counter()
            sections: dict[str, Any] = {}
            for name, section in self.sections.items():
                try:
                    sections[name] = section.save()
                except Exception as exc:
                    log.warning("checkpoint section %r could not be saved: %s", name, exc,
                                extra={"section": name, "error": str(exc)})
            captured = fmt.capture(runtime.cluster, runtime.consumer.recent, identity=self.identity,
                                   kind=runtime.kind, position=runtime.position, final=final, sections=sections)
            self.pause_seconds = time.perf_counter() - started
            try:
                self.size = await asyncio.to_thread(fmt.write, self.path, captured)
            except OSError as exc:
                self._failed(f"cannot write checkpoint {self.path}: {exc.strerror or exc}",
                             "check the directory and the disk space")
                return
            except Exception as exc:  # state that cannot be encoded (a section's?): the service goes on
                self._failed(f"cannot encode checkpoint {self.path}: {type(exc).__name__}: {exc}",
                             "report this as a bug; the service goes on without checkpoints")
                return
            self.write_seconds = time.perf_counter() - started
            self.written = captured.header
            self.writes += 1
            if self.error is not None:
                self._trouble.cleared(f"checkpoint {self.path} written again")
            self.error = None
            log.debug("checkpoint written", extra={"checkpoint": str(self.path), "bytes": self.size,
                                                   "seconds": self.write_seconds, "pause": self.pause_seconds})

    def _failed(self, error: str, advice: str) -> None:
        self.error = error
        self._trouble.problem("write", f"{error} ({advice})", extra={"checkpoint": str(self.path)})

    async def run(self) -> None:
        """Write a checkpoint every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.write()

    # --- status -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What health, ``GET /v1/bus`` and ``model status`` show of the checkpoints."""
        now = self.clock()
        header = self.written
        on_disk: dict[str, Any] | None = None
        if header is not None:
            on_disk = {"age_seconds": now - header.written_at, "kind": header.kind, "position": header.position,
                       "bytes": self.size, "final": header.final, "instances": header.instances,
                       "nodes": header.nodes}
        loaded = self.loaded
        return {
            "path": str(self.path),
            "interval_seconds": self.interval,
            "written": on_disk,
            "writes": self.writes,
            "write_seconds": self.write_seconds,
            "pause_seconds": self.pause_seconds,
            "error": self.error,
            "restored": None if loaded is None else {
                "kind": loaded.kind, "position": loaded.position, "age_seconds": now - loaded.written_at,
                "seconds": self.load_seconds, "instances": loaded.instances, "nodes": loaded.nodes},
            "fallback": self.fallback,
        }


def _where(kind: str | None, position: int | None) -> str:
    if position is None:
        return "no bus position"
    return f"offset {position}" if kind == "stream" else f"position {position}"

