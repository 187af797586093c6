"""Run the simulator standalone: `python -m tests.githubsim --port P [--data DIR]`."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from aiohttp import web

from .sim import GitHubSim


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.githubsim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument(
        "--data", type=Path, help="where git repositories live (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with tempfile.TemporaryDirectory(prefix="githubsim-") as tmp:
        sim = GitHubSim(args.data or Path(tmp))
        print(f"GitHub simulator on http://{args.host}:{args.port} (data: {sim.root})", flush=True)
        web.run_app(sim.make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
