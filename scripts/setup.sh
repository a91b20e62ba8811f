#!/usr/bin/env bash
# Set up genrebot on a fresh machine: ffmpeg, espeak-ng and PostgreSQL's server programs
# (apt-get, when missing; and python3.X-venv when the system Python lacks venv), a virtual
# environment in .venv, and the project with its training and test extras (editable), so the
# tests run. A server that only serves needs less: `pip install .` (no TensorFlow).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
PYTHON=${PYTHON:-python3}

# System packages: ffmpeg (decoding); espeak-ng (the speech the not-music detector learns
# from, and the tests' spoken uploads); PostgreSQL's server programs (the tests start a
# throwaway PostgreSQL server of their own; nothing here starts or enables the system one);
# Debian's and Ubuntu's system Python ship venv/ensurepip separately (python3.X-venv).
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
  missing+=("python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv")
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (apt-get)"
  SUDO=""
  [ "$(id -u)" = "0" ] || SUDO=sudo
  $SUDO apt-get update -qq
  # policy-rc.d 101: install the packages without starting the system's PostgreSQL service
  if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" = "0" ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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

step "installing genrebot with its training and test extras (about 3.1 GB, most of it TensorFlow; a few minutes)"
.venv/bin/python -m pip install --progress-bar on -e '.[test]'

step "genrebot is set up in .venv"
