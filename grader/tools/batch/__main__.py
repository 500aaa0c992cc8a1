"""``python -m grader.tools.batch SUBMISSIONS_DIR --out OUT``: see :mod:`grader.tools.batch`."""

import sys

from grader.tools.batch.run import main

sys.exit(main())
