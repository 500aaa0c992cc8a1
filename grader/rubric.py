"""Moved to :mod:`grader.grading.rubric`; this alias keeps the old name importable while code still uses it."""

import sys

from grader.grading import rubric

sys.modules[__name__] = rubric
