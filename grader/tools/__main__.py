"""``python -m grader.tools VERB [OPTIONS]``: every instructor command in one place.

``python -m grader.tools`` lists the verbs; ``python -m grader.tools VERB --help`` shows a verb's options. The
nox sessions call these (``nox -s handout`` is ``python -m grader.tools handout``). Students need none of them:
their command is ``nox -s grade`` (``python -m grader``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: verb -> (module with a ``main(argv)``, what it does). Imported only when chosen: each verb's dependencies
#: (Ray, matplotlib, torch for the baseline) stay out of the others.
VERBS: dict[str, tuple[str, str]] = {
    "grade": ("grader.cli", "grade one submission (the same as python -m grader)"),
    "batch": (
        "grader.tools.batch.run",
        "grade a folder of submissions: gradebook, summary, charts (local or Ray)",
    ),
    "handout": ("grader.tools.handout", "build the students' handout (no solution, no answer key)"),
    "gradescope": ("grader.tools.gradescope.cli", "build the Gradescope autograder bundle, or run it (run)"),
    "classroom": ("grader.classroom", "report a results.json to GitHub Actions / GitHub Classroom"),
    "baseline": (
        "grader.training.baseline",
        "make the shared control run a batch's grades reuse (--baseline-run)",
    ),
    "calibrate": ("grader.tools.calibrate", "re-measure the training checks' thresholds over seeds"),
    "record": ("grader.checks.key.record", "rewrite grader/checks/recorded.json from the answer key"),
}

PROG = "python -m grader.tools"


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [f"usage: {PROG} VERB [OPTIONS]   ({PROG} VERB --help: the verb's options)", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {what}" for verb, (_module, what) in VERBS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"{PROG}: unknown verb {verb!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    if verb == "record":  # it takes no options
        if rest:
            print(
                f"{PROG} record takes no options (it rewrites grader/checks/recorded.json)", file=sys.stderr
            )
            return 2
        return module.main()
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
