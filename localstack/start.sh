#!/usr/bin/env bash
# start.sh PORT DATA_DIR [BUCKET]: start LocalStack's S3 on 127.0.0.1:PORT in the background, wait until it is
# healthy, create BUCKET if given, and print the server's process id (stop it with stop.sh DATA_DIR).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${LOCALSTACK_VENV:-$ROOT/.emulators/localstack-venv}"
PORT="${1:?usage: start.sh PORT DATA_DIR [BUCKET]}"
DATA="$(mkdir -p "${2:?usage: start.sh PORT DATA_DIR [BUCKET]}" && cd "$2" && pwd)"
BUCKET="${3:-}"

"$HERE/install.sh"
mkdir -p "$DATA/fs" "$DATA/conf" "$DATA/tmp" "$DATA/cache" "$DATA/s3"
if [[ ! -f "$DATA/cert.pem" ]]; then
  # LocalStack's own self-signed certificate generation crashes with pyOpenSSL 26; give it one.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -keyout "$DATA/key.pem" -out "$DATA/crt.pem" 2>/dev/null
  cat "$DATA/key.pem" "$DATA/crt.pem" > "$DATA/cert.pem"
fi

export GATEWAY_LISTEN="127.0.0.1:$PORT" LOCALSTACK_HOST="127.0.0.1:$PORT" SERVICES=s3 EAGER_SERVICE_LOADING=1 \
  DNS_ADDRESS=0 DISABLE_EVENTS=1 OVERRIDE_IN_DOCKER=0 SKIP_SSL_CERT_DOWNLOAD=1 \
  FILESYSTEM_ROOT="$DATA/fs" CONFIG_DIR="$DATA/conf" TMPDIR="$DATA/tmp" XDG_CACHE_HOME="$DATA/cache" \
  LS_S3_STORAGE_DIR="$DATA/s3" CUSTOM_SSL_CERT_PATH="$DATA/cert.pem"

# A session of its own, so stop.sh can end the server and every child it starts.
setsid "$VENV/bin/python" "$HERE/launcher.py" > "$DATA/localstack.log" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$DATA/localstack.pid"

for _ in $(seq 1 600); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "start.sh: LocalStack exited; see $DATA/localstack.log" >&2
    tail -n 30 "$DATA/localstack.log" >&2
    exit 1
  fi
  if curl -fsS "http://127.0.0.1:$PORT/_localstack/health" 2>/dev/null | grep -q '"s3": "\(running\|available\)"'; then
    if [[ -n "$BUCKET" ]]; then
      curl -fsS -X PUT "http://127.0.0.1:$PORT/$BUCKET" > /dev/null
    fi
    echo "$PID"
    exit 0
  fi
  sleep 0.1
done
echo "start.sh: LocalStack not healthy after 60 s; see $DATA/localstack.log" >&2
"$HERE/stop.sh" "$DATA"
exit 1
