"""Where the tests' read-only reference data lives: ``tests/data`` (see its README.md)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
FLUX_FIXTURES = DATA / "flux"
GITHUB_DATA = DATA / "github"
