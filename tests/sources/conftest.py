"""The served compute service of tests/api/nova, for the openstacksdk source tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api" / "nova"))

from novacloud import NovaCloud, cloud

__all__ = ["NovaCloud", "cloud"]
