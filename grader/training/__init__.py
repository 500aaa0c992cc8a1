"""The training checks (docs/design.md, "Training checks"): short real GRPO runs with the submission's functions.

* :mod:`.checks`: the four checks and their scoring (pure functions of the runs' validation histories);
* :mod:`.settings`: the graded runs and, per preset, their settings and thresholds (``calibration/``);
* :mod:`.runs`: making the runs from the grader process (lanes in parallel, a time budget, one record per run);
* :mod:`.lane`: a lane process, which runs the exercise's pipeline with the sandboxed submission;
* :mod:`.plots`: the curves written next to the results.
"""
