"""The wire protocol between the grader and the sandboxed worker (:mod:`grader.sandbox.worker`).

One JSON object per line on each of a dedicated pipe pair: a request ``{"id", "function", "args", "kwargs"}``
and its reply ``{"id", "status", "value" | "message", "mutated"}``, where ``status`` is ``ok``, ``error``,
``invalid`` or ``missing`` and non-finite floats travel as the strings ``"nan"``, ``"inf"``, ``"-inf"``.

Replies are untrusted: the submission runs in the worker's process and could write to the reply pipe itself.
So a reply is parsed as JSON only (no JSON constants such as ``NaN``, nothing unpickled), must answer the
request it follows, and must hold exactly the types above; anything else is a protocol violation, which the
sandbox reports as a crash of the worker. (Its length is capped before it gets here: see
``SandboxConfig.max_reply_bytes``.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from grader.contract import CallOutcome

REPLY_STATUSES = {"ok", "error", "invalid", "missing"}
NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
#: Characters of an error message kept from a reply.
MESSAGE_CHARS = 4000


def encode_request(rid: int, function: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bytes:
    """One request line; ``ValueError`` when the arguments are not plain JSON data (the grader's bug)."""
    try:
        line = json.dumps({"id": rid, "function": function, "args": list(args), "kwargs": dict(kwargs)})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"arguments must be plain JSON data: {exc}") from exc
    return (line + "\n").encode()


def decode_reply(line: bytes, rid: int) -> CallOutcome | None:
    """The outcome a reply line reports for request ``rid``, or None when the line violates the protocol."""

    def reject(constant: str) -> None:
        raise ValueError(constant)

    try:
        reply = json.loads(line, parse_constant=reject)
    except (ValueError, RecursionError):
        return None
    if not isinstance(reply, dict) or reply.get("id") != rid or reply.get("status") not in REPLY_STATUSES:
        return None
    status = reply["status"]
    mutated = reply.get("mutated")
    if not isinstance(mutated, bool):
        return None
    if status == "ok":
        raw = reply.get("value")
        if not isinstance(raw, list):
            return None
        value = []
        for item in raw:
            if type(item) is float:
                value.append(item)
            elif type(item) is int:
                try:
                    value.append(float(item))
                except OverflowError:
                    return None
            elif type(item) is str and item in NONFINITE:
                value.append(NONFINITE[item])
            else:
                return None
        return CallOutcome("ok", value, "", inputs_mutated=mutated)
    message = reply.get("message", "")
    if not isinstance(message, str):
        return None
    return CallOutcome(status, None, message[:MESSAGE_CHARS], inputs_mutated=mutated)
