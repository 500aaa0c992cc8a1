"""The grading path: run the rubric's checks on a submission (:mod:`.runner`), the rubric and its gates
(:mod:`.rubric`, ``rubric.toml``), the results and their files (:mod:`.results`), the terminal report
(:mod:`.report`), finding the submission (:mod:`.locate`), the time budget (:mod:`.budget`), cleaning text
(:mod:`.sanitise`) and the feedback levels (:mod:`.feedback`)."""
