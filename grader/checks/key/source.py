"""A wrong implementation as text: what a test or the calibration appends to a right solution to make a submission
file, generated from the function itself (:mod:`.wrong` writes each wrong implementation once, as Python).

Text is only possible for a function that carries all it needs: it may use modules (imported at the top of the
text), builtins, and, when it wraps the right function it replaces (``negated(right)``), that one right function,
which the text takes from the solution it is appended to before replacing it. Anything else (a helper or a
per-token term defined beside it in :mod:`.wrong`) would not exist in the submission file, so
:func:`function_source` refuses it and says which name is missing.
"""

from __future__ import annotations

import builtins
import dis
import inspect
import io
import re
import textwrap
import tokenize
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any


class NotSelfContained(ValueError):
    """A wrong implementation that cannot be written out as a submission's text."""


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """The code object and the ones nested in it (comprehensions, lambdas, inner functions)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _globals_read(code: types.CodeType) -> set[str]:
    return {
        str(ins.argval)
        for c in _codes(code)
        for ins in dis.get_instructions(c)
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }


def _rename(text: str, old: str, new: str) -> str:
    """``old`` renamed to ``new`` wherever it is a name (not an attribute: ``x.old`` stays)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    out = []
    for i, tok in enumerate(tokens):
        after_dot = i > 0 and tokens[i - 1].type == tokenize.OP and tokens[i - 1].string == "."
        if tok.type == tokenize.NAME and tok.string == old and not after_dot:
            tok = tok._replace(string=new)
        out.append(tok)
    return tokenize.untokenize(out)


def function_source(
    function: Callable[..., Any], as_name: str, right: Mapping[str, Callable[..., Any]]
) -> tuple[str, set[str], str]:
    """``function`` written as the student function ``as_name``: (its ``def``, the modules it imports, the line
    that keeps the right ``as_name`` under another name, or "" when it does not wrap it). ``right``: the right
    implementations a wrapper may wrap (the one of the same name only)."""
    where = f"{function.__module__}.{function.__qualname__}"
    modules: set[str] = set()
    for name in sorted(_globals_read(function.__code__)):
        value = function.__globals__.get(name, getattr(builtins, name, None))
        if isinstance(value, types.ModuleType) and value.__name__ == name:
            modules.add(name)
        elif name not in function.__globals__ and hasattr(builtins, name):
            continue
        else:
            raise NotSelfContained(
                f"{where} uses {name!r}, defined beside it but not in a submission file: write it inside the "
                "function (or import it there) so that it can be written out as a submission"
            )
    text = textwrap.dedent(inspect.getsource(function))
    text, found = re.subn(r"^def \w+\(", f"def {as_name}(", text, count=1, flags=re.MULTILINE)
    if not found:
        raise NotSelfContained(f"{where} is not a plain def (a lambda?): write it as a def to write it out")
    alias = ""
    for name, cell in zip(function.__code__.co_freevars, function.__closure__ or (), strict=True):
        if cell.cell_contents is not right.get(as_name):
            raise NotSelfContained(
                f"{where} depends on {name!r} of the function that made it; only the right {as_name} it replaces "
                "can be taken from the submission: write the rest inside the function"
            )
        kept = f"_right_{as_name}"
        text = _rename(text, name, kept)
        alias = f"{kept} = {as_name}"
    return text, modules, alias


def submission_source(
    functions: Mapping[str, Callable[..., Any]], right: Mapping[str, Callable[..., Any]]
) -> str:
    """The text that, appended to a right solution, replaces its ``functions`` (student function name -> wrong
    implementation) and keeps everything else: imports, the right functions the wrappers wrap, the defs."""
    defs, modules, aliases = [], set(), []
    for as_name, function in functions.items():
        text, used, alias = function_source(function, as_name, right)
        defs.append(text.rstrip() + "\n")
        modules |= used
        aliases += [alias] if alias else []
    head = [f"import {m}" for m in sorted(modules)] + ([""] if modules and aliases else []) + aliases
    return "\n\n" + ("\n".join(head) + "\n\n\n" if head else "") + "\n\n".join(defs)
