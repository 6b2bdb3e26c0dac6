"""Model tests import their notification builders (``modelkit``) from this folder."""

from __future__ import annotations

import sys
from pathlib import Path

# The suite runs with --import-mode=importlib, which does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # simkit
