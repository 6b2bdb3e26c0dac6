"""Bus tests: helpers live in ``bushelpers`` (the suite runs with --import-mode=importlib, which does not put
test folders on sys.path), and its fixtures are offered to every test here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # simkit

from bushelpers import consumers, rabbit_groups, sample_notifications, samples

__all__ = ["consumers", "rabbit_groups", "sample_notifications", "samples"]
