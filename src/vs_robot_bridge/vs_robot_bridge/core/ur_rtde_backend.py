"""A UR arm through ur_rtde (SDU): ``RTDEReceiveInterface`` for state, ``RTDEControlInterface`` for speedL.

Semantics this module relies on (reference/ros2_conventions.md §2, checked against ur-rtde 1.6.5):

- ``speedL(xd, a)`` takes the TCP velocity in the controller's **Base** frame (m/s, rad/s) and is
  non-blocking; the on-robot speed thread keeps the last target until a new one, ``speedStop``, a
  watchdog trip or a script stop. It returns False when the program is stopped or the robot is
  protective / emergency stopped.
- ``setWatchdog(f)`` makes the on-robot script stop when ``kickWatchdog()`` is not called at ≥ f Hz.
- ``speedStop(a)`` decelerates at ``a`` m/s² (the default 10 is harsh).
- ``disconnect()`` sends no stop, so :meth:`UrRtdeBackend.close_control` stops first.
- After a protective stop clears or a watchdog trip, the script is gone: ``reuploadScript()``.

The ur_rtde modules are imported lazily, so this file imports (and its logic is tested with stand-ins)
where ur-rtde is not installed. The interface classes can be injected for tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.errors import NotReadyError, RobotFault
from vs_common.core.se3 import make_pose

from vs_robot_bridge.core.config import UrRtdeConfig
from vs_robot_bridge.core.types import RUNTIME_PLAYING, RobotState

UR_JOINT_NAMES = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                  "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")


def _import_ur_rtde() -> tuple[Any, Any]:
    """The ``rtde_control`` and ``rtde_receive`` modules, or a clear error saying how to get them."""
    try:
        return importlib.import_module("rtde_control"), importlib.import_module("rtde_receive")
    except ImportError as err:
        raise NotReadyError(
            "the ur_rtde Python bindings are not installed (modules rtde_control / rtde_receive): "
            "`pip install ur-rtde` (or use backend:=sim)") from err


def pose_vector_to_matrix(pose: list[float] | np.ndarray) -> np.ndarray:
    """UR pose ``[x, y, z, rx, ry, rz]`` (m, axis-angle rad) → (4, 4) transform."""
    p = np.asarray(pose, dtype=np.float64).reshape(6)
    return make_pose(Rotation.from_rotvec(p[3:]).as_matrix(), p[:3])


def pose_matrix_to_vector(T: np.ndarray) -> list[float]:
    """(4, 4) transform → UR pose ``[x, y, z, rx, ry, rz]``."""
    return [*map(float, T[:3, 3]), *map(float, Rotation.from_matrix(T[:3, :3]).as_rotvec())]


class UrRtdeBackend:
    """The real arm; see the module docstring for the ur_rtde behaviours it relies on.

    Args:
        config: connection settings.
        control_factory: ``(host, frequency, flags) → RTDEControlInterface``-like object (tests inject fakes).
        receive_factory: ``(host, frequency) → RTDEReceiveInterface``-like object.
    """

    name = "ur_rtde"

    def __init__(self, config: UrRtdeConfig | None = None,
                 control_factory: Callable[[str, float, int], Any] | None = None,
                 receive_factory: Callable[[str, float], Any] | None = None) -> None:
        self.config = config or UrRtdeConfig()
        self._flags: int | None = None
        if control_factory is None or receive_factory is None:
            rtde_control, rtde_receive = _import_ur_rtde()
            ctrl_cls = rtde_control.RTDEControlInterface
            flags = int(ctrl_cls.FLAG_UPLOAD_SCRIPT)
            if self.config.use_external_control_urcap:
                flags |= int(ctrl_cls.FLAG_USE_EXT_UR_CAP)
            if self.config.disable_remote_control_check:
                flags |= int(ctrl_cls.FLAG_DISABLE_REMOTE_CONTROL_CHECK)
            self._flags = flags
            control_factory = control_factory or (lambda h, f, fl: ctrl_cls(h, f, fl))
            receive_factory = receive_factory or (lambda h, f: rtde_receive.RTDEReceiveInterface(h, f))
        self._control_factory: Callable[[str, float, int], Any] = control_factory
        self._receive_factory: Callable[[str, float], Any] = receive_factory
        self._rtde_c: Any = None
        self._rtde_r: Any = None
        self._watchdog_ok = True

    @property
    def control_open(self) -> bool:
        return self._rtde_c is not None

    def open_receive(self) -> None:
        if self._rtde_r is not None:
            return
        try:
            self._rtde_r = self._receive_factory(self.config.robot_ip, self.config.frequency_hz)
        except Exception as err:  # ur_rtde raises RuntimeError / OSError subclasses on connection failure
            raise RobotFault(f"cannot open RTDE receive interface to {self.config.robot_ip}: {err}") from err

    def open_control(self) -> None:
        if self._rtde_c is not None:
            return
        try:
            self._rtde_c = self._control_factory(self.config.robot_ip, self.config.frequency_hz,
                                                 self._flags if self._flags is not None else 1)
            # Armed right after construction (ur_rtde's advice); the script stops if we go silent.
            if not self._rtde_c.setWatchdog(self.config.watchdog_min_frequency_hz):
                raise RobotFault("setWatchdog was refused")
        except RobotFault:
            self._drop_control()
            raise
        except Exception as err:
            self._drop_control()
            raise RobotFault(f"cannot open RTDE control interface to {self.config.robot_ip}: {err} "
                             "(is PolyScope in Remote Control mode?)") from err
        self._watchdog_ok = True

    def close_control(self, deceleration: float = 1.0) -> None:
        c = self._rtde_c
        if c is None:
            return
        # disconnect() alone sends no stop: stop the motion and the script first.
        for call in (lambda: c.speedStop(float(deceleration)), c.stopScript, c.disconnect):
            try:
                call()
            except Exception:  # noqa: BLE001 — best effort on the way out; the link may already be gone
                pass
        self._rtde_c = None

    def disconnect(self) -> None:
        self.close_control()
        if self._rtde_r is not None:
            try:
                self._rtde_r.disconnect()
            except Exception:  # noqa: BLE001
                pass
            self._rtde_r = None

    def read_state(self) -> RobotState:
        r = self._rtde_r
        if r is None:
            return RobotState(connected=False, fault_text="receive interface not open")
        try:
            connected = bool(r.isConnected()) and (self._rtde_c is None or bool(self._rtde_c.isConnected()))
            if not connected:
                return RobotState(connected=False, fault_text="RTDE connection lost")
            program_running = bool(self._rtde_c.isProgramRunning()) if self._rtde_c is not None else False
            q = np.asarray(r.getActualQ(), dtype=np.float64)
            qd = np.asarray(r.getActualQd(), dtype=np.float64)
            state = RobotState(
                connected=True,
                base_T_tcp=pose_vector_to_matrix(r.getActualTCPPose()),
                tcp_twist_b=np.asarray(r.getActualTCPSpeed(), dtype=np.float64),
                joint_names=UR_JOINT_NAMES if q.shape == (6,) else (),
                joint_positions=q if q.shape == (6,) else None,
                joint_velocities=qd if qd.shape == (6,) else None,
                robot_mode=int(r.getRobotMode()),
                safety_mode=int(r.getSafetyMode()),
                protective_stop=bool(r.isProtectiveStopped()),
                emergency_stop=bool(r.isEmergencyStopped()),
                program_running=program_running,
                runtime_state=int(r.getRuntimeState()),
                watchdog_ok=self._watchdog_ok,
            )
        except Exception as err:  # noqa: BLE001 — a failing getter means the link is unusable
            return RobotState(connected=False, fault_text=f"RTDE read failed: {err}")
        if self._rtde_c is not None and not program_running and state.runtime_state != RUNTIME_PLAYING:
            # The script stops on a watchdog trip (or any stop); we cannot tell which, so say both.
            state.fault_text = "control script not running (watchdog trip or robot stop)"
        return state

    def send_twist(self, v_b: np.ndarray, acceleration: float) -> None:
        c = self._require_control()
        xd_arr = np.asarray(v_b, dtype=np.float64).reshape(-1)
        if xd_arr.shape != (6,) or not np.all(np.isfinite(xd_arr)) or not np.isfinite(acceleration) \
                or acceleration <= 0:
            # A second check behind the safety filter: never hand the controller a NaN or Inf target.
            raise RobotFault(f"speedL refused locally: non-finite or malformed target {xd_arr.tolist()[:6]} "
                             f"(a = {acceleration!r})")
        xd = [float(x) for x in xd_arr]
        try:
            ok = c.speedL(xd, float(acceleration), 0.0)
        except Exception as err:
            raise RobotFault(f"speedL failed: {err}") from err
        if not ok:
            raise RobotFault("speedL refused (program stopped, protective or emergency stop)")

    def stop(self, deceleration: float) -> None:
        c = self._rtde_c
        if c is None:
            return
        try:
            c.speedStop(float(deceleration))
        except Exception:  # noqa: BLE001 — stopping must never raise; the watchdog is the backstop
            pass

    def kick_watchdog(self) -> None:
        c = self._rtde_c
        if c is None:
            return
        try:
            if c.kickWatchdog() is False:
                self._watchdog_ok = False
        except Exception:  # noqa: BLE001
            self._watchdog_ok = False

    def reconnect(self) -> bool:
        """Re-handshake the interfaces that were open (reconnect() re-uploads the script, no motion)."""
        try:
            if self._rtde_r is not None and not self._rtde_r.isConnected():
                self._rtde_r.reconnect()
            if self._rtde_c is not None and not self._rtde_c.isConnected():
                self._rtde_c.reconnect()
                self._rtde_c.setWatchdog(self.config.watchdog_min_frequency_hz)
            return bool(self._rtde_r is None or self._rtde_r.isConnected()) and \
                bool(self._rtde_c is None or self._rtde_c.isConnected())
        except Exception:  # noqa: BLE001 — a failed attempt is retried with backoff
            return False

    def reset_fault(self) -> None:
        r = self._rtde_r
        if r is None or not r.isConnected():
            raise RobotFault("not connected to the robot")
        if r.isProtectiveStopped() or r.isEmergencyStopped():
            raise RobotFault("the robot is still stopped; clear the stop on the pendant first")
        c = self._rtde_c
        if c is not None:
            try:
                if not c.isProgramRunning():
                    c.reuploadScript()
                    c.setWatchdog(self.config.watchdog_min_frequency_hz)
            except Exception as err:
                raise RobotFault(f"could not restart the control script: {err}") from err
        self._watchdog_ok = True

    def _require_control(self) -> Any:
        if self._rtde_c is None:
            raise RobotFault("control interface not open (node not active)")
        return self._rtde_c

    def _drop_control(self) -> None:
        if self._rtde_c is not None:
            try:
                self._rtde_c.disconnect()
            except Exception:  # noqa: BLE001
                pass
        self._rtde_c = None
