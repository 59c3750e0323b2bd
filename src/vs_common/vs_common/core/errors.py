"""The project's error hierarchy.

Every public edge (a node callback, a CLI, a core constructor) raises one of these, so a node can
catch :class:`VisualServoError`, log it throttled, publish a zero twist and put ``str(err)`` in its
status. Anything else escaping a callback is a bug.
"""

from __future__ import annotations


class VisualServoError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(VisualServoError, ValueError):
    """A configuration value is invalid; the message names the field and the valid values."""


class InputError(VisualServoError, ValueError):
    """An input (image, message, array) is malformed: wrong encoding, shape, NaN, size mismatch."""


class NotReadyError(VisualServoError):
    """A step was asked for before its prerequisites exist (no goal, no camera_info, not configured)."""


class ObservationError(VisualServoError):
    """Perception could not produce a usable observation (too few matches, RANSAC failed)."""


class ControllerError(VisualServoError):
    """A controller could not compute a command (degenerate interaction matrix, too few points)."""


class SafetyViolation(VisualServoError):
    """A command was refused by the safety layer (stale, non-finite, unknown frame, out of workspace)."""


class RobotFault(VisualServoError):
    """The robot reported a latched fault (protective stop, e-stop, disconnect) that needs a reset."""


class WeightsNotFoundError(VisualServoError, FileNotFoundError):
    """Model weights are missing locally; the message says where they were looked for and how to get them."""
