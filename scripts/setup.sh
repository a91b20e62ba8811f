#!/usr/bin/env bash
# Set up genrebot on a fresh machine: ffmpeg, espeak-ng and PostgreSQL (apt-get, when missing),
# a virtual environment in .venv, and the project with its test extras (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: ffmpeg (decoding), espeak-ng (the speech the not-music detector learns
# from, and the tests' spoken uploads) and PostgreSQL's server programs (the tests start a
# throwaway PostgreSQL server of their own; nothing here starts or enables the system one).
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
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

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "genrebot is set up in .venv"
