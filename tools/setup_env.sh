#!/usr/bin/env bash
# Creates .venv with everything LoGSAM and its tests need; installs the few system
# packages (ffmpeg, espeak-ng, PortAudio, ALSA tools) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v arecord >/dev/null || need_apt+=(alsa-utils)
ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || need_apt+=(libportaudio2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# torch first, pinned: other packages must never pull an unpinned torch.
"${PIP[@]}" install -c constraints.txt torch torchvision
"${PIP[@]}" install -c constraints.txt -e ".[fast,test,serve,ray,cpu]"
# groundingdino-py is the original Grounding DINO code: a test-only reference. Its
# own requirements would swap torch, so its dependencies are listed by hand.
"${PIP[@]}" install -c constraints.txt -r requirements-reference.txt
"${PIP[@]}" install -c constraints.txt --no-deps groundingdino-py==0.4.0
touch "$VENV/.installed"
echo "setup: $VENV ready"
