"""What the model service's routers share: JSON responses encoded straight from the records, one page of
a list, the 404 the OpenAPI document shows.

Every router of the model service (``api/model/<resource>.py``) has the same shape as the compute
service's: its schemas beside its routes, and ``router(state: ModelState, ...) -> APIRouter`` whose endpoints
close over what they read. All endpoints are ``async def``: they run on the loop that applies notifications,
never on a worker thread, so a query never sees the store halfway through a change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from fastapi.responses import Response
from pydantic import BaseModel

#: The largest page a list answers.
MAX_LIMIT = 1000

_json = msgspec.json.Encoder()


class ErrorOut(BaseModel):
    error: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such entity"}}


def respond(body: Any) -> Response:
    """``body`` as JSON: msgspec encodes the records directly, without a pydantic round trip on the hot path."""
    return Response(_json.encode(body), media_type="application/json")


def page(seq: int, found: tuple[int, list[Any]], key: str, to_json: Callable[[Any], Any], offset: int,
         limit: int) -> Response:
    """A list response: ``seq`` (read before the query), the total of matches and one page of them."""
    total, rows = found
    return respond({"seq": seq, "total": total, "offset": offset, "limit": limit, key: [to_json(r) for r in rows]})
