"""A fake Glance: the images instances boot from, and what Nova copies of an image into an instance.

Nova reads the image at boot and rebuild: its properties become the instance's ``architecture``,
``image_*`` system metadata (the legacy notifications' ``image_meta``) and the scheduler's request spec
image. novawatch has no image service; it knows the images of Nova's functional-test Glance fixture by
id (so the same workload gives the same notifications) and treats any other UUID as a plain public
x86_64 raw image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The image novawatch boots from when none is named (Nova's fixture's first image).
DEFAULT_IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"

_CREATED = datetime(2011, 1, 1, 1, 2, 3)

#: Prefix of the image keys in an instance's system metadata (Nova's ``SM_IMAGE_PROP_PREFIX``).
PREFIX = "image_"
#: Image attributes an instance inherits into its system metadata besides the properties.
_INHERITED = ("min_ram", "min_disk", "disk_format", "container_format")


@dataclass(frozen=True)
class Image:
    """An image as Glance v2 describes it (the fields Nova's ``ImageMeta`` reads)."""

    id: str
    name: str
    container_format: str = "raw"
    disk_format: str = "raw"
    size: int = 25165824
    min_ram: int = 0
    min_disk: int = 0
    tags: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    visibility: str = "public"
    protected: bool = False
    created_at: datetime = _CREATED

    @property
    def architecture(self) -> str | None:
        """What Nova copies into the instance's ``architecture``."""
        value = self.properties.get("architecture", self.properties.get("hw_architecture"))
        return None if value is None else str(value)

    def props(self) -> dict[str, Any]:
        """The properties as Nova's ``ImageMetaProps`` names them (``architecture`` is ``hw_architecture``)."""
        out = {k: v for k, v in self.properties.items() if k not in ("architecture", "kernel_id", "ramdisk_id")}
        if self.architecture is not None:
            out["hw_architecture"] = self.architecture
        return out


#: Nova's functional-test Glance fixture's images that novawatch mirrors.
KNOWN: dict[str, Image] = {i.id: i for i in (
    Image(DEFAULT_IMAGE, "cirros-0.6.2-x86_64-disk", tags=("tag1", "tag2"),
          properties={"kernel_id": "nokernel", "ramdisk_id": "nokernel", "architecture": "x86_64"}),
    Image("a2459075-d96c-40d5-893e-577ff92e721c", "fakeimage123456", container_format="ami", disk_format="ami",
          size=58145823, properties={"kernel_id": "nokernel", "ramdisk_id": "nokernel"}),
)}


def lookup(image_id: str) -> Image:
    """The image with this id: a known one, or a plain public x86_64 raw image."""
    known = KNOWN.get(image_id)
    if known is not None:
        return known
    return Image(image_id, f"image-{image_id[:8]}", properties={"architecture": "x86_64"})


def system_metadata(image: Image | None, root_gb: int) -> dict[str, str]:
    """The ``image_*`` system metadata Nova stores for an instance booted from ``image`` (None: from a volume).

    Values are strings, as Nova's system metadata table holds them; ``min_disk`` is at least the
    flavor's root disk.
    """
    if image is None:
        # A volume-backed instance: the volume's image metadata (none here), the flavor's minimums.
        return {f"{PREFIX}base_image_ref": "", f"{PREFIX}min_disk": str(root_gb), f"{PREFIX}min_ram": "0"}
    out = {f"{PREFIX}{k}": str(v) for k, v in image.properties.items()}
    for key in _INHERITED:
        value = getattr(image, key)
        if key == "min_disk":
            value = max(value, root_gb)
        out[f"{PREFIX}{key}"] = str(value)
    out[f"{PREFIX}base_image_ref"] = image.id
    return out


def image_meta(system_meta: dict[str, Any]) -> dict[str, str]:
    """The legacy notifications' ``image_meta``: the ``image_*`` system metadata without the prefix."""
    return {k[len(PREFIX):]: str(v) for k, v in system_meta.items() if k.startswith(PREFIX)}
