"""The generated reference page covers the catalog and is up to date in the repository."""

from __future__ import annotations

from novakit import REPO_ROOT
from novawatch.notifications.catalog import events
from novawatch.notifications.reference import COMMAND, describe, render
from novawatch.objects import registered
from novawatch.objects.fields import UUID


def test_docs_notifications_md_is_up_to_date() -> None:
    path = REPO_ROOT / "docs" / "notifications.md"
    current = path.read_text() if path.exists() else ""
    assert current == render(), f"docs/notifications.md is out of date; regenerate it with `{COMMAND}`"


def test_page_lists_every_event_and_payload() -> None:
    page = render()
    for entry in events():
        assert f"| `{entry.event_type}` | [{entry.payload.__name__}]" in page
        assert f"### {entry.payload.__name__}\n" in page
    for cls in registered():
        assert f"### {cls.__name__}\n" in page


def test_page_shows_types_nullability_since_and_schema() -> None:
    page = render()
    assert "| `instance.volume_swap.start` | [InstanceActionVolumeSwapPayload](#instanceactionvolumeswappayload) " \
           "| 1.9 | INFO | nova-compute | versioned |" in page
    assert "| `compute.instance.volume.attach` | [LegacyInstanceVolumePayload](#legacyinstancevolumepayload) " \
           "| - | INFO | compute | legacy |" in page
    swap = page.split("### InstanceActionVolumeSwapPayload\n")[1].split("\n### ")[0]
    assert "| `tenant_id` | str | yes |  | instance.project_id |" in swap
    assert "| `shares` | list of [SharePayload](#sharepayload) | yes | 1.9 |  |" in swap
    assert "| `old_volume_id` | UUID | no |  |  |" in swap
    assert "| `auto_disk_config` | enum: `MANUAL`, `AUTO` | no | 1.2 | instance.auto_disk_config |" in swap
    assert describe(UUID) == "UUID"
