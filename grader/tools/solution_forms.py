"""What "handing out the answer" looks like: the KL penalties' per-token terms in any spelling a file could hold
them, for the handout build (which refuses a handout that contains one) and the project's tests.

The forward term is the log-ratio of the policy's and the reference's log-probs of a sampled token; the backward
term is 1 - r, r = pi_ref / pi, in any of its forms (1 - exp(log-ratio), -expm1(log-ratio), 1 - pi_ref/pi).
Two scans:

* text (code, comments, docstrings, Markdown, TOML): :data:`TEXT_FORMS`, the spellings people write;
* Python syntax trees: :func:`code_forms` finds the computations whatever the names: ``1 - <...>exp(...)``,
  any ``expm1``, and a reference-side log-prob subtracted from a policy-side one (by the names of the operands:
  lp / log_pi / policy ... minus lr / log_ref / ref ...). The other order, log r = log pi_ref - log pi, is the
  log of the importance ratio the stub introduces, which checks use to bound ratios: not a form by itself.

The KL's own definition as an expectation ("E_pi[log pi(y) - log pi_ref(y)]", what the stub states) is not a
form: the exercise is to find the reward whose policy gradient is the KL's, which the definition does not say.
"""

from __future__ import annotations

import ast
import re

TEXT_FORMS = re.compile(
    r"\b1(\.0)?\s*-\s*r\b(?!\s*[\(\[_'])"  # 1 - r
    r"|\b1(\.0)?\s*-\s*pi_ref\s*/\s*pi\b"  # 1 - pi_ref/pi
    r"|\b1(\.0)?\s*-\s*(math\.|np\.|numpy\.|torch\.)?exp\("  # 1 - exp(...)
    r"|\bexpm1\b"  # -expm1(log-ratio)
    r"|exp\(\s*(min\(\s*)?log_ref\s*-\s*log_pi"  # exp(log_ref - log_pi), exp(min(log_ref - log_pi, ...))
    r"|\blog_ref\s*-\s*log_pi\b"
    r"|\blog\s*pi\s*-\s*log\s*pi_ref\b(?!\s*\()"  # log pi - log pi_ref
    r"|\blog_pi\s*-\s*log_ref\b"
    r"|\blp\s*-\s*lr\b"
    r"|\blog_probs_policy(\[i\]\[t\])?\s*-\s*log_probs_ref\b"
    r"|\blog\(\s*pi\s*/\s*pi_ref\s*\)"  # log(pi / pi_ref)
    r"|\bk1\s*="
)

_POLICY_NAMES = re.compile(r"^(lp|logp|log_p|log_pi|pi|policy|log_probs_policy|row_pi|policy_logps|logps)$")
_REF_NAMES = re.compile(r"^(lr|logr|log_r|log_ref|ref|pi_ref|log_probs_ref|row_ref|ref_logps|ref_logprobs)$")


def _base_name(node: ast.AST) -> str:
    """The identifier an operand is about: ``x`` for ``x``, ``x[i][t]``, ``self.x``, ``np.asarray(x)`` ..."""
    while True:
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and node.args:
            node = node.args[0]
        elif isinstance(node, ast.Attribute):
            return node.attr
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return ""


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return ""


def code_forms(source: str) -> list[tuple[int, str]]:
    """(line, what) of every per-token-term computation in ``source`` (Python); [] if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) == "expm1":
            found.append((node.lineno, "expm1(...)"))
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub)):
            continue
        left, right = node.left, node.right
        if isinstance(left, ast.Constant) and left.value in (1, 1.0) and _call_name(right) == "exp":
            found.append((node.lineno, "1 - exp(...)"))
            continue
        a, b = _base_name(left), _base_name(right)
        if _POLICY_NAMES.match(a) and _REF_NAMES.match(b):
            found.append((node.lineno, f"{a} - {b}"))
    return found


def text_forms(text: str) -> list[tuple[int, str]]:
    """(line, match) of every spelling of a per-token term in ``text``."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(0).strip()) for m in TEXT_FORMS.finditer(text)]


def solution_forms(text: str, *, python: bool) -> list[tuple[int, str]]:
    """Both scans (the syntax-tree one for Python files), sorted by line."""
    found = text_forms(text) + (code_forms(text) if python else [])
    return sorted(set(found))
