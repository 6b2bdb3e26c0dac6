"""A hook for ``update_instance_cache_with_nw_info`` that writes each instance's network info to a file.

Register it in a distribution's entry points::

    [project.entry-points."novawatch.hooks"]
    update_instance_cache_with_nw_info = "novawatch.contrib.nw_info_file:NetworkInfoFile"

Files go to ``$NOVAWATCH_NW_INFO_DIR`` (default ``./nw-info``), one ``<instance uuid>.json`` each,
replaced atomically so a script watching the folder never reads half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class NetworkInfoFile:
    """Writes ``{"instance": uuid, "host": host, "network_info": [...]}`` after every update."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory or os.environ.get("NOVAWATCH_NW_INFO_DIR", "nw-info"))

    def post(self, rv: Any, instance: Any, network_info: Any, *args: Any, **kwargs: Any) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        uuid = str(getattr(instance, "uuid", instance))
        doc = {"instance": uuid, "host": getattr(instance, "host", None), "network_info": _plain(network_info)}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True, default=str)
        os.replace(tmp, self.directory / f"{uuid}.json")


def _plain(value: Any) -> Any:
    """VIF objects as plain JSON: dicts, lists, or an object's public attributes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__struct_fields__"):
        return {f: _plain(getattr(value, f)) for f in value.__struct_fields__}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value
