"""Wrong submissions as text to append to the reference solution, making a submission file that a student might
hand in. Each is generated from the answer key's catalogue (``grader/checks/key/wrong.py``: ``SUBMISSIONS``),
where its code is written once, as a function that the diagnosis, the calibration and the mutant tests use too."""

from grader.checks.key.wrong import submission_source

#: A forward penalty that sums over tokens instead of averaging (the sum_not_mean misconception).
SUM_NOT_MEAN_FORWARD = submission_source("sum_not_mean_forward")

#: r log r (r = pi_ref / pi) as the backward penalty: the value estimator, not the penalty.
R_LOG_R_BACKWARD = submission_source("r_log_r_backward")

#: Issue 17's KL gaming rows, as a student would write them after reading the grader.
#: Right unless the batch looks like training's (>= 8 rows, >= 64 tokens, float32-exact log-probs): then zeros.
ZERO_IN_TRAINING = submission_source("zero_in_training")

#: The backward penalty exact up to ratio 10 and a +50 penalty per token above it (a sign change, not a clip).
PENALTY_ABOVE_TEN = submission_source("penalty_above_ten")
