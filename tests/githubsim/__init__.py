"""An offline GitHub REST simulator for the bot's tests (Python API and `/_sim/` admin API
are documented in README.md)."""

from .sim import GitHubSim

__all__ = ["GitHubSim"]
