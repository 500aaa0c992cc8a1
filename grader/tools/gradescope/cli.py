"""``python -m grader.tools gradescope build|run``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from grader.dataclass_cli import parse_into
from grader.tools.gradescope.config import CONFIG_NAME, GradescopeConfig
from grader.tools.gradescope.run import run_autograder


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        parser = argparse.ArgumentParser(prog="python -m grader.tools gradescope run")
        root_default = os.environ.get("AUTOGRADER_ROOT", "/autograder")
        parser.add_argument("--root", type=Path, default=Path(root_default), help="Gradescope's /autograder")
        parser.add_argument(
            "--source",
            type=Path,
            default=Path(os.environ.get("AUTOGRADER_SOURCE", f"{root_default}/source")),
            help="where the bundle was unpacked (default ROOT/source)",
        )
        args = parser.parse_args(argv[1:])
        data = run_autograder(args.root, args.source)
        print(f"run_autograder: score {data.get('score')}", flush=True)
        return 0
    if argv[:1] == ["build"]:
        argv = argv[1:]
    config = parse_into(
        GradescopeConfig,
        argv,
        prog="python -m grader.tools gradescope [build]",
        description="Build the Gradescope autograder zip (setup.sh, run_autograder, the grader, a hidden seed).",
        epilog="Inside Gradescope, run_autograder calls `python -m grader.tools.gradescope run`.",
    )
    from grader.tools.gradescope.build import build_bundle  # here: the bundle carries no builder

    try:
        zip_path, settings = build_bundle(config)
    except ValueError as exc:  # settings that would grade badly: say which, build nothing
        print(f"gradescope: error: {exc}", file=sys.stderr)
        return 2
    print(f"gradescope: wrote {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    print(
        f"gradescope: grading seed {settings['seed']} (recorded in {CONFIG_NAME} inside the zip; keep it private)"
    )
    print(
        "gradescope: upload the zip in the assignment's 'Configure Autograder' page (base image: Ubuntu 22.04)"
    )
    return 0
