#!/usr/bin/env bash
# Try `plan` against a real registry on this machine:
#   apt-get install -y docker-registry && bash examples/local-registry/demo.sh
# Starts Debian's docker-registry on 127.0.0.1:5000 with a throw-away config,
# pushes a few synthetic images, and runs `python -m bot plan` (no --tags).
# Works from a fresh shell: it uses the checkout's .venv, and makes it if there is none.
# Exits with plan's status, and leaves nothing behind (registry stopped, files removed).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v docker-registry >/dev/null; then
  echo "docker-registry is not installed: apt-get install -y docker-registry" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "making .venv (python3 -m venv .venv && pip install -e .) ..." >&2
  python3 -m venv .venv
  .venv/bin/pip install -q -e .
fi
python=.venv/bin/python
if "$python" -c "import socket; socket.create_connection(('127.0.0.1', 5000), 1)" 2>/dev/null; then
  echo "something already listens on 127.0.0.1:5000, which the demo's config names; stop it first" >&2
  exit 2
fi

data=$(mktemp -d)
registry=""
cleanup() {
  if [ -n "$registry" ]; then
    kill "$registry" 2>/dev/null || true
    wait "$registry" 2>/dev/null || true  # it dies of our SIGTERM: not the demo's status
  fi
  rm -rf "$data"
}
trap cleanup EXIT

cat > "$data/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $data/storage}}
http: {addr: 127.0.0.1:5000, secret: demo-only}
YAML
docker-registry serve "$data/config.yml" >"$data/registry.log" 2>&1 &
registry=$!
for _ in $(seq 100); do
  "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/v2/')" \
    2>/dev/null && break
  sleep 0.1
done

push() { "$python" -m tests.registryharness.push 127.0.0.1:5000 demo/podinfo "$@"; }
push 4.0.6
push 5.0.0
push 5.0.3
push 6.0.0 latest   # latest and 6.0.0 are the same image

status=0
"$python" -m bot plan examples/local-registry "$@" || status=$?
exit "$status"
