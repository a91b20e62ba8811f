#!/usr/bin/env bash
# Set up genrebot on a fresh machine: ffmpeg (apt-get, when missing), a virtual
# environment in .venv, and the project with its training and test extras (editable),
# so the tests run. A server that only serves needs less: `pip install .` (no TensorFlow).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  local sudo=""
  [ "$(id -u)" = "0" ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

PYTHON=${PYTHON:-python3}

if ! command -v ffmpeg >/dev/null 2>&1; then
  step "installing ffmpeg (apt-get)"
  apt_install ffmpeg
fi

# Debian's and Ubuntu's system Python ship venv/ensurepip separately (python3.X-venv).
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
  version=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  step "installing python${version}-venv (apt-get): $PYTHON cannot make virtual environments without it"
  apt_install "python${version}-venv"
fi

if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv  # left half-made by an earlier attempt
fi
if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi

step "upgrading pip"
.venv/bin/python -m pip install -q --upgrade pip

step "installing genrebot with its training and test extras (about 2.7 GB, most of it TensorFlow; a few minutes)"
.venv/bin/python -m pip install --progress-bar on -e '.[test]'

step "genrebot is set up in .venv"
