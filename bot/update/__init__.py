"""Setters, file selection and change-list rendering: the pure core of an update (no I/O)."""

from bot.update.files import candidate_paths, normalise_update_path
from bot.update.markers import MARKER_TOKEN, has_marker, parse_marker
from bot.update.result import Change, ObjectId, Result
from bot.update.setters import (
    MAX_FILE_BYTES,
    FileUpdate,
    UpdateError,
    UpdateOutcome,
    apply_setters,
    build_setters,
    update_files,
)

__all__ = [
    "MARKER_TOKEN",
    "MAX_FILE_BYTES",
    "Change",
    "FileUpdate",
    "ObjectId",
    "Result",
    "UpdateError",
    "UpdateOutcome",
    "apply_setters",
    "build_setters",
    "candidate_paths",
    "has_marker",
    "normalise_update_path",
    "parse_marker",
    "update_files",
]
