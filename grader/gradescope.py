"""``python -m grader.gradescope``: kept for Gradescope bundles built before the tools moved to
:mod:`grader.tools.gradescope` (their ``run_autograder`` calls this name)."""

from grader.tools.gradescope import *  # noqa: F403
from grader.tools.gradescope import main

if __name__ == "__main__":
    raise SystemExit(main())
