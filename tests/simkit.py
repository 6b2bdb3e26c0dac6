"""A seeded ``novawatch simulate`` run kept in memory, for the bus and model tests that replay it."""

from __future__ import annotations

from typing import Any

from novawatch.simulate import Config, Simulation
from novawatch.snapshot import Snapshot, dumps


class Collect:
    """A notification driver that keeps every body it is sent, in order."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def send(self, topic: str, notification: Any, body: bytes) -> None:
        self.bodies.append(body)


def simulate_collected(config: Config) -> tuple[Snapshot, tuple[bytes, ...], bytes]:
    """Run a simulation: its initial snapshot, every notification body it emitted, and its truth (JSON)."""
    collect = Collect()
    sim = Simulation(config, [collect])
    try:
        initial = sim.setup()
        sim.run()
        truth = dumps(sim.truth())
    finally:
        sim.close()
    return initial, tuple(collect.bodies), truth
