#!/usr/bin/env bash
# Install LocalStack (S3 only is used) into its own Python 3.13 venv at .emulators/localstack-venv. Idempotent.
# LocalStack needs Python 3.13; it is installed from PyPI, no Docker involved.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LOCALSTACK_VENV:-$ROOT/.emulators/localstack-venv}"
VERSION="2026.3.0"
STAMP="$VENV/.tierstore-localstack-$VERSION"

if [[ -f "$STAMP" ]]; then
  exit 0
fi

PYTHON=""
for candidate in /root/.pyenv/versions/3.13.0/bin/python3.13 "$(command -v python3.13 || true)"; do
  if [[ -n "$candidate" && -x "$candidate" ]]; then
    PYTHON="$candidate"
    break
  fi
done
if [[ -z "$PYTHON" ]]; then
  echo "install.sh: LocalStack needs Python 3.13 (python3.13 not found)" >&2
  exit 1
fi

mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "localstack-core[runtime]==$VERSION" "cbor2<6" service-identity
touch "$STAMP"
