"""Where the read-only reference data lives: ``shared/`` beside the checkout."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FLUX_FIXTURES = SHARED / "peer-fixtures" / "flux"
GITHUB_DATA = SHARED / "github"
