"""Pydantic validation errors turned into problems a person can act on without the code."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from eventwatch.errors import InvalidField, Problem
from eventwatch.models import derived_fields
from eventwatch.tomlfile import key_text

Loc = tuple[str | int, ...]
Where = Callable[[Loc], tuple[str, int | None]]
"""Given a field's location, the source to name (a file, a variable) and its line if known."""

# Pydantic adds the names of union members and validator functions to an error's location;
# only field names (lowercase identifiers) and list indices are where a person typed something.
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


# Pydantic messages that name Python types rather than what to write in a file.
_PLAINER = {
    "path_type": "expected a path (a string)",
    "model_type": "expected a table",
    "dict_type": "expected a table",
}


def field_path(loc: Loc) -> str:
    """Render a location as a person writes it: ``events[1].timezone``.

    A key TOML would quote is quoted, with what cannot be printed escaped: one line, always.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{key_text(part)}" if out else key_text(part)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:  # noqa: ANN401 - any annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) in {
        typing.Union,
        types.UnionType,
        tuple,
        list,
        typing.Annotated,
    }:
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
    return found


def allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the record at ``loc`` below ``model`` accepts, as they are written in files."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part),
            None,
        )
        inner = _models_in(info.annotation) if info else []
        if not inner:
            return []
        current = inner[0]
    hidden = set(derived_fields(current))
    return [info.alias or name for name, info in current.model_fields.items() if name not in hidden]


def annotation_at(model: type[BaseModel], loc: Loc) -> Any:  # noqa: ANN401 - any annotation
    """The type of the field at ``loc`` below ``model`` (keys as files spell them), or None."""
    current: type[BaseModel] | None = model
    annotation: Any = None
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None:
            return None
        info = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part),
            None,
        )
        if info is None:
            return None
        annotation = info.annotation
        inner = _models_in(annotation)
        current = inner[0] if inner else None
    return annotation


SHOWN_AT_MOST = 80
"""Characters of a bad value a message repeats: enough to recognise it, never a whole file."""


def _shown(value: object) -> str:
    """``value`` as a message repeats it, cut short in the middle when long."""
    text = repr(value)
    if len(text) <= SHOWN_AT_MOST:
        return text
    half = SHOWN_AT_MOST // 2
    return f"{text[:half]}…{text[-half:]} ({len(text):,} characters)"


def _message(error: Any, model: type[BaseModel], loc: Loc, *, show_input: bool) -> str:  # noqa: ANN401
    kind = error["type"]
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        keys = allowed_keys(model, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), keys, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return f"unknown key{hint}; allowed here: {', '.join(keys)}"
    cause = error.get("ctx", {}).get("error")
    if kind in {"value_error", "assertion_error"} and cause is not None:
        return str(cause)
    text = _PLAINER.get(kind, str(error["msg"]))
    if show_input:
        text += f", got {_shown(error['input'])}"
    return text


def problems(
    exc: ValidationError,
    model: type[BaseModel],
    where: Where,
    *,
    show_input: bool = True,
) -> list[Problem]:
    """One problem per validation error, each naming its source, line and field.

    ``show_input`` is off for settings, so that a secret never reaches a message.
    """
    found: list[Problem] = []
    for error in exc.errors(include_url=False):
        given = error["loc"]
        # An unknown key is what the person typed, whatever it looks like (``Name``, ``0``);
        # the rest may hold the names of union members and validators, which are dropped.
        typed = given[-1:] if error["type"] == "extra_forbidden" else ()
        kept = [
            p for p in given[: len(given) - len(typed)] if isinstance(p, int) or _FIELD.fullmatch(p)
        ]
        loc: Loc = (*kept, *typed)
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InvalidField):
            loc = (*loc, *cause.loc)
        source, line = where(loc)
        message = _message(error, model, loc, show_input=show_input)
        problem = Problem(source, field_path(loc), message, line)
        if problem not in found:
            found.append(problem)
    return found
