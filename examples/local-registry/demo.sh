#!/usr/bin/env bash
# Try `plan` against a real registry on this machine:
#   apt-get install -y docker-registry && bash examples/local-registry/demo.sh
# Starts Debian's docker-registry on 127.0.0.1:5000 with a throw-away config,
# pushes a few synthetic images, and runs `python -m bot plan` (no --tags).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$(mktemp -d)
cat > "$data/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $data/storage}}
http: {addr: 127.0.0.1:5000, secret: demo-only}
YAML
docker-registry serve "$data/config.yml" >"$data/registry.log" 2>&1 &
registry=$!
trap 'kill $registry; wait $registry 2>/dev/null; rm -rf "$data"' EXIT
until python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/v2/')" 2>/dev/null; do
  sleep 0.1
done

push() { python3 -m tests.registryharness.push 127.0.0.1:5000 demo/podinfo "$@"; }
push 4.0.6
push 5.0.0
push 5.0.3
push 6.0.0 latest   # latest and 6.0.0 are the same image

python3 -m bot plan examples/local-registry "$@"
