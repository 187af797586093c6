"""Benchmark: the setters on one marked 2 KB file, and on 1,000 of them.

    python bench/bench_setters.py [--files 1000] [--repeats 5]

Times `bot.update.apply_setters` (parse, find markers, edit in place, self-check)
on a generated multi-document manifest of about 2 KB with three marked values,
two of which change. Prints each figure beside `BASELINE`, measured on this
2-core machine with the ruamel.yaml setters of before issue 9, so a regression
shows. Timings are the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.update import apply_setters  # noqa: E402

#: Measured with the pure-Python (ruamel.yaml) setters of before issue 9 (commit 61ae421),
#: on this 2-core machine, with this script: the best of runs.
BASELINE = {"per file (ms)": 8.5, "1,000 files (s)": 8.7}

DOC = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  namespace: team-{i}
  labels: {{app: svc-{i}, tier: backend, owner: "platform-team"}}
  annotations:
    description: >-
      The backend service number {i}, which answers the public API and talks
      to the database through the connection pool configured below.
spec:
  replicas: 3
  selector:
    matchLabels: {{app: svc-{i}}}
  template:
    metadata:
      labels: {{app: svc-{i}, tier: backend}}
    spec:
      # The main container; the sidecar follows.
      containers:
        - name: main
          image: ghcr.io/example/app:1.0.0 # {{"$imagepolicy": "flux-system:app"}}
          args: ["--port=8080", "--log-level=info", "--db=postgres://db:5432/app"]
          env:
            - {{name: MODE, value: production}}
            - {{name: REGION, value: eu-west-1}}
          resources:
            limits: {{cpu: 500m, memory: 256Mi}}
            requests: {{cpu: 100m, memory: 128Mi}}
        - name: sidecar
          image: ghcr.io/example/proxy:2.3.1 # {{"$imagepolicy": "flux-system:proxy"}}
          ports:
            - containerPort: 15001
              name: proxy
      initContainers:
        - name: migrate
          image: ghcr.io/example/app:1.0.0
          command: ["/app", "migrate", "--to=latest"]
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
  namespace: team-{i}
spec:
  selector: {{app: svc-{i}}}
  ports:
    - {{port: 80, targetPort: 8080, protocol: TCP}}
    - {{port: 443, targetPort: 8443, protocol: TCP}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: svc-{i}-config
data:
  tag: "1.0.0" # {{"$imagepolicy": "flux-system:app:tag"}}
  LOG_FORMAT: json
  FEATURES: "search,export,import,audit"
"""

SETTERS = {
    "flux-system:app": "ghcr.io/example/app:1.4.2",
    "flux-system:app:tag": "1.4.2",
    "flux-system:proxy": "ghcr.io/example/proxy:2.3.1",  # unchanged
}


def files(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        text = DOC.format(i=i)
        text += "#" * max(0, 2048 - len(text) - 1) + "\n"  # pad every file to 2 KB
        out.append(text.encode())
    return out


def best(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    contents = files(args.files)
    check = apply_setters("f.yaml", contents[0], SETTERS)
    assert check.content is not None and not check.warnings, check.warnings
    assert len(check.changes) == 2, check.changes

    one = contents[0]
    per_file = best(lambda: [apply_setters("f.yaml", one, SETTERS) for _ in range(200)], 3) / 200
    many = best(lambda: [apply_setters("f.yaml", c, SETTERS) for c in contents], args.repeats)
    figures = {"per file (ms)": per_file * 1e3, f"{args.files:,} files (s)": many}
    print(f"file size: {len(one)} bytes; {len(check.changes)} changes of 3 marked values")
    print(f"{'what':<20} {'now':>10} {'baseline':>10}")
    for name, value in figures.items():
        base = BASELINE.get(name)
        shown = f"{base:.3f}" if base is not None else "-"
        print(f"{name:<20} {value:>10.3f} {shown:>10}")


if __name__ == "__main__":
    main()
