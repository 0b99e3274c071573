# shellcheck shell=bash
# Source this file (bash) to get the FacePass development environment:
#
#   source scripts/env.sh
#
# It exports FACEPASS_HOME, FACEPASS_VENV, ORT_DYLIB_PATH (the venv's
# libonnxruntime.so.*), FACEPASS_DATABASE_URL, FACEPASS_TEST_DATABASE_URL,
# FACEPASS_AMQP_URL (each kept if already set), and puts .venv/bin and buf first on
# PATH (and ~/.cargo/bin last, if cargo is not on PATH yet). It installs nothing and
# does not change shell options; run `bash scripts/lib/deps.sh` first to install.
# shellcheck source=scripts/lib/deps.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh" && facepass_env
