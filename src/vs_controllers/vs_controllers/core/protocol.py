"""The controller protocol every pipeline implements (shaped like ViSP's ``vpServo``).

configure (constructor with a frozen config) → :meth:`Controller.set_goal` → :meth:`Controller.compute`
per observation → :class:`ControlOutput`. A node swaps controllers by name through
:func:`vs_controllers.core.pipelines.make_controller`.

Twists are ``v_c = (vx, vy, vz, wx, wy, wz)`` in the current camera optical frame (m/s, rad/s), at unit
gain: the servo loop (:mod:`vs_controllers.core.loop`) applies the gain schedule, the speed limits and
the stop policy, the same way for every controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class ControlOutput:
    """One controller step.

    Attributes:
        v_c: (6,) camera twist at unit gain in the camera optical frame (m/s, rad/s); zeros when ``ok`` is False.
        error: scalar feature error the controller minimises (its own units, documented per controller).
        gain_error: the error the loop's adaptive gain reads (IBVS: ‖e‖∞ as ViSP); None = ``error``.
        ok: False when the controller could not compute (then ``v_c`` is zero and ``reason`` says why).
        reason: human-readable explanation when ``ok`` is False.
        info: extra per-step diagnostics (timings, gains, residuals).
    """

    v_c: np.ndarray
    error: float
    gain_error: float | None = None
    ok: bool = True
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def zero(cls, reason: str, error: float = float("nan")) -> ControlOutput:
        """A safe 'cannot compute' output: zero twist and the reason."""
        return cls(v_c=np.zeros(6), error=error, ok=False, reason=reason)


@runtime_checkable
class Controller(Protocol):
    """What every visual-servo controller provides."""

    name: str

    def set_goal(self, goal: Any) -> None:
        """Fix the goal (a goal observation: goal keypoints, depths, camera). Resets internal state."""

    def reset(self) -> None:
        """Forget recurrent state (hidden states, filters) but keep the goal."""

    def compute(self, obs: Any) -> ControlOutput:
        """One step: observation → unit-gain twist. Never raises for bad input: returns ``ControlOutput.zero``."""
