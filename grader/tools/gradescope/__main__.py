"""``python -m grader.tools gradescope build|run``: see :mod:`grader.tools.gradescope`."""

import sys

from grader.tools.gradescope.cli import main

sys.exit(main())
