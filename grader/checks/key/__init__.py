"""The answer key: what computes the penalties' right values, and the code one mistake away from them.

Instructor only. A student handout leaves this package out (``grader/tools/handout.py``: ``INSTRUCTOR_ONLY``), and
the public grader reaches it only through :mod:`grader.checks.answer_key`, so that everything here can go without
breaking a student's ``nox -s grade``:

* :mod:`.terms`: the contract's per-token terms and the value each row must get, with its tolerance;
* :mod:`.wrong`: the one catalogue of wrong implementations (most are the right term with one mistake around it),
  for the diagnosis, the calibration and the tests; :mod:`.source` writes them out as a submission's text;
* :mod:`.checks`: the hidden checks (the value checks on random batches, training-like ones included);
* :mod:`.clipping`: the diagnosis of a backward ratio clipped too tightly;
* :mod:`.record`: writes ``grader/checks/recorded.json``, the numbers the public grader keeps instead of the
  formulas (the reference's values on fixed batches, the wrong implementations' outputs on the probe batch).
"""
