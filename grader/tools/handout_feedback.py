"""The handout's feedback level: the copy's rubric names it, the copy's misconception catalogue holds nothing
above it, and no file of the copy carries a text of the levels above it."""

from __future__ import annotations

import re
from pathlib import Path

from grader.checks import feedback
from grader.tools.handout_files import CATALOGUE_FILE, RUBRIC_FILE, SCANNED_SUFFIXES


def rubric_with_level(text: str, level: str) -> str:
    """``text`` (a rubric file) with ``[feedback] level`` set to ``level``, comments and layout kept; a
    [feedback] table is added when there is none."""
    feedback.check_level(level)
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if re.match(r"\s*\[feedback\]\s*(#.*)?$", line)), None)
    if header is None:
        return text.rstrip("\n") + f'\n\n[feedback]\nlevel = "{level}"\n'
    end = next((i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    for i in range(header + 1, end):
        if re.match(r"\s*level\s*=", lines[i]):
            lines[i] = f'level = "{level}"\n'
            return "".join(lines)
    lines.insert(header + 1, f'level = "{level}"\n')
    return "".join(lines)


def set_feedback_level(folder: Path, repo: Path, level: str, builder: str) -> None:
    """Make the grader copied into ``folder`` grade at ``level``: its rubric names the level, and its
    misconception catalogue is the repository's stripped to ``level`` (the texts above it are left out)."""
    rubric = folder / RUBRIC_FILE
    rubric.write_text(rubric_with_level(rubric.read_text(encoding="utf-8"), level), encoding="utf-8")
    catalogue = folder / CATALOGUE_FILE
    catalogue.write_text(feedback.strip_catalogue(repo / CATALOGUE_FILE, level, builder), encoding="utf-8")


def _normalised(text: str) -> str:
    return " ".join(text.split())


def feedback_level_problems(folder: Path, repo: Path, level: str) -> list[str]:
    """Why the grader in ``folder`` could show more than ``level``, or [] when it cannot: its rubric must name
    ``level``, its catalogue must stop at ``level``, and no file may contain a text of the levels above it."""
    from grader.grading.rubric import RubricError, load_rubric

    problems = []
    try:
        shown = load_rubric(folder / RUBRIC_FILE).feedback_level
        if shown != level:
            problems.append(f"{RUBRIC_FILE}: feedback level {shown!r}, not {level!r}")
    except RubricError as exc:
        problems.append(str(exc))
    try:
        held = feedback.load_catalogue(folder / CATALOGUE_FILE).level
        if feedback.rank(held) > feedback.rank(level):
            problems.append(f"{CATALOGUE_FILE}: holds {held!r} texts, above the handout's level {level!r}")
    except feedback.CatalogueError as exc:
        problems.append(str(exc))
    # The texts above the level, as written in the instructor's catalogue: every stretch between ${...} that is
    # long enough to be distinctive. Found in any file, it means the file carries what the level hides.
    # [shared] texts count as hidden unless a text the level keeps uses them.
    placeholder = re.compile(r"\$\{(\w+)\}")
    full = feedback.load_catalogue(repo / CATALOGUE_FILE)
    kept, above = feedback.LEVELS[: feedback.rank(level) + 1], feedback.LEVELS[feedback.rank(level) + 1 :]
    raw_kept = [raw for e in full.entries.values() for lv in kept for raw in e.texts.get(lv, {}).values()]
    raw_above = [raw for e in full.entries.values() for lv in above for raw in e.texts.get(lv, {}).values()]
    used = {name for raw in raw_kept for name in placeholder.findall(raw)}
    shared = next(iter(full.entries.values())).shared if full.entries else {}
    for name, value in shared.items():
        if name not in used:
            raw_above.extend(value.values() if isinstance(value, dict) else [value])
    hidden = {
        piece
        for raw in raw_above
        if isinstance(raw, str)
        for piece in map(_normalised, placeholder.split(raw))
        if len(piece) >= 40
    }
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in SCANNED_SUFFIXES:
            continue
        try:
            text = _normalised(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        found = sorted(piece for piece in hidden if piece in text)
        if found:
            problems.append(
                f"{path.relative_to(folder).as_posix()}: contains feedback above the level {level!r} "
                f"({len(found)} passages, e.g. {found[0][:60]!r}...)"
            )
    return problems
