"""natprobe: measure how long an idle connection survives on a network path."""

from __future__ import annotations

__version__ = "0.1.0"
