"""Progress: which exercises the learner passed, kept in a small JSON file.

The file is written atomically and only on a first pass; a read-only home directory or
a corrupt file never breaks an exercise. ``LESSONS_PROGRESS=off`` turns it off.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lessons.exercises.framework import registry

__all__ = ["Progress", "progress", "progress_file", "record_pass"]


def progress_file() -> Path | None:
    """Where progress is kept, or None when LESSONS_PROGRESS=off.

    LESSONS_PROGRESS_FILE overrides the place; else ``$LESSONS_DATA_DIR/progress.json``;
    else ``progress.json`` in the user's data directory (platformdirs).
    """
    if os.environ.get("LESSONS_PROGRESS", "").strip().lower() in ("off", "0", "false", "no"):
        return None
    if os.environ.get("LESSONS_PROGRESS_FILE"):
        return Path(os.environ["LESSONS_PROGRESS_FILE"]).expanduser()
    if os.environ.get("LESSONS_DATA_DIR"):
        return Path(os.environ["LESSONS_DATA_DIR"]).expanduser() / "progress.json"
    import platformdirs

    return Path(platformdirs.user_data_dir("lessons")) / "progress.json"


def _load_progress(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    passed = data.get("passed", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in passed.items()} if isinstance(passed, dict) else {}


def record_pass(exercise_id: str) -> None:
    """Note the first pass of an exercise; written atomically, never failing the check."""
    path = progress_file()
    if path is None:
        return
    passed = _load_progress(path)
    if exercise_id in passed:
        return
    passed[exercise_id] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=".progress-", delete=False
        ) as tmp:
            json.dump({"passed": passed}, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, path)
    except OSError:
        pass  # progress is a convenience; a read-only home must not break the exercise


@dataclass(frozen=True)
class Progress:
    """Which exercises the learner passed (id -> first time, UTC) out of all of them."""

    passed: dict[str, str]
    exercises: tuple[str, ...]
    path: Path | None

    def __repr__(self) -> str:
        """One line per exercise, ✓ for passed; where the file is and when each exercise
        was passed are in ``path`` and ``passed``."""
        if self.path is None:
            return (
                "Progress tracking is off (LESSONS_PROGRESS=off): passed exercises are not "
                "remembered."
            )
        lines = [f"Passed {len(self.passed)} of {len(self.exercises)} exercises:"]
        for exercise_id in self.exercises:
            lines.append(f"  {'✓' if exercise_id in self.passed else '·'} {exercise_id}")
        return "\n".join(lines)


def progress() -> Progress:
    """The exercises passed so far, read from the progress file."""
    path = progress_file()
    passed = {} if path is None else _load_progress(path)
    return Progress(passed=passed, exercises=tuple(registry()), path=path)
