"""Moved to :mod:`grader.sandbox.proctree`; this alias keeps the old name importable while code still uses it."""

import sys

from grader.sandbox import proctree

sys.modules[__name__] = proctree
