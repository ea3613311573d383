"""natprobe's middleboxes for other projects' tests: an expiring NAT, in
userspace or the real kernel's, as context managers and as pytest fixtures.

    from probe.testing import ExpiringNat, ExpiringUdpNat, KernelNat

The pytest plugin (``probe.testing.plugin``, registered by ``pip install
natprobe``) wraps these as the ``expiring_nat``, ``expiring_udp_nat`` and
``kernel_nat`` fixtures and the ``natprobe`` marker (docs/testing-your-app.md).

Names are imported on first use: pytest loads the plugin in every project
where natprobe is installed, and a test that uses none of it should not pay
for asyncio, the lab or the emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.lab.conntrack import ConntrackFlow
    from probe.testing.events import NatEvent
    from probe.testing.expiring import ExpiringNat, ExpiringUdpNat
    from probe.testing.kernel import KernelNat

__all__ = ["ConntrackFlow", "ExpiringNat", "ExpiringUdpNat", "KernelNat", "NatEvent"]

_HOMES = {
    "ConntrackFlow": "probe.lab.conntrack",
    "ExpiringNat": "probe.testing.expiring",
    "ExpiringUdpNat": "probe.testing.expiring",
    "KernelNat": "probe.testing.kernel",
    "NatEvent": "probe.testing.events",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'probe.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
