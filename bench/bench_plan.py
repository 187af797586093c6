"""Benchmark: `python -m bot plan` over generated trees, and policies over many tags.

    python bench/bench_plan.py [--files 2000] [--marked 100] [--big-files 100000]
                               [--tags 10000] [--code DIR] [--out docs/bench-plan.md]

The tree: Kubernetes YAML files (two documents each), some of them with a
``$imagepolicy`` marker for one of 20 images; the config has one semver
policy per image, and a ``--tags`` snapshot gives each image 200 tags.

Measures, each beside the stored baseline (the figures of the commit before
issue 9, on the 2-core development machine), so a regression shows:

* ``import bot.cli`` in a fresh interpreter;
* ``python -m bot plan --write`` as a subprocess, start-up included, over
  ``--files`` files (``--marked`` of them marked) and over ``--big-files``
  files (1 % marked; 0 skips it);
* the same plan in-process (walk, screen, parse and edit the marked files,
  render; no write), and the policies alone;

then each policy kind over ``--tags`` tags. Times are the best of several
runs; the edited files are restored between ``--write`` runs. ``--code DIR``
runs the subprocesses against another checkout (e.g. ``git archive`` of an
older commit), which is how the baseline was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.policy import PolicySpec, evaluate  # noqa: E402

IMAGES = 20
TAGS_PER_IMAGE = 200

#: Figures of the commit before issue 9 (61ae421), measured with this script and
#: an export of that commit (``git archive 61ae421``), on the 2-core development
#: machine: the better of two runs (the machine is shared; runs vary by up to 30 %).
BASELINE: dict[str, float] = {
    "import_ms": 262.0,
    "startup_ms": 22.0,
    "plan_write_ms": 872.0,
    "big_plan_write_ms": 7526.0,
    "inprocess_ms": 483.0,
    "policy_ms": 36.0,
}


def config_text() -> str:
    lines = ["version: 1", "namespace: flux-system", "imageRepositories:"]
    lines += [f"  - {{name: app-{k}, image: ghcr.io/example/app-{k}}}" for k in range(IMAGES)]
    lines.append("imagePolicies:")
    lines += [
        f"  - {{name: app-{k}, imageRepositoryRef: app-{k}, "
        "policy: {semver: {range: '>=1.0.0 <2'}}}"
        for k in range(IMAGES)
    ]
    lines += [
        "imageUpdateAutomations:",
        "  - {name: bench, update: {path: ./clusters, strategy: Setters}}",
    ]
    return "\n".join(lines) + "\n"


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
    'image: ghcr.io/example/app-{k}:1.0.0 # {{"$imagepolicy": "flux-system:app-{k}"}}',
)


def generate_tree(root: Path, files: int, marked: int) -> tuple[int, dict[Path, str]]:
    """Write the tree and its config; returns (bytes written, {marked file: content})."""
    rng = random.Random(42)
    marked_ids = set(rng.sample(range(files), marked))
    total = 0
    originals: dict[Path, str] = {}
    teams = max(17, files // 500)  # a few hundred files per directory
    for team in range(teams):
        (root / "clusters" / f"team-{team}").mkdir(parents=True)
    for i in range(files):
        template = MARKED if i in marked_ids else UNMARKED
        text = template.format(i=i, team=i % teams, k=i % IMAGES)
        path = root / "clusters" / f"team-{i % teams}" / f"svc-{i}.yaml"
        path.write_text(text)
        total += len(text)
        if i in marked_ids:
            originals[path] = text
    (root / ".github").mkdir()
    (root / ".github" / "image-automation.yml").write_text(config_text())
    return total, originals


def generate_tags(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    tags = {
        f"{rng.randrange(0, 3)}.{rng.randrange(0, 60)}.{rng.randrange(0, 200)}" for _ in range(n)
    }
    while len(tags) < n:
        tags.add(f"build-{len(tags)}")
    return sorted(tags)


def write_snapshot(path: Path) -> None:
    images = {
        f"ghcr.io/example/app-{k}": generate_tags(TAGS_PER_IMAGE, seed=k) for k in range(IMAGES)
    }
    path.write_text(json.dumps(images))


# -- subprocess figures -------------------------------------------------------------


def _python(code: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"python {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def bench_import(code: Path, repeats: int = 7) -> tuple[float, float]:
    """(ms to import bot.cli, ms for a bare interpreter start) in fresh interpreters."""
    probe = "import time; t = time.perf_counter(); import bot.cli; print(time.perf_counter() - t)"
    imports, starts = [], []
    for _ in range(repeats):
        imports.append(float(_python(code, "-c", probe).stdout))
        start = time.perf_counter()
        _python(code, "-c", "pass")
        starts.append(time.perf_counter() - start)
    return min(imports) * 1000, min(starts) * 1000


def bench_plan_write(
    code: Path, root: Path, tags_file: Path, originals: dict[Path, str], repeats: int
) -> float:
    """Best wall time (ms) of `python -m bot plan --write` as a subprocess."""
    times = []
    for _ in range(repeats):
        for path, text in originals.items():
            path.write_text(text)
        start = time.perf_counter()
        done = _python(code, "-m", "bot", "plan", "--write", "--tags", str(tags_file), str(root))
        times.append(time.perf_counter() - start)
        expected = f"wrote {len(originals)} file(s)"
        assert expected in done.stdout, (expected, done.stdout[:500], done.stderr[:2000])
    return min(times) * 1000


# -- in-process figures ---------------------------------------------------------------


def bench_in_process(root: Path, tags_file: Path, repeats: int = 3) -> dict[str, float]:
    """`plan` (no write) in-process, the policies alone, and the peak traced memory."""
    from bot import cli
    from bot.config import load_config
    from bot.planner import observe_policies
    from bot.snapshot import SnapshotTagSource

    config, errors = load_config((root / ".github/image-automation.yml").read_text())
    assert not errors, errors
    source = SnapshotTagSource.parse(tags_file.read_bytes(), path=str(tags_file))

    def policies() -> float:
        start = time.perf_counter()
        observation = asyncio.run(observe_policies(config, source))
        assert not observation.errors, observation.errors
        return time.perf_counter() - start

    def plan() -> float:
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        status = cli.plan(
            root, config_file=None, tags_file=tags_file, as_json=False, write=False,
            out=out, err=err,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        assert status == 0, err.getvalue()
        return elapsed

    policy_s = min(policies() for _ in range(repeats))
    plan_s = min(plan() for _ in range(repeats))
    tracemalloc.start()
    plan()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"policy_ms": policy_s * 1000, "inprocess_ms": plan_s * 1000, "peak_mib": peak / 2**20}


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


# -- report ---------------------------------------------------------------------------


def _row(label: str, key: str, figures: dict[str, float]) -> str:
    value = figures.get(key)
    if value is None:
        return f"| {label} | not measured | {BASELINE[key]:.0f} ms | |"
    base = BASELINE[key]
    change = f"{value / base:.2f}×" if base else ""
    return f"| {label} | {value:.0f} ms | {base:.0f} ms | {change} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--marked", type=int, default=100)
    parser.add_argument("--big-files", type=int, default=100_000, help="0 skips the big tree")
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout the subprocesses run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    code = args.code.resolve()

    figures: dict[str, float] = {}
    figures["import_ms"], figures["startup_ms"] = bench_import(code)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "tree")
        tags_file = Path(tmp, "tags.json")
        write_snapshot(tags_file)
        total_bytes, originals = generate_tree(root, args.files, args.marked)
        figures["plan_write_ms"] = bench_plan_write(code, root, tags_file, originals, args.repeats)
        if code == REPO:
            for path, text in originals.items():
                path.write_text(text)
            figures.update(bench_in_process(root, tags_file))
    if args.big_files:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp, "tree")
            tags_file = Path(tmp, "tags.json")
            write_snapshot(tags_file)
            big_bytes, originals = generate_tree(root, args.big_files, args.big_files // 100)
            figures["big_plan_write_ms"] = bench_plan_write(
                code, root, tags_file, originals, max(2, args.repeats // 2)
            )

    tags = generate_tags(args.tags)
    policies = bench_policies(tags)

    lines = [
        f"### `plan` over {args.files} files ({args.marked} marked, "
        f"{total_bytes / 1e6:.1f} MB), {IMAGES} images × {TAGS_PER_IMAGE} tags from `--tags`",
        "",
        "| measure | now | baseline | now / baseline |",
        "| --- | --- | --- | --- |",
        _row("`import bot.cli` (fresh interpreter)", "import_ms", figures),
        _row("bare interpreter start (`python -c pass`)", "startup_ms", figures),
        _row(
            f"`python -m bot plan --write`, {args.files} files, wall time with start-up",
            "plan_write_ms",
            figures,
        ),
        *(
            [
                _row(
                    f"`python -m bot plan --write`, {args.big_files} files "
                    f"({args.big_files // 100} marked), wall time",
                    "big_plan_write_ms",
                    figures,
                )
            ]
            if args.big_files
            else []
        ),
        _row(f"`plan` in-process, {args.files} files, no write", "inprocess_ms", figures),
        _row(f"of which policies ({IMAGES} × {TAGS_PER_IMAGE} tags)", "policy_ms", figures),
        "",
    ]
    if "peak_mib" in figures:
        lines += [f"Peak traced memory of the in-process plan: {figures['peak_mib']:.1f} MiB.", ""]
    lines += [
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
