"""The volume routes over HTTP: a volume in use answers 409 (the error table's row), nothing is sent."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.api.computeserved import TIMEOUT, served


def test_attaching_a_volume_in_use_answers_409_and_says_what_to_do(tmp_path: Path) -> None:
    with served(tmp_path, f"sqlite:///{tmp_path / 'compute.db'}") as cloud:
        first, second = cloud.boot("first"), cloud.boot("second")
        volume = httpx.post(cloud.url + "/v1/volumes", json={"size": 1}, timeout=TIMEOUT).json()["id"]
        attached = httpx.post(f"{cloud.url}/v1/instances/{first['uuid']}/attach_volume",
                              json={"volume_id": volume}, timeout=TIMEOUT)
        assert attached.status_code == 200 and volume in attached.json()["instance"]["volumes"]
        cloud.published()
        again = httpx.post(f"{cloud.url}/v1/instances/{second['uuid']}/attach_volume",
                           json={"volume_id": volume}, timeout=TIMEOUT)
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert error.startswith("attach volume: ") and "in-use" in error and "detach it first" in error
        assert cloud.published() == []  # refused before anything was sent
        missing = httpx.post(f"{cloud.url}/v1/instances/{second['uuid']}/attach_volume",
                             json={"volume_id": "no-such-volume"}, timeout=TIMEOUT)
        assert missing.status_code == 404 and "POST /v1/volumes" in missing.json()["error"]
