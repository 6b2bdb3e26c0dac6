"""Key pairs (``os-keypairs``): create (the service generates the key), import, list, show, delete.

Microversions: ``type`` (``ssh``/``x509``) from 2.2, created with 201 and deleted with 204 from 2.2 (200
and 202 before), ``user_id`` as an admin's parameter from 2.10, ``limit``/``marker`` from 2.35. The
caller is ``X-User-Id`` (``fake`` when absent, as in Nova's samples).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import PROJECT_ID, Body, parse
from novawatch.api.nova.views import paged, primitive_time

#: Nova's ``keypair_name_special_chars``.
KeypairName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[_\- a-zA-Z0-9]+$")]


class KeypairCreate(Body):
    name: KeypairName
    type: Literal["ssh", "x509"] = "ssh"
    public_key: Annotated[str, StringConstraints(max_length=16384)] | None = None
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


def view(row: Any, nova: NovaRequest, *, detail: bool = False, user: bool = False) -> dict[str, Any]:
    """A key pair: name, key and fingerprint; ``type`` from 2.2; ``user_id`` (``user``); the record (``detail``)."""
    body: dict[str, Any] = {"name": row.name, "public_key": row.public_key, "fingerprint": row.fingerprint}
    if nova.at_least("2.2"):
        body["type"] = row.type
    if user or detail:
        body["user_id"] = row.user_id
    if detail:
        body.update({"created_at": primitive_time(row.created_at), "updated_at": primitive_time(row.updated_at),
                     "deleted": False, "deleted_at": None, "id": row.id})
    return body


def whose(nova: NovaRequest, given: str | None = None) -> str:
    """The user whose key pairs a request means: ``user_id`` (an admin's, from 2.10) or the caller."""
    user = given or (nova.query.get("user_id") if nova.at_least("2.10") else None)
    if user is None:
        return nova.user_id
    if not PROJECT_ID.fullmatch(user):
        raise NovaError(400, f"Invalid input for query parameters user_id. Value: {user}.")
    return user


def router(shared: Nova) -> APIRouter:
    """The keypairs routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-keypairs")
    async def list_keypairs(request: Request) -> JSONResponse:
        nova = shared.at(request)
        rows = nova.service.keypairs(whose(nova))
        if nova.at_least("2.35"):
            rows = paged(rows, lambda r: r.name, nova.query.get("marker"), nova.query.get("limit"))
        return JSONResponse({"keypairs": [{"keypair": view(r, nova)} for r in rows]})

    @routes.get("/os-keypairs/{name}")
    async def show_keypair(name: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"keypair": view(nova.service.keypair(whose(nova), name), nova, detail=True)})

    @routes.post("/os-keypairs")
    async def create_keypair(request: Request) -> JSONResponse:
        """Import ``public_key``, or generate a key pair and answer its private key (once: it is not kept)."""
        nova = shared.at(request)
        body = await nova.body("keypair")
        if "type" in body and not nova.at_least("2.2"):
            raise NovaError(400, "Invalid input for field/attribute keypair. Additional properties are not allowed "
                            "('type' was unexpected): key types need microversion 2.2")
        new = parse(KeypairCreate, body, "keypair")
        user = whose(nova, new.user_id if nova.at_least("2.10") else None)
        project = nova.project_id
        row, private_key = nova.run("create key pair", lambda: nova.service.create_keypair(
            user, new.name.strip(), new.type, new.public_key, project_id=project))
        out = view(row, nova, user=True)
        if private_key is not None:
            out["private_key"] = private_key
        return JSONResponse({"keypair": out}, status_code=201 if nova.at_least("2.2") else 200)

    @routes.delete("/os-keypairs/{name}")
    async def delete_keypair(name: str, request: Request) -> Response:
        nova = shared.at(request)
        user, project = whose(nova), nova.project_id
        nova.run("delete key pair", lambda: nova.service.delete_keypair(user, name, project_id=project))
        return Response(status_code=204 if nova.at_least("2.2") else 202)

    return routes
