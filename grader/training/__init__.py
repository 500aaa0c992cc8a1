"""The training engine: short real GRPO runs with a submission's functions, which the training checks judge.

The checks (:mod:`grader.checks.training`) never start a process: they ask the grade's
:class:`~grader.training.engine.TrainingEngine` for its runs.

* :mod:`.engine`: the one handle (a grade's runs, made once, shared by its checks) and the options it takes;
* :mod:`.settings`: the graded runs and, per preset, their settings and thresholds (``calibration/``);
* :mod:`.runs`: making runs from the grader process (lanes in parallel, a time budget, one record per run);
* :mod:`.lane`: a lane process, which runs the exercise's pipeline with the sandboxed submission;
* :mod:`.baseline`: the control run made once and shared by many grades (``--baseline-run``);
* :mod:`.plots`: the curves written next to the results.
"""
