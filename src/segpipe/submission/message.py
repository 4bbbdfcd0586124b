"""The default Kaggle submission message: the git commit and the CV score with its rule."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from segpipe.evaluation.postprocess import Rule


def default_message(cv_json: Path, repo: Path) -> str:
    """"segpipe <commit> CV dice 0.8992 (threshold 0.45, gate 5 px >= 0.45)"; -dirty if uncommitted."""
    cv = json.loads(Path(cv_json).read_text())
    return f"segpipe {_git_commit(Path(repo))} CV dice {cv['dice']:.4f} ({Rule(**cv['rule']).describe()})"


def _git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain") else "")
    except (OSError, subprocess.CalledProcessError):  # no git, or not a repository
        return "no-git"
