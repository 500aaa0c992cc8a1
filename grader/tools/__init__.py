"""Instructor tools, never in a student handout: grade a class (:mod:`.batch`), build the handout
(:mod:`.handout`) and the Gradescope autograder (:mod:`.gradescope`, which also runs on Gradescope), shared
packaging helpers (:mod:`.bundle`). Each runs as ``python -m grader.tools VERB``."""
