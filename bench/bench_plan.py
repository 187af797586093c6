"""Benchmark: `plan` over a generated tree, and policies over many tags.

    python bench/bench_plan.py [--files 2000] [--marked 100] [--tags 10000] [--out docs/bench-plan.md]

Measures the same code path as `python -m bot plan`: walking the tree,
screening files on the marker bytes, parsing and editing only the marked
ones, and rendering the PR body; then each policy kind over N tags.
Reports files/s, MB/s, milliseconds and peak traced memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import localtree  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.planner import automation_paths, observe_policies, plan_automation  # noqa: E402
from bot.policy import PolicySpec, evaluate  # noqa: E402
from bot.snapshot import SnapshotTagSource  # noqa: E402

CONFIG = """\
version: 1
namespace: flux-system
imageRepositories:
  - {name: app, image: ghcr.io/example/app}
imagePolicies:
  - {name: app, imageRepositoryRef: app, policy: {semver: {range: '>=1.0.0 <2'}}}
imageUpdateAutomations:
  - {name: bench, update: {path: ./clusters, strategy: Setters}}
"""

UNMARKED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  namespace: team-{team}
  labels: {{app: svc-{i}, tier: backend}}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: main
          image: registry.example.com/svc-{i}:1.{i}.0
          args: ["--port=8080", "--log-level=info"]
          resources:
            limits: {{cpu: 500m, memory: 256Mi}}
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
spec:
  ports:
    - port: 80
      targetPort: 8080
"""
MARKED = UNMARKED.replace(
    "image: registry.example.com/svc-{i}:1.{i}.0",
    'image: ghcr.io/example/app:1.0.0 # {{"$imagepolicy": "flux-system:app"}}',
)


def generate_tree(root: Path, files: int, marked: int) -> int:
    rng = random.Random(42)
    marked_ids = set(rng.sample(range(files), marked))
    total = 0
    for i in range(files):
        text = (MARKED if i in marked_ids else UNMARKED).format(i=i, team=i % 17)
        path = root / "clusters" / f"team-{i % 17}" / f"svc-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        total += len(text)
    (root / ".github").mkdir()
    (root / ".github" / "image-automation.yml").write_text(CONFIG)
    return total


def generate_tags(n: int) -> list[str]:
    rng = random.Random(7)
    tags = {
        f"{rng.randrange(0, 3)}.{rng.randrange(0, 60)}.{rng.randrange(0, 200)}" for _ in range(n)
    }
    while len(tags) < n:
        tags.add(f"build-{len(tags)}")
    return sorted(tags)


def _run_plan(root: Path, config, source) -> tuple[float, float, int]:
    """One `plan` pass: (policy seconds, files seconds, files edited)."""
    start = time.perf_counter()
    observation = asyncio.run(observe_policies(config, source))
    observed = time.perf_counter()
    automation = config.automations["bench"]
    paths = automation_paths(automation, localtree.list_files(root))
    contents, _ = localtree.read_candidates(root, paths)
    plan = plan_automation(config, automation, observation, contents, repository="bench")
    done = time.perf_counter()
    assert not plan.errors, plan.errors
    return observed - start, done - observed, len(plan.edited)


def bench_plan(files: int, marked: int, tags: list[str], repeats: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total_bytes = generate_tree(root, files, marked)
        config, errors = load_config((root / ".github/image-automation.yml").read_text())
        assert not errors, errors
        source = SnapshotTagSource.parse(json.dumps({"ghcr.io/example/app": tags}), path="tags")

        # Time without tracing (tracemalloc slows Python several-fold), best of N...
        runs = [_run_plan(root, config, source) for _ in range(repeats)]
        policy_s = min(r[0] for r in runs)
        files_s = min(r[1] for r in runs)
        assert all(r[2] == marked for r in runs), runs
        # ...then one traced pass for the peak memory.
        tracemalloc.start()
        _run_plan(root, config, source)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    return {
        "files": files,
        "marked": marked,
        "bytes": total_bytes,
        "policy_ms": policy_s * 1000,
        "files_ms": files_s * 1000,
        "files_per_s": files / files_s,
        "mb_per_s": total_bytes / files_s / 1e6,
        "peak_mib": peak / 2**20,
    }


def bench_policies(tags: list[str]) -> list[tuple[str, float, str]]:
    numeric = [str(i) for i in range(len(tags))]
    cases = [
        ("semver >=1.0.0 <2", PolicySpec(kind="semver", semver_range=">=1.0.0 <2"), tags),
        (
            "semver 1.x || >=2.0.0-0",
            PolicySpec(kind="semver", semver_range="1.x || >=2.0.0-0"),
            tags,
        ),
        ("alphabetical asc", PolicySpec(kind="alphabetical"), tags),
        ("numerical asc", PolicySpec(kind="numerical"), numeric),
        (
            "filterTags + numerical",
            PolicySpec(kind="numerical", filter_pattern=r"^(?P<n>[0-9]+)$", filter_extract="$n"),
            numeric,
        ),
    ]
    rows = []
    for label, spec, tag_list in cases:
        start = time.perf_counter()
        ref = asyncio.run(evaluate(spec, "ghcr.io/example/app", tag_list))
        rows.append((label, (time.perf_counter() - start) * 1000, ref.tag))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--marked", type=int, default=100)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    tags = generate_tags(args.tags)
    plan = bench_plan(args.files, args.marked, tags)
    policies = bench_policies(tags)

    lines = [
        f"### plan over {plan['files']} files ({plan['marked']} with markers, "
        f"{plan['bytes'] / 1e6:.1f} MB), policy over {len(tags)} tags",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| policies evaluated (scan snapshot + semver over {len(tags)} tags) | {plan['policy_ms']:.1f} ms |",
        f"| walk {plan['files']} files + screen + parse/edit {plan['marked']} + render | {plan['files_ms']:.1f} ms |",
        f"| files/s | {plan['files_per_s']:,.0f} |",
        f"| MB/s | {plan['mb_per_s']:.1f} |",
        f"| peak traced memory | {plan['peak_mib']:.1f} MiB |",
        "",
        f"### one policy over {len(tags)} tags",
        "",
        "| policy | ms | picked |",
        "| --- | --- | --- |",
        *(f"| {label} | {ms:.1f} | `{tag}` |" for label, ms, tag in policies),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
