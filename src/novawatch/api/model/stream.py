"""``/v1/notifications`` (the most recent notifications consumed) and ``/v1/watch`` (the watch stream:
server-sent events of model changes, resumable from a sequence number)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from novawatch.api.model.base import MAX_LIMIT, respond
from novawatch.model.live.feed import ChangeFeed, Expired, Position, WatchEvent, parse_position
from novawatch.model.live.state import ModelState

HEARTBEAT_SECONDS = 15.0

_json = msgspec.json.Encoder()


class NoteOut(BaseModel):
    seq: int
    event_type: str
    outcome: str
    publisher_id: str | None = None
    message_id: str | None = None
    timestamp: str | None = None
    received_at: str
    instance: str | None = None
    host: str | None = None
    reason: str | None = None


class NotesOut(BaseModel):
    seq: int
    notifications: list[NoteOut]


SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}


def sse_event(change: WatchEvent, incarnation: str) -> bytes:
    """One server-sent event: ``id`` is the position (``SEQ.INCARNATION``), ``event`` the kind, ``data`` the
    change."""
    return b"id: %d.%s\nevent: %s\ndata: %s\n\n" % (change.seq, incarnation.encode(), change.kind.encode(),
                                                     _json.encode(change))


def _reset(feed: ChangeFeed, seq: int, reason: str) -> bytes:
    """The ``reset`` event: re-list, then carry on from ``seq`` (its id, so a reconnection resumes there)."""
    return b"id: %s\nevent: reset\ndata: %s\n\n" % (
        feed.event_id(seq).encode(), _json.encode({"seq": seq, "incarnation": feed.incarnation, "reason": reason}))


async def watch_events(
    state: ModelState, since: Position | None, kinds: set[str] | None, heartbeat: float = HEARTBEAT_SECONDS,
    summary: float | None = None,
) -> AsyncIterator[bytes]:
    """The watch stream: a ``hello`` event with the current seq and this run's incarnation, then changes;
    ``reset`` when resuming is impossible (the client must re-list, then watch from the ``seq`` it carries).
    With ``summary`` (seconds), also a ``summary`` event that often and a ``point`` per new series sample (no
    ids: not resumable)."""
    feed = state.feed
    current = feed.seq
    why = None if since is None else feed.unresumable(since)
    position = current if since is None or why is not None else since.seq
    # hello's id is where this stream goes on from: a client that loses it before any change resumes there.
    hello = {"seq": current, "since": None if since is None else since.seq, "incarnation": feed.incarnation}
    yield b"retry: 2000\nid: %s\nevent: hello\ndata: %s\n\n" % (feed.event_id(position).encode(),
                                                                   _json.encode(hello))
    if why is not None:
        yield _reset(feed, position, why)
    loop = asyncio.get_running_loop()
    ticks = Ticks(state, summary, loop.time()) if summary is not None else None
    wait = heartbeat if summary is None else min(heartbeat, summary)
    if ticks is not None:
        first = ticks.due(loop.time())
        if first:
            yield first
    while True:
        try:
            async for change in feed.follow(position, heartbeat=wait):
                if change is not None:
                    position = change.seq
                    if kinds is None or change.kind in kinds:
                        yield sse_event(change, feed.incarnation)
                if ticks is not None:
                    due = ticks.due(loop.time())
                    if due:
                        yield due
                        continue
                if change is None:
                    yield b": keep-alive\n\n"
            return
        except Expired as exc:
            yield _reset(feed, exc.current, str(exc))
            position = exc.current


class Ticks:
    """One reader's summary ticks: the summary every ``interval`` seconds and the series points it has not
    had yet."""

    def __init__(self, state: ModelState, interval: float, now: float) -> None:
        self.state = state
        self.interval = interval
        self.next = now  # the first tick goes out at once
        self.samples = state.series.samples

    def due(self, now: float) -> bytes | None:
        if now < self.next:
            return None
        self.next = now + self.interval
        series = self.state.series
        out = [b"event: summary\ndata: %s\n\n" % _json.encode(self.state.summary())]
        fresh = series.samples - self.samples
        self.samples = series.samples
        for t, values in series.latest(fresh):
            point = {"t": t, "values": dict(zip(series.names, values, strict=True))}
            out.append(b"event: point\ndata: %s\n\n" % _json.encode(point))
        return b"".join(out)


def router(state: ModelState) -> APIRouter:
    """The stream's routes over ``state``."""
    routes = APIRouter(tags=["stream"])

    @routes.get("/v1/notifications", response_model=NotesOut)
    async def recent_notifications(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        outcome: Annotated[str | None, Query(pattern="^(applied|ignored|rejected)$")] = None,
    ) -> Response:
        """The most recent notifications the model consumed, newest first."""
        out = []
        for note in reversed(state.recent):
            if outcome is None or note.outcome == outcome:
                out.append(note)
                if len(out) >= limit:
                    break
        return respond({"seq": state.feed.seq, "notifications": out})

    @routes.get("/v1/watch", response_class=StreamingResponse,
             responses=SSE)
    async def watch(
        since: Annotated[str | None, Query(max_length=64, description="resume after this position: a sequence "
                                           "number, or an event's id (SEQ.INCARNATION)")] = None,
        kinds: Annotated[str | None, Query(max_length=100, description="node,instance,notification,status")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
        summary: Annotated[float | None, Query(ge=0.5, le=60, description="also send the summary every this many "
                                                "seconds, and each new series point")] = None,
    ) -> StreamingResponse:
        """Server-sent events of model changes. Resume with ``Last-Event-ID`` or ``?since=``."""
        position = None
        if since is not None:
            position = parse_position(since)
            if position is None:
                raise HTTPException(422, f"since={since!r} is not a position: give a list's seq (a number) or an "
                                         "event's id (SEQ.INCARNATION)")
        # EventSource reconnects to the same URL and adds Last-Event-ID: the header is the newer position.
        if last_event_id:
            position = parse_position(last_event_id)
            if position is None:
                raise HTTPException(400, f"Last-Event-ID {last_event_id[:80]!r} is not a position: send back the "
                                         "id of an event of this stream (SEQ.INCARNATION) or a sequence number")
        wanted = None
        if kinds:
            wanted = {k.strip() for k in kinds.split(",") if k.strip()}
            unknown = wanted - {"node", "instance", "notification", "status"}
            if unknown:
                raise HTTPException(400, f"unknown kinds {sorted(unknown)}; use node, instance, notification, status")
        return StreamingResponse(
            watch_events(state, position, wanted, summary=summary),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return routes
