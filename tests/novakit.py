"""Nova's published notification samples, for the notification, object and CLI tests."""

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


@cache
def _raw(name: str) -> bytes:
    return (samples_dir() / name).read_bytes()


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
