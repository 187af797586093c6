"""The command line (design §6): ``serve``, ``plan`` and ``check-config``.

Exit status: 0 success, 1 policy or update errors, 2 config errors (or a
command that cannot start: a missing config, an unreadable tags file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from bot import localtree
from bot.config import CONFIG_PATH, Config, load_config
from bot.planner import (
    AutomationPlan,
    Observation,
    observe_policies,
    plan_automation,
    update_path_problem,
)
from bot.problems import Problem
from bot.snapshot import SnapshotError, SnapshotTagSource
from bot.update import UpdateError
from bot.update.files import candidate_filter, normalise_update_path

if TYPE_CHECKING:
    from bot.registry.credentials import CredentialStore

# The registry client (aiohttp and the rest) is imported only when a plan scans
# registries: `plan --tags` and `check-config` never load it (tests/cli/test_plan_imports.py).

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
ALL_POLICIES = "*"  # `plan --explain` without a policy's name

T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "serve"):
        from bot.server import main as serve_main

        return serve_main(_environment())
    if args.command == "register":
        return _register(args)
    if args.command == "run":
        from bot.run import main as run_main

        return run_main(args.repository)
    if args.command == "check-config":
        return check_config(Path(args.path), out=sys.stdout, err=sys.stderr)
    logging_set = _log_for_plan(verbose=args.verbose, environ=os.environ, err=sys.stderr)
    if logging_set is None:
        return EXIT_CONFIG
    return plan(
        Path(args.path),
        config_file=Path(args.config) if args.config else None,
        tags_file=Path(args.tags) if args.tags else None,
        as_json=args.json,
        write=args.write,
        explain=args.explain,
        out=sys.stdout,
        err=sys.stderr,
        # Log lines would break the progress line; with them, they say what happens.
        progress=not logging_set,
    )


def _environment() -> dict[str, str]:
    """The environment, over the variables of ``ENV_FILE`` (``.env``) if there is one:
    what `register` wrote. A variable set in the environment wins."""
    from dotenv import dotenv_values

    env_file = Path(os.environ.get("ENV_FILE") or ".env")
    from_file = dotenv_values(env_file) if env_file.is_file() else {}
    return {**{k: v for k, v in from_file.items() if v is not None}, **os.environ}


def _register(args: argparse.Namespace) -> int:
    import asyncio

    from bot.github.auth import DEFAULT_API_URL
    from bot.register import RegisterError, register

    try:
        asyncio.run(
            register(
                Path(args.manifest),
                org=args.org,
                webhook_url=args.webhook_url,
                github_url=args.github_url,
                api_url=args.api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
                env_file=Path(args.env_file),
                port=args.port,
                open_browser=not args.no_browser,
                out=sys.stdout,
            )
        )
    except RegisterError as exc:
        print(f"register: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILED
    return EXIT_OK


def _log_for_plan(*, verbose: bool, environ: Mapping[str, str], err: TextIO) -> bool | None:
    """`-v` (debug) or ``LOG_LEVEL``: log lines on stderr, as `serve` writes them.

    True when logging was set up, False when neither asks for it (only warnings reach
    stderr, unformatted), None when ``LOG_FORMAT`` is unusable.
    """
    level = "debug" if verbose else environ.get("LOG_LEVEL", "").strip()
    if not level:
        return False
    from bot.logs import configure_logging  # structlog: only for a plan that logs

    try:
        configure_logging({**environ, "LOG_LEVEL": level})
    except ValueError as exc:
        print(f"cannot log: {exc}", file=err)
        return None
    return True


def _program() -> str:
    """How the user ran us: ``image-automation-bot`` (the installed script) or ``python -m bot``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m bot" if name in ("", "__main__.py", "-c") else name


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("image-automation-bot")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed)"


class _Version(argparse.Action):
    """``--version``; the package metadata is read only when asked (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"image-automation-bot {_version()}")
        parser.exit()


class _ServeHelp(argparse.Action):
    """``serve --help``: the usage, then every environment variable with its default.

    The table (`bot.settings`) names the server's modules, so it is loaded only here.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show this help and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from bot.settings import help_text

        parser.print_help()
        print(f"\n{help_text()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_program(),
        description="Keeps container images in YAML up to date, with Flux $imagepolicy markers.",
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser(
        "serve",
        help="webhook server and scheduler (the default)",
        description="Serve the GitHub App: webhooks, the schedule, the reconciles. "
        "It is configured by environment variables only.",
        add_help=False,
    )
    serve.add_argument("-h", "--help", action=_ServeHelp)

    plan_cmd = commands.add_parser(
        "plan", help="show the pull request each automation would open for a directory"
    )
    plan_cmd.add_argument("path", nargs="?", default=".", help="directory of manifests (default .)")
    plan_cmd.add_argument("--config", help=f"config file (default PATH/{CONFIG_PATH})")
    plan_cmd.add_argument(
        "--tags", help="JSON snapshot of tags (and digests) instead of registries"
    )
    plan_cmd.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan_cmd.add_argument("--write", action="store_true", help="apply the edits to the files")
    plan_cmd.add_argument(
        "--explain",
        nargs="?",
        const=ALL_POLICIES,
        metavar="POLICY",
        help="show why each policy (or POLICY) picks its tag: the tags, their keys, "
        "which were dropped and why, the winner",
    )
    plan_cmd.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens (LOG_LEVEL=debug)"
    )

    run = commands.add_parser(
        "run",
        help="reconcile one repository with GITHUB_TOKEN, without App, server or database",
        description="One reconcile of one repository (GitHub Actions: action.yml), with the "
        "token in GITHUB_TOKEN; GITHUB_API_URL for GitHub Enterprise Server.",
    )
    run.add_argument(
        "--repository", help="OWNER/REPO (default: GITHUB_REPOSITORY, as Actions sets it)"
    )

    reg = commands.add_parser(
        "register",
        help="register the GitHub App from app.yml (GitHub's manifest flow) and write .env",
        description="Serve a page on 127.0.0.1 whose form registers the App on GitHub; "
        "GitHub sends the browser back here, and the App's id, key and webhook secret are "
        "written for `serve` (ENV_FILE, .env).",
    )
    reg.add_argument("--org", help="register it for this organisation (default: your account)")
    reg.add_argument(
        "--webhook-url", help="where GitHub sends webhooks: https://HOST/api/github/webhooks"
    )
    reg.add_argument("--manifest", default="app.yml", help="the App manifest (default app.yml)")
    reg.add_argument(
        "--github-url",
        default="https://github.com",
        help="GitHub's web address (Enterprise Server: https://HOST)",
    )
    reg.add_argument("--api-url", help="GitHub's API (default GITHUB_API_URL or api.github.com)")
    reg.add_argument("--env-file", default=".env", help="where to write the variables (.env)")
    reg.add_argument("--port", type=int, default=0, help="the local page's port (default: any)")
    reg.add_argument("--no-browser", action="store_true", help="print the page's address only")

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument(
        "path", nargs="?", default=".", help=f"directory (uses {CONFIG_PATH}) or file"
    )
    return parser


def check_config(path: Path, *, out: TextIO, err: TextIO) -> int:
    """A directory is a repository: its config file and the Flux manifests it names (or,
    with no config file, those found in it). A file is a config file, its repository
    the directory above its ``.github/`` (else the current one)."""
    config_file = path / CONFIG_PATH if path.is_dir() else path
    root = path if path.is_dir() else _root_of(config_file)
    loaded = _load(root, config_file, explicit=not path.is_dir(), err=err)
    if loaded is None:
        return EXIT_CONFIG
    config, problems = loaded
    errors = [p for p in problems if p.is_error]
    for error in errors:
        print(error, file=err)
    if errors:
        print(f"{len(errors)} error(s) in {_source_name(config_file, config)}", file=err)
        return EXIT_CONFIG
    warnings = [p for p in problems if not p.is_error]
    if path.is_dir():
        # The repository is at hand: read its marked files as a plan would, without
        # registries, and say what a plan would warn about (markers that name no policy,
        # values their setter can't have written, update paths that hold nothing).
        plans, read_warnings = _plan_all(path, config, Observation())
        warnings += read_warnings + [w for plan in plans for w in plan.warnings]
    for problem in dict.fromkeys(warnings):
        print(f"{problem.severity}: {problem}", file=err)
    print(
        f"{_source_name(config_file, config)}: ok ({len(config.repositories)} image "
        f"repositories, {len(config.policies)} policies, {len(config.automations)} automations)",
        file=out,
    )
    return EXIT_OK


def _source_name(config_file: Path, config: Config) -> str:
    """What the config was read from: the file, and the Flux manifests if any."""
    manifests = config.manifest_files()
    if not manifests:
        return str(config_file)
    files = f"{len(manifests)} Flux manifest{'s' if len(manifests) > 1 else ''}"
    return f"{config_file} and {files}" if config_file.exists() else files


def _root_of(config_file: Path) -> Path:
    """The repository a config file is in: above its ``.github/``, else the current directory."""
    parent = config_file.parent
    return parent.parent if parent.name == ".github" else Path(".")


def plan(
    root: Path,
    *,
    config_file: Path | None,
    tags_file: Path | None,
    as_json: bool,
    write: bool,
    out: TextIO,
    err: TextIO,
    progress: bool = True,
    explain: str | None = None,
) -> int:
    """`progress`: show the registry scans' progress on `err` if it is a terminal."""
    if not root.is_dir():
        print(f"{root}: not a directory; give the directory that holds your manifests", file=err)
        return EXIT_CONFIG
    explicit = config_file is not None
    config_file = config_file or root / CONFIG_PATH
    loaded = _load(root, config_file, explicit=explicit, err=err)
    if loaded is None:
        return EXIT_CONFIG
    config, config_problems = loaded
    config_errors = [p for p in config_problems if p.is_error]

    if tags_file is not None:
        snapshot = _snapshot_source(tags_file, err=err)
        if snapshot is None:
            return EXIT_CONFIG
        observation = _without_event_loop(observe_policies(config, snapshot))
    else:
        credentials = _credentials(err=err)
        if credentials is None:
            return EXIT_CONFIG
        import asyncio  # only a plan that scans registries waits on I/O

        observation = asyncio.run(
            _observe_registries(config, credentials, err=err if progress else None)
        )
    explanations: dict[str, str] = {}
    if explain is not None:
        if explain != ALL_POLICIES and explain not in config.policies:
            print(f"--explain: no policy named {explain!r} in the config", file=err)
            return EXIT_CONFIG
        explanations = _explanations(config, observation, explain)
    plans, read_warnings = _plan_all(root, config, observation)

    if write:
        localtree.write_files(root, {p: c for plan in plans for p, c in plan.edited.items()})

    errors = [*config_errors, *observation.errors.values(), *(e for p in plans for e in p.errors)]
    # Automations over the same files see the same bad files: say each once.
    warnings = [p for p in config_problems if not p.is_error]
    warnings += read_warnings + [w for plan in plans for w in plan.warnings]
    warnings = list(dict.fromkeys(warnings))
    if as_json:
        document = _plan_json(observation, plans, errors, warnings)
        if explain is not None:
            document["explanations"] = explanations
        json.dump(document, out, indent=2)
        out.write("\n")
    else:
        for text in explanations.values():
            print(text + "\n", file=out)
        _print_plans(observation, plans, errors, warnings, wrote=write, out=out, err=err)

    if config_errors:
        return EXIT_CONFIG
    if observation.errors or any(plan.errors for plan in plans):
        return EXIT_FAILED
    return EXIT_OK


def _explanations(config: Config, observation: Observation, which: str) -> dict[str, str]:
    """`--explain`: each policy's (or one's) explanation, from the tags the plan saw."""
    from bot.policy.explain import explain
    from bot.policy.model import PolicyError

    texts = {}
    for name in sorted(config.policies) if which == ALL_POLICIES else [which]:
        policy = config.policies[name]
        tags = observation.tags.get(policy.repository)
        if tags is None:
            texts[name] = f"policy {name}: no tags: {observation.errors[name].message}"
            continue
        try:
            too_young = observation.too_young.get(name, ())
            texts[name] = explain(name, policy.spec, tags, too_young=too_young).text()
        except PolicyError as exc:
            texts[name] = f"policy {name}: {exc}"
    return texts


def _load(
    root: Path, config_file: Path, *, explicit: bool, err: TextIO
) -> tuple[Config, list[Problem]] | None:
    """The config of the repository at ``root``: the file, and the Flux manifests it lists.

    With no config file (and none named on the command line), the Flux image objects
    found anywhere under ``root`` are the config, as `serve` does.
    """
    from bot.config.manifests import manifest_paths, mentions_flux_objects, too_large
    from bot.config.yaml import MAX_MANIFEST_BYTES

    try:
        text: bytes | None = config_file.read_bytes()
    except FileNotFoundError:
        if explicit:
            print(f"{config_file}: no such config file", file=err)
            return None
        text = None
    except OSError as exc:
        print(f"{config_file}: cannot be read: {exc.strerror or exc}", file=err)
        return None
    patterns = None
    if text is not None:
        alone = load_config(text, path=str(config_file))
        if not alone[0].flux_manifests:
            return alone
        patterns = alone[0].flux_manifests
    skipped: list[Problem] = []
    paths = []
    for path in manifest_paths(patterns, localtree.list_files(root)) if root.is_dir() else []:
        if (root / path).is_symlink():
            continue  # as `serve`: links are not followed for Flux objects
        size = (root / path).stat().st_size
        if size <= MAX_MANIFEST_BYTES:
            paths.append(path)
        elif patterns is not None:
            skipped.append(too_large(path, size))
    found, unreadable = localtree.read_candidates(root, paths, keep=mentions_flux_objects)
    if text is None and not found:
        print(
            f"{config_file}: no config file, and no Flux image objects under {root}; "
            "create it (see docs/config.md), point --config at one, or add Flux manifests",
            file=err,
        )
        return None
    config, problems = load_config(text, path=str(config_file), manifests=found)
    return config, problems + skipped + unreadable


def _without_event_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (a plan over a tags file) without asyncio.

    Importing asyncio costs a `plan --tags` a sixth of its time, and nothing in
    it suspends: every tag and digest comes from memory.
    """
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    coroutine.close()
    raise RuntimeError("a plan over a tags file waited on I/O")


def _snapshot_source(tags_file: Path, *, err: TextIO) -> SnapshotTagSource | None:
    try:
        return SnapshotTagSource.parse(tags_file.read_bytes(), path=str(tags_file))
    except OSError as exc:
        print(f"{tags_file}: cannot be read: {exc.strerror or exc}", file=err)
    except SnapshotError as exc:
        print(exc, file=err)
    return None


def _credentials(*, err: TextIO) -> CredentialStore | None:
    """Operator credentials from ``REGISTRY_CREDENTIALS`` (design §7); none is fine."""
    from bot.registry.credentials import CredentialStore
    from bot.registry.errors import RegistryError

    try:
        return CredentialStore.load(os.environ.get("REGISTRY_CREDENTIALS") or None)
    except RegistryError as exc:
        print(exc, file=err)
        return None


async def _observe_registries(
    config: Config, credentials: CredentialStore, *, err: TextIO | None
) -> Observation:
    from bot.progress import ScanProgress
    from bot.registry.addresses import registry_session
    from bot.registry.scanner import RegistryScanner
    from bot.registry.source import RegistryTagSource

    progress = ScanProgress.for_terminal(err) if err is not None else None
    # No address policy (issue 8 §2 is for `serve`): whoever runs a plan picked its
    # registries, and one on localhost:5000 must work.
    async with registry_session(None) as session:
        scanner = RegistryScanner(session, credentials)
        # A local plan acts for no GitHub repository: only unrestricted credentials apply.
        source = RegistryTagSource(scanner, github_repository=None, progress=progress)
        try:
            return await observe_policies(config, source)
        finally:
            if progress is not None:
                progress.close()


def _plan_all(
    root: Path, config: Config, observation: Observation
) -> tuple[list[AutomationPlan], list[Problem]]:
    """Every automation's plan over the files under ``root``, and the files' warnings."""
    files, read_warnings = _read_tree(root, config)
    plans = [
        plan_automation(
            config, config.automations[name], observation, files, repository=root.resolve().name
        )
        for name in sorted(config.automations)
    ]
    return plans, read_warnings


def _read_tree(root: Path, config: Config) -> tuple[dict[str, bytes], list[Problem]]:
    """The marked files any automation reads, in one walk; and the warnings about them.

    Besides the files that cannot be read, a warning for each automation whose
    update.path can change nothing (`update_path_problem`).
    """
    filters = []
    update_roots = set()
    for automation in config.automations.values():
        try:
            filters.append(candidate_filter(automation.update_path))
            update_roots.add(normalise_update_path(automation.update_path))
        except UpdateError:
            continue  # an update.path outside the tree: `plan_automation` reports it
    listed: set[str] = set()  # every file the setters may read, and update paths that are files

    def select(path: str) -> bool:
        selected = any(relative(path) is not None for relative in filters)
        if selected or path in update_roots:
            listed.add(path)
        return selected

    def descend(directory: str) -> bool:
        """Could anything below ``directory`` be under some update.path?"""
        inside = directory + "/"
        return any(
            top == directory or top.startswith(inside) or directory.startswith(top + "/")
            for top in update_roots
        )

    files, warnings = localtree.scan(root, select, descend=None if "" in update_roots else descend)
    found = (update_path_problem(config, a, listed) for _, a in sorted(config.automations.items()))
    return files, warnings + [problem for problem in found if problem is not None]


def _plan_json(
    observation: Observation,
    plans: list[AutomationPlan],
    errors: list[Problem],
    warnings: list[Problem],
) -> dict[str, Any]:
    return {
        "observedPolicies": {n: ref.to_json() for n, ref in sorted(observation.latest.items())},
        "policyErrors": {n: p.message for n, p in sorted(observation.errors.items())},
        "automations": {
            plan.name: {
                "result": plan.result.to_json(),
                "commitMessage": plan.commit_message,
                "title": plan.title,
                "body": plan.body(),
            }
            for plan in plans
        },
        # design §6: "<path>:<line>:<col>: <message>"; `problems` has the same, typed.
        "errors": [str(e) for e in errors if e not in observation.errors.values()],
        "warnings": [str(w) for w in warnings],
        "problems": [p.to_json() for p in [*errors, *warnings]],
    }


def _print_plans(
    observation: Observation,
    plans: list[AutomationPlan],
    errors: list[Problem],
    warnings: list[Problem],
    *,
    wrote: bool,
    out: TextIO,
    err: TextIO,
) -> None:
    policy_problems = set(observation.errors.values())
    for name, problem in sorted(observation.errors.items()):
        print(f"policy {name}: {problem.message}", file=err)
    for error in errors:
        if error not in policy_problems:
            print(error, file=err)
    for warning in warnings:
        print(f"{warning.severity}: {warning}", file=err)

    for plan in plans:
        if not plan.result:
            print(f"== {plan.name}: nothing to change", file=out)
            continue
        if plan.pr_state is None or not plan.commit_message:
            print(f"== {plan.name}: not proposed: a template failed (see errors)", file=out)
            continue
        files = len(plan.edited)
        action = "wrote" if wrote else "would change"
        print(f"== {plan.name}: {action} {files} file(s)", file=out)
        print(f"Title: {plan.title}", file=out)
        print(f"Commit message: {plan.commit_message}", file=out)
        print("", file=out)
        print(plan.body().rstrip("\n"), file=out)
        print("", file=out)
