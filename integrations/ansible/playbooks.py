"""Finding a rule's playbook inside the playbooks directory, and nowhere else."""

from __future__ import annotations

from pathlib import Path

from remediator_integrations.ansible.model import playbook_syntax_problem

__all__ = ["PlaybookProblem", "playbook_problem", "resolve_playbook"]


class PlaybookProblem(ValueError):
    """The playbook is missing, not a file, or outside the playbooks directory."""


def resolve_playbook(playbooks_dir: Path, playbook: str) -> Path:
    """The playbook's real path; raises PlaybookProblem unless it is a file inside the dir.

    Symlinks are resolved first, so a link pointing outside the directory is refused too.
    """
    problem = playbook_syntax_problem(playbook)
    if problem is not None:
        raise PlaybookProblem(problem)
    root = playbooks_dir.resolve()
    path = (root / playbook).resolve()
    if not path.is_relative_to(root):
        raise PlaybookProblem(
            f"playbook {playbook!r} resolves to {path}, outside the playbooks directory {root}"
        )
    if not path.exists():
        raise PlaybookProblem(f"playbook {playbook!r} does not exist in {root}")
    if not path.is_file():
        raise PlaybookProblem(f"playbook {playbook!r} is not a file")
    return path


def playbook_problem(playbooks_dir: Path, playbook: str) -> str | None:
    """Why `playbook` cannot run, or None."""
    try:
        resolve_playbook(playbooks_dir, playbook)
    except PlaybookProblem as problem:
        return str(problem)
    return None
