"""Where a trained router came from: the hash of its training data and the git commit of the code."""

from __future__ import annotations

import subprocess
from pathlib import Path

from routers.artifact import file_sha256

UNKNOWN_COMMIT = "unknown"


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the same hash the artifact manifests use)."""
    return file_sha256(path)


def git_commit(repo: Path | None = None) -> str:
    """HEAD's commit, suffixed `-dirty` when tracked files changed; `unknown` outside a git work tree."""
    cwd = str(repo or Path.cwd())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, like any developer tool)
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN_COMMIT
    return f"{head}-dirty" if dirty else head
