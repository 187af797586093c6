"""Benchmark: Flux manifests as config (issue 11 §1), as the work grows.

    python bench/bench_manifests.py [--objects 10,100,1000] [--files 1000,10000] [--repeats 5]

Two figures, pure CPU (no I/O), the best of ``--repeats`` runs:

* **screening**: a repository with no config file, N YAML files of about 2 KB of
  which none holds a Flux object: the time to decide which to parse
  (`mentions_flux_objects`), what `serve` spends when such a repository's YAML
  changes;
* **loading**: K sets of ImageRepository + ImagePolicy + ImageUpdateAutomation in
  one manifest per set: `load_config` of them all, what a changed config costs
  (an unchanged one is served from the parsed-config cache).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_config  # noqa: E402
from bot.config.manifests import mentions_flux_objects  # noqa: E402

OBJECTS = """\
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {{name: app-{i}, namespace: flux-system}}
spec:
  image: ghcr.io/example/app-{i}
  interval: 5m
  secretRef: {{name: ghcr}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {{name: app-{i}, namespace: flux-system, labels: {{team: t{i}}}}}
spec:
  imageRepositoryRef: {{name: app-{i}}}
  filterTags: {{pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts'}}
  policy: {{numerical: {{order: asc}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: app-{i}, namespace: flux-system}}
spec:
  interval: 30m
  sourceRef: {{kind: GitRepository, name: flux-system}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit:
      author: {{email: bot@example.com, name: bot}}
      messageTemplate: |
        {{{{ range $f, $_ := .Changed.FileChanges -}}}}
        - {{{{ $f }}}}
        {{{{ end -}}}}
    push: {{branch: updates-{i}}}
  update: {{path: ./apps/app-{i}}}
  policySelector: {{matchLabels: {{team: t{i}}}}}
"""

PLAIN = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\nspec:\n"
    "  template:\n    spec:\n      containers:\n"
    + "".join(
        f"        - name: c{n}\n          image: ghcr.io/example/app:1.0.{n}\n"
        "          args: ['--port=8080', '--log-level=info']\n"
        for n in range(20)
    )
)


def best(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", default="10,100,1000")
    parser.add_argument("--files", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print("| YAML files screened | bytes | time (ms) | per file (µs) |")
    print("| --- | --- | --- | --- |")
    for count in (int(n) for n in args.files.split(",")):
        files = [PLAIN.format(i=i).encode() for i in range(count)]
        seconds = best(args.repeats, lambda files=files: [mentions_flux_objects(f) for f in files])
        size = sum(map(len, files))
        print(f"| {count:,} | {size:,} | {seconds * 1e3:.1f} | {seconds / count * 1e6:.2f} |")

    print()
    print("| object sets (3 objects each) | manifest bytes | load_config (ms) | per set (ms) |")
    print("| --- | --- | --- | --- |")
    for count in (int(n) for n in args.objects.split(",")):
        manifests = {
            f"clusters/prod/app-{i}.yaml": OBJECTS.format(i=i).encode() for i in range(count)
        }
        config, problems = load_config(None, manifests=manifests)
        assert len(config.automations) == count, [p for p in problems if p.is_error][:3]
        seconds = best(args.repeats, lambda m=manifests: load_config(None, manifests=m))
        size = sum(map(len, manifests.values()))
        print(f"| {count:,} | {size:,} | {seconds * 1e3:.1f} | {seconds / count * 1e3:.2f} |")


if __name__ == "__main__":
    main()
