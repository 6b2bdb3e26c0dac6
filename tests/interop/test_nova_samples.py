"""The catalog against Nova 34's own notification samples (``doc/notification_samples`` of its sdist).

The project's reference samples (``shared/reference``) are older than Nova 34 in one respect: they say
``ImageMetaPropsPayload`` 1.19 where Nova 34's code and its own samples say 1.20. The unit tests read the
reference samples with that version raised (``tests/novakit.py``); these tests check that Nova 34's samples
agree with the catalog, and that the raised version is the only difference in versions between the two.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from novakit import NOVA34_VERSIONS, load, sample_names, samples_dir
from novawatch.notifications import decode
from novawatch.objects import lookup

pytestmark = pytest.mark.nova


def _resolve(value: Any, base: Path) -> Any:
    """Nova's JSON references (nova/tests/json_ref.py): ``{"$ref": file, ...overrides}``, overrides merged deeply."""
    if isinstance(value, list):
        return [_resolve(item, base) for item in value]
    if not isinstance(value, dict):
        return value
    if "$ref" not in value:
        return {k: _resolve(v, base) for k, v in value.items()}
    path = base / value["$ref"].partition("#")[0]
    resolved = _resolve(json.loads(path.read_text()), path.parent)
    _merge(resolved, _resolve({k: v for k, v in value.items() if k != "$ref"}, base))
    return resolved


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(target.get(key), dict) and isinstance(value, dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _objects(value: Any, path: str = "payload") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(value, dict):
        if "nova_object.name" in value:
            found.append((path, value))
        for key, item in value.items():
            found.extend(_objects(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_objects(item, f"{path}[{i}]"))
    return found


@pytest.fixture(scope="module")
def nova34_samples(nova_check: ModuleType) -> dict[str, dict[str, Any]]:
    try:
        python = nova_check.ensure_venv()
    except nova_check.SetupError as exc:
        pytest.fail(f"could not create the Nova environment: {exc}")
    folder = nova_check.nova_samples_dir(python)
    return {p.name: _resolve(json.loads(p.read_text()), folder) for p in sorted(folder.glob("*.json"))}


def test_every_nova34_sample_decodes_at_the_catalogs_versions(nova34_samples: dict[str, dict[str, Any]]) -> None:
    assert len(nova34_samples) >= 140
    wrong: list[str] = []
    for name, sample in nova34_samples.items():
        decode(json.dumps(sample))  # raises if the catalog rejects it
        for path, obj in _objects(sample["payload"]):
            cls = lookup(obj["nova_object.name"], obj["nova_object.version"])
            if obj["nova_object.version"] != cls.VERSION:
                wrong.append(f"{name} {path}: Nova 34 {obj['nova_object.version']}, catalog {cls.VERSION}")
            unknown = set(obj["nova_object.data"]) - {f for f in cls.__struct_fields__}
            if unknown:
                wrong.append(f"{name} {path}: fields the catalog lacks: {sorted(unknown)}")
    assert wrong == []


def test_the_reference_samples_differ_from_nova34s_only_by_the_known_versions(
        nova34_samples: dict[str, dict[str, Any]]) -> None:
    as_published: list[str] = []
    as_served: list[str] = []
    compared = 0
    for name in sample_names():
        if name not in nova34_samples:
            continue
        compared += 1
        theirs = {path: obj["nova_object.version"] for path, obj in _objects(nova34_samples[name]["payload"])}
        published = json.loads((samples_dir() / name).read_text())["payload"]
        served = load(name)["payload"]  # with NOVA34_VERSIONS applied
        for label, document, out in (("published", published, as_published), ("served", served, as_served)):
            ours = {path: obj for path, obj in _objects(document)}
            assert set(ours) == set(theirs), (name, label)
            out.extend(f"{obj['nova_object.name']} {obj['nova_object.version']} -> {theirs[path]}"
                       for path, obj in ours.items() if obj["nova_object.version"] != theirs[path])
    assert compared >= 130
    assert {line for line in as_published} == {f"{k} {old} -> {new}" for k, (old, new) in NOVA34_VERSIONS.items()}
    assert as_served == []
