"""What a student reads agrees with what the grader does.

* The stub (``exercise/rewards.py``) lists, under "Rules the grader checks" in each function's docstring, exactly
  the rubric's checks that decide that function's points: its defining checks (those other checks require) and
  its gated checks (those with a ``requires``), in the rubric's order, marked "defining" and "hidden" as the
  rubric marks them. A check added to the rubric, or a gate moved, fails this test until the stub says so.
* The Exercise 2 command of the README and of the student README template is the grader's shaped run exactly
  (the run settings of ``grader/training/calibration/thresholds.toml``), and the template's control run and
  ``exercise.compare`` line name the directories those runs write.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from exercise.config import TrainConfig, parse_args
from exercise.presets import resolve_config
from grader.checks.goals import DECLARATION
from grader.contract import STUDENT_FUNCTIONS, function_of_check
from grader.grading.rubric import Rubric, load_rubric
from grader.training.settings import load_settings, train_config

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "exercise" / "rewards.py"
README = ROOT / "README.md"
TEMPLATE = ROOT / "grader" / "tools" / "templates" / "STUDENT_README.md"
SECTION = "Rules the grader checks"
# "  * kl_forward.direction (defining): ..." -> id, flags
RULE = re.compile(r"^\s*\* ([a-z][a-z0-9_]*\.[a-z0-9_]+)(?: \(([a-z, ]+)\))?: ")


def stub_rules(source: str) -> dict[str, list[tuple[str, set[str], str]]]:
    """Per stub function, its rules in order: (check id, flags such as {"defining", "hidden"}, the rule's text)."""
    rules: dict[str, list[tuple[str, set[str], str]]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or node.name not in STUDENT_FUNCTIONS:
            continue
        doc = ast.get_docstring(node) or ""
        assert SECTION in doc, f"{node.name}'s docstring has no '{SECTION}' list"
        found: list[tuple[str, set[str], str]] = []
        for line in doc.split(SECTION, 1)[1].splitlines():
            match = RULE.match(line)
            if match:
                flags = {f.strip() for f in (match.group(2) or "").split(",") if f.strip()}
                found.append((match.group(1), flags, line[match.end() :]))
            elif found and line.strip():
                check_id, flags, text = found[-1]
                found[-1] = (check_id, flags, f"{text} {line.strip()}")
        rules[node.name] = found
    return rules


def rubric_rules(rubric: Rubric) -> dict[str, list[tuple[str, set[str]]]]:
    """Per function, the rubric's checks that decide its points, in order: its defining checks (required by
    another check) and its gated ones (with a requires). A training check belongs to the function it is gated on."""
    required = {r for entry in rubric.entries for r in entry.requires}
    rules: dict[str, list[tuple[str, set[str]]]] = {}
    for entry in rubric.entries:
        if entry.check_id not in required and not entry.requires:
            continue
        function = function_of_check(entry.check_id)
        if function not in STUDENT_FUNCTIONS:
            function = function_of_check(entry.requires[0])
        flags = {"defining"} if entry.check_id in required else set()
        if entry.hidden:
            flags.add("hidden")
        rules.setdefault(function, []).append((entry.check_id, flags))
    return rules


def test_the_stub_lists_exactly_the_rubrics_defining_and_gated_checks():
    rubric = load_rubric()
    listed = stub_rules(STUB.read_text(encoding="utf-8"))
    expected = rubric_rules(rubric)
    assert set(listed) == set(STUDENT_FUNCTIONS)
    for function in STUDENT_FUNCTIONS:
        got = [(check_id, flags) for check_id, flags, _ in listed[function]]
        assert got == expected[function], (
            f"{function}: the stub's '{SECTION}' list (ids and their defining/hidden marks, in order) differs "
            f"from grader/grading/rubric.toml's defining and gated checks.\nstub:   {got}\nrubric: {expected[function]}"
        )


def test_the_shaping_goal_rule_names_the_declaration_the_stub_has():
    source = STUB.read_text(encoding="utf-8")
    (goal_rule,) = [
        text for check_id, _, text in stub_rules(source)["shaped_reward"] if check_id == "shaping.goal"
    ]
    assert DECLARATION in goal_rule
    declared = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == DECLARATION for t in node.targets)
    ]
    assert len(declared) == 1, f"the stub declares {DECLARATION} once, at the top level"


def test_a_rule_missing_from_the_stub_is_found():
    """The parser is not vacuous: dropping one rule line, or its defining mark, changes what it reads."""
    source = STUB.read_text(encoding="utf-8")
    expected = rubric_rules(load_rubric())["shaped_reward"]
    without = source.replace("* shaping.goal (defining):", "shaping.goal (defining) -", 1)
    assert [(c, f) for c, f, _ in stub_rules(without)["shaped_reward"]] != expected
    unmarked = source.replace("* shaping.goal (defining):", "* shaping.goal:", 1)
    assert [(c, f) for c, f, _ in stub_rules(unmarked)["shaped_reward"]] != expected


def _train_commands(text: str, shaping: str) -> list[list[str]]:
    """The ``nox -s train -- ...`` commands of ``text`` with ``--reward_shaping <shaping>``, as argument lists."""
    commands = []
    for match in re.finditer(r"nox -s train -- ([^`\n]+)", text):
        args = shlex.split(match.group(1).split("#")[0])
        if f"--reward_shaping {shaping}" in " ".join(args):
            commands.append(args)
    return commands


GRADED_FIELDS = (
    "preset",
    "reward_shaping",
    "kl_type",
    "kl_coef",
    "learning_rate",
    "max_steps",
    "eval_every",
    "validation_prompts",
    "seed",
)


def _fields(config: TrainConfig) -> dict:
    """The graded fields of ``config`` once its preset has filled in what it leaves open (a command without
    --learning_rate runs at the preset's; the grader's settings may name it)."""
    resolved = resolve_config(config)
    return {name: getattr(resolved, name) for name in GRADED_FIELDS}


@pytest.mark.parametrize("document", [README, TEMPLATE], ids=["README", "STUDENT_README"])
def test_the_exercise_2_command_is_the_graders_shaped_run(document):
    text = document.read_text(encoding="utf-8")
    graded = train_config("shaped", load_settings("tiny"), 0, "")
    commands = _train_commands(text, "shaped")
    assert commands, f"{document.name} has no exercise 2 command"
    for args in commands:
        assert _fields(parse_args(args)) == _fields(TrainConfig(**graded)), (
            f"{document.name}: {shlex.join(args)}"
        )


def test_the_templates_control_and_comparison_name_the_runs_it_makes():
    text = TEMPLATE.read_text(encoding="utf-8")
    settings = load_settings("tiny")
    (shaped,) = _train_commands(text, "shaped")
    (control,) = _train_commands(text, "linear")
    # The control is the grader's forward run: the same command on the plain score.
    assert control == [("linear" if a == "shaped" else a) for a in shaped]
    assert _fields(parse_args(control)) == _fields(TrainConfig(**train_config("forward", settings, 0, "")))
    (compare,) = re.findall(r"python -m exercise\.compare ([^\n]+)", text)
    assert compare.split()[:2] == [f"outputs/{parse_args(a).run_name}" for a in (shaped, control)]


def test_train_help_points_only_to_what_the_handout_ships():
    """``python -m exercise.train --help`` is read in the handout too: a help text that sends the reader to the
    README (the handout's is the student template, without the instructor README's sections) or to a file the
    handout leaves out points nowhere. The --scale_rewards help's pointer holds what it promises."""
    import dataclasses
    from fnmatch import fnmatch

    from exercise.config import TrainConfig
    from grader.tools.handout import ALLOWED, INSTRUCTOR_ONLY

    def shipped(path: str) -> bool:
        allowed = any(path == a or (a.endswith("/") and path.startswith(a)) for a in ALLOWED)
        excluded = any(path.startswith(x) if x.endswith("/") else fnmatch(path, x) for x in INSTRUCTOR_ONLY)
        return allowed and not excluded and (ROOT / path).exists()

    for f in dataclasses.fields(TrainConfig):
        text = f.metadata.get("help", "")
        assert "README" not in text, f"--{f.name}'s help points to a README section the handout lacks"
        for path in re.findall(r"\b(?:exercise|grader)/[\w./-]*\w", text):
            assert shipped(path), f"--{f.name}'s help names {path}, which the handout does not ship"
    scale = next(f for f in dataclasses.fields(TrainConfig) if f.name == "scale_rewards").metadata["help"]
    assert "exercise/rewards.py" in scale and "'Group scaling'" in scale
    assert "\nGroup scaling (--scale_rewards)\n" in STUB.read_text(encoding="utf-8")
