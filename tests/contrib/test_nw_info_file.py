"""The example hook that writes each instance's network info to a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from novawatch import hooks
from novawatch.contrib.nw_info_file import NetworkInfoFile


def test_writes_one_file_per_instance_and_replaces_it(tmp_path: Path) -> None:
    hooks.unregister_all()
    hooks.register(hooks.NW_INFO_HOOK, NetworkInfoFile(tmp_path))

    @hooks.add_hook(hooks.NW_INFO_HOOK)
    def update_cache(instance: object, network_info: list[dict[str, str]]) -> None:
        return None

    inst = SimpleNamespace(uuid="178b0921-8f85-4257-88b6-2e743b5a975c", host="compute-1")
    update_cache(inst, [{"id": "port-1", "address": "fa:16:3e:4c:2c:30"}])
    update_cache(inst, [{"id": "port-1"}, {"id": "port-2"}])
    hooks.unregister_all()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["178b0921-8f85-4257-88b6-2e743b5a975c.json"]
    doc = json.loads((tmp_path / files[0]).read_text())
    assert doc == {"instance": inst.uuid, "host": "compute-1", "network_info": [{"id": "port-1"}, {"id": "port-2"}]}
