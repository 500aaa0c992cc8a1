"""Generate an ``argparse`` command line from a config dataclass, so a tool's options are declared once.

Each field becomes an option ``--field-name`` (and ``--field_name``) whose help is ``metadata["help"]``.
``metadata["positional"] = True`` makes it a positional argument; a field without a default is required.
Booleans become flags (``--flag``; ``--no-flag`` too when the default is True). ``Literal`` types give
``choices`` (as does ``metadata["choices"]``). ``Path``, ``int``, ``float``, ``str`` and ``X | None`` convert as
expected; ``list[X]`` takes one or more values.

Deliberately small and dependency-free (no transformers import): these CLIs must start fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def build_parser(cls: type, prog: str, description: str = "", epilog: str = "") -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with one argument per field of the dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if has_default else None)
        )
        help_text = f.metadata.get("help", "")
        if has_default and default not in (None, False, "") and tp is not bool:
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = {"help": help_text}
        if typing.get_origin(tp) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(tp))
            kwargs["type"] = type(kwargs["choices"][0])
        elif tp is bool:
            pass
        elif tp in (int, float, str, Path):
            kwargs["type"] = tp
        elif typing.get_origin(tp) is list and typing.get_args(tp)[0] in (int, float, str, Path):
            kwargs["type"] = typing.get_args(tp)[0]
            kwargs["nargs"] = "+"
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported type {tp!r} for the command line")
        if f.metadata.get("choices"):
            kwargs["choices"] = list(f.metadata["choices"])
        if f.metadata.get("metavar"):
            kwargs["metavar"] = f.metadata["metavar"]

        if f.metadata.get("positional"):
            if has_default:
                kwargs["nargs"] = "?"
                kwargs["default"] = default
            parser.add_argument(f.name, **kwargs)
            continue
        names = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            names.append(f"--{f.name}")
        if tp is bool:
            if default:
                parser.add_argument(*names, action="store_true", dest=f.name, default=True, help=help_text)
                parser.add_argument(
                    *[n.replace("--", "--no-", 1) for n in names],
                    action="store_false",
                    dest=f.name,
                    help="(turn off)",
                )
            else:
                parser.add_argument(*names, action="store_true", dest=f.name, default=False, help=help_text)
            continue
        if has_default:
            kwargs["default"] = default
        else:
            kwargs["required"] = not optional
        parser.add_argument(*names, dest=f.name, **kwargs)
    return parser


def parse_into(
    cls: type[T], argv: Sequence[str] | None, prog: str, description: str = "", epilog: str = ""
) -> T:
    """Parse ``argv`` into an instance of ``cls``; bad arguments exit with status 2 (argparse's convention)."""
    namespace = build_parser(cls, prog, description, epilog).parse_args(None if argv is None else list(argv))
    return cls(**vars(namespace))
