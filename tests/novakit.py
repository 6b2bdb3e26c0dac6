"""Nova's published notification samples, for the notification, object and CLI tests.

The samples under ``shared/reference`` predate Nova 34 in one respect: they say ``ImageMetaPropsPayload``
1.19, while Nova 34's code (and the samples in its own sdist) say 1.20 (``intel-tdx`` joined an enum). The
samples are served as Nova 34 sends them, with that version raised; ``tests/interop/test_nova_samples.py``
checks the catalog against Nova 34's own samples, and that this is their only difference in versions.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def samples_dir() -> Path:
    """``shared/reference/nova-notification-samples`` beside the repo (or under ``$NOVAWATCH_SHARED_DIR``)."""
    candidates = [REPO_ROOT.parent / "shared" / "reference" / "nova-notification-samples"]
    if os.environ.get("NOVAWATCH_SHARED_DIR"):
        candidates.append(Path(os.environ["NOVAWATCH_SHARED_DIR"]) / "reference" / "nova-notification-samples")
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"Nova's notification samples not found at {candidates}")


def sample_names() -> list[str]:
    """The file names of all samples, sorted."""
    return sorted(p.name for p in samples_dir().glob("*.json"))


#: Object versions Nova 34 sends newer than the reference samples say: name -> (sample's, Nova 34's).
NOVA34_VERSIONS = {"ImageMetaPropsPayload": ("1.19", "1.20")}


def as_nova34(value: Any) -> bool:
    """Raise, in place, the versions of :data:`NOVA34_VERSIONS` in a document; True if any was raised."""
    changed = False
    if isinstance(value, dict):
        newer = NOVA34_VERSIONS.get(value.get("nova_object.name", ""))
        if newer is not None and value.get("nova_object.version") == newer[0]:
            value["nova_object.version"] = newer[1]
            changed = True
        for item in value.values():
            changed = as_nova34(item) or changed
    elif isinstance(value, list):
        for item in value:
            changed = as_nova34(item) or changed
    return changed


@cache
def _raw(name: str) -> bytes:
    data = (samples_dir() / name).read_bytes()
    document = json.loads(data)
    return json.dumps(document, indent=4).encode() if as_nova34(document) else data


def raw(name: str) -> bytes:
    """The sample's bytes (``name`` with or without ``.json``)."""
    return _raw(name if name.endswith(".json") else f"{name}.json")


def load(name: str) -> dict[str, Any]:
    """A fresh, mutable copy of the sample as a dict."""
    result: dict[str, Any] = json.loads(raw(name))
    return result


def dump(document: Any) -> bytes:
    """A document as compact JSON bytes."""
    return json.dumps(document).encode()


def nested_objects(value: Any) -> list[dict[str, Any]]:
    """Every ``nova_object`` envelope in a document, outermost first."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if "nova_object.name" in value:
            found.append(value)
        for item in value.values():
            found.extend(nested_objects(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(nested_objects(item))
    return found
