"""Hardware check for a UR arm through the bridge's own code path (ur_rtde backend + safety filter).

    python -m vs_robot_bridge.tools.ur_check --ip 192.168.56.101            # URSim
    python -m vs_robot_bridge.tools.ur_check --ip 192.168.1.10 --axis z     # a real arm

Steps: 1) connect the receive side and print status; 2) dry run: compute the commands of a 1 cm move
through the safety filter without sending anything; 3) only after you type ``yes`` at the prompt, open
the control side (watchdog armed), move 1 cm along a base axis at low speed and back, then stop and
report the measured displacement. Ctrl-C at any point stops the robot (speedStop) and disconnects.
No ROS needed. See docs/robot_bridge.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from vs_robot_bridge.core.backend import RobotBackend
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig, UrRtdeConfig
from vs_robot_bridge.core.safety import clamp_speed, limit_to_workspace
from vs_robot_bridge.core.types import RobotState, TwistCommand
from vs_robot_bridge.core.ur_rtde_backend import pose_matrix_to_vector

AXES = {"x": 0, "y": 1, "z": 2}


def format_state(s: RobotState) -> str:
    """Human-readable status lines."""
    lines = [f"connected        {s.connected}",
             f"robot mode       {s.robot_mode}   (7 = RUNNING)",
             f"safety mode      {s.safety_mode}   (1 = NORMAL)",
             f"protective stop  {s.protective_stop}",
             f"emergency stop   {s.emergency_stop}",
             f"program running  {s.program_running}",
             f"runtime state    {s.runtime_state}   (2 = PLAYING)"]
    if s.base_T_tcp is not None:
        lines.append("TCP pose (base)  " + " ".join(f"{x:+.4f}" for x in pose_matrix_to_vector(s.base_T_tcp)))
    if s.joint_positions is not None:
        lines.append("joints (rad)     " + " ".join(f"{x:+.4f}" for x in s.joint_positions))
    if s.fault_text:
        lines.append(f"note             {s.fault_text}")
    return "\n".join(lines)


def check_safety_config(p_tcp: np.ndarray, distance: float, speed: float) -> SafetyConfig:
    """A safety config for the check: a box 5 cm around the start, speed capped at the requested one."""
    margin = max(0.05, 3 * distance)
    return SafetyConfig(max_linear_speed=speed, max_angular_speed=0.05, max_linear_accel=0.1,
                        workspace_min=tuple(float(x) for x in p_tcp - margin),
                        workspace_max=tuple(float(x) for x in p_tcp + margin))


def move(bridge: RobotBridge, v_b: np.ndarray, seconds: float, rate_hz: float, clock: Callable[[], float],
         sleep: Callable[[float], None]) -> None:
    """Stream a base-frame twist through the bridge for ``seconds``, then let it stop on silence."""
    period = 1.0 / rate_hz
    t_end = clock() + seconds
    while clock() < t_end:
        now = clock()
        reason = bridge.submit(v_b, bridge.filter.config.base_frame, now, now)
        if reason:
            raise RuntimeError(f"command refused: {reason}")
        bridge.tick(now)
        if bridge.faulted:
            raise RuntimeError(f"fault: {bridge.status().fault_text}")
        sleep(period)
    t_stop = clock() + 1.0  # silence: the bridge times out and sends speedStop; wait for rest
    while clock() < t_stop:
        bridge.tick(clock())
        sleep(period)


def run_check(backend: RobotBackend, axis: str = "z", distance: float = 0.01, speed: float = 0.01,
              rate_hz: float = 125.0, ask: Callable[[str], str] = input, out: Callable[[str], None] = print,
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """The three steps of the check; returns a process exit code (0 = all steps passed)."""
    out("== 1. connect (receive side)")
    backend.open_receive()
    state = backend.read_state()
    out(format_state(state))
    if not state.connected or state.base_T_tcp is None:
        out("FAIL: not connected or no TCP pose")
        return 1
    p0 = state.base_T_tcp[:3, 3].copy()
    safety = check_safety_config(p0, distance, speed)
    bridge = RobotBridge(BridgeConfig(control_rate_hz=rate_hz), safety, backend)
    v = np.zeros(6)
    v[AXES[axis]] = speed

    out("\n== 2. dry run (nothing is sent)")
    out(f"test twist in base: {v.tolist()} for {distance / speed:.2f} s, then back")
    v_cmd = bridge.filter.to_base(TwistCommand(v, safety.base_frame, 0.0, 0.0), state.base_T_tcp)
    v_cmd = clamp_speed(v_cmd, safety.max_linear_speed, safety.max_angular_speed)
    v_ws, zeroed = limit_to_workspace(v_cmd, p0, np.asarray(safety.workspace_min), np.asarray(safety.workspace_max),
                                      safety.workspace_lookahead_s, safety.max_linear_accel)
    out(f"after the safety filter: {np.round(v_ws, 5).tolist()}  workspace zeroed: {zeroed or 'none'}")
    out(f"expected end point: {np.round(p0 + v_ws[:3] * distance / speed, 4).tolist()} (m, base)")
    faults = [t for t in (state.protective_stop and "protective stop", state.emergency_stop and "emergency stop",
                          state.safety_mode not in (1, 2) and f"safety mode {state.safety_mode}") if t]
    if faults:
        out(f"FAIL: robot not ready: {', '.join(faults)}")
        return 1

    out("\n== 3. real move")
    answer = ask(f"Move the TCP {distance * 100:.1f} cm along base {axis} at {speed * 100:.1f} cm/s and back? "
                 "Keep a hand on the e-stop. Type 'yes': ")
    if answer.strip().lower() != "yes":
        out("skipped (no motion)")
        backend.disconnect()
        return 0
    try:
        bridge.configure()
        bridge.activate()
        move(bridge, v, distance / speed, rate_hz, clock, sleep)
        p1 = backend.read_state().base_T_tcp[:3, 3]
        move(bridge, -v, distance / speed, rate_hz, clock, sleep)
        p2 = backend.read_state().base_T_tcp[:3, 3]
    except (RuntimeError, KeyboardInterrupt) as err:
        out(f"FAIL: {err}")
        return 1
    finally:
        bridge.cleanup()  # speedStop, stopScript, disconnect
    d1, d2 = (p1 - p0) * 1e3, (p2 - p0) * 1e3
    out(f"out: moved {np.round(d1, 2).tolist()} mm (expected {distance * 1e3:.1f} mm along {axis})")
    out(f"back: residual {np.round(d2, 2).tolist()} mm from the start")
    ok = abs(d1[AXES[axis]] - distance * 1e3) < 0.3 * distance * 1e3 and np.linalg.norm(d2) < 0.3 * distance * 1e3
    out("PASS" if ok else "FAIL: the measured motion does not match the command (check frames and speed scaling)")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ip", required=True, help="UR controller IP (URSim: 192.168.56.101)")
    parser.add_argument("--axis", choices=sorted(AXES), default="z", help="base-frame axis of the test move")
    parser.add_argument("--distance", type=float, default=0.01, help="test move length (m), at most 0.02")
    parser.add_argument("--speed", type=float, default=0.01, help="test move speed (m/s), at most 0.05")
    parser.add_argument("--frequency", type=float, default=-1.0, help="RTDE frequency (-1: 125/500 Hz by model)")
    parser.add_argument("--rate", type=float, default=125.0, help="control loop rate (Hz)")
    args = parser.parse_args(argv)
    if not 0.0 < args.distance <= 0.02 or not 0.0 < args.speed <= 0.05:
        parser.error("--distance must be in (0, 0.02] m and --speed in (0, 0.05] m/s")
    from vs_robot_bridge.core.ur_rtde_backend import UrRtdeBackend

    backend = UrRtdeBackend(UrRtdeConfig(robot_ip=args.ip, frequency_hz=args.frequency))
    try:
        return run_check(backend, args.axis, args.distance, args.speed, args.rate)
    except Exception as err:  # noqa: BLE001 — a CLI: report and stop
        print(f"FAIL: {err}")
        return 1
    finally:
        backend.disconnect()


if __name__ == "__main__":
    raise SystemExit(main())
