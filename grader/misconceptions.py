"""Moved to :mod:`grader.checks.misconceptions`; this alias keeps the old name importable while code still uses
it."""

import sys

from grader.checks import misconceptions

sys.modules[__name__] = misconceptions
