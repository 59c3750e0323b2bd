"""The robot backend protocol: what the bridge needs from an arm (real or simulated).

Lifecycle mapping (the node's transitions call these):

=============  ==========================================
configure      :meth:`RobotBackend.open_receive`
activate       :meth:`RobotBackend.open_control` (+ watchdog)
deactivate     :meth:`RobotBackend.stop` then :meth:`RobotBackend.close_control`
cleanup        :meth:`RobotBackend.disconnect`
=============  ==========================================

Every call may raise :class:`vs_common.core.errors.RobotFault`; the bridge latches it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from vs_common.core.config import check_choice

from vs_robot_bridge.core.config import BACKENDS, SimBackendConfig, UrRtdeConfig
from vs_robot_bridge.core.types import RobotState


@runtime_checkable
class RobotBackend(Protocol):
    """A robot the bridge can read and command with base-frame TCP twists."""

    name: str

    def open_receive(self) -> None:
        """Open the read-only link (state, status). Raises RobotFault when the robot is unreachable."""

    def open_control(self) -> None:
        """Open the command link and arm the on-robot watchdog. Raises RobotFault on failure."""

    def close_control(self, deceleration: float = 1.0) -> None:
        """Stop motion (at ``deceleration`` m/s²) and the on-robot program; release the command link."""

    def disconnect(self) -> None:
        """Close every link; safe to call in any state."""

    @property
    def control_open(self) -> bool:
        """True while the command link is open."""

    def read_state(self) -> RobotState:
        """Poll the robot: pose, joints, modes, stops, connection."""

    def send_twist(self, v_b: np.ndarray, acceleration: float) -> None:
        """Command a base-frame TCP twist (speedL semantics). Raises RobotFault when the robot refuses."""

    def stop(self, deceleration: float) -> None:
        """Decelerate to rest (speedStop). Must not raise when the link is already gone."""

    def kick_watchdog(self) -> None:
        """Tell the on-robot watchdog the bridge is alive; called every control tick."""

    def reconnect(self) -> bool:
        """Try once to re-establish the links that were open; True on success. Never commands motion."""

    def reset_fault(self) -> None:
        """Make the robot accept commands again after a human cleared the stop (e.g. re-upload the script)."""


def make_backend(name: str, ur: UrRtdeConfig | None = None, sim: SimBackendConfig | None = None) -> RobotBackend:
    """Build the backend called ``name`` ("sim" or "ur_rtde") from its config."""
    check_choice("backend", name, BACKENDS)
    if name == "ur_rtde":
        from vs_robot_bridge.core.ur_rtde_backend import UrRtdeBackend

        return UrRtdeBackend(ur)
    from vs_robot_bridge.core.sim_backend import SimBackend

    return SimBackend(sim)
