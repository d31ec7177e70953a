"""Recipes as typed dataclasses: one definition gives a round's defaults, flags, argv and cache key.

A recipe field declared with :func:`option` carries its help text (and, where the flag is not the
field name with dashes, its flag) in the field's metadata. From the class alone:

* :func:`add_recipe_arguments` adds one command-line option per field (a nested recipe, such as
  Round 1's loss weights, becomes an argument group);
* :func:`recipe_from_args` builds the recipe back from the parsed options, by keyword;
* :func:`recipe_argv` writes a recipe as the flags that reproduce it (those that differ from the
  defaults), which is how the main job hands its recipes to the rounds' subprocesses;
* :func:`recipe_key` is a stable hash of the recipe's canonical JSON: the main job's step cache key.

A recipe validates itself in ``__post_init__`` (or, for checks that need other settings too, in one
function of its round such as :func:`train.r2.check_options`), so a recipe built in code and one
built from flags are checked by the same lines.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Demo:
    ...     steps: int | None = option(None, "optimizer steps")
    ...     gather: bool = option(True, "share candidates", flag="--no-gather")
    >>> parser = argparse.ArgumentParser()
    >>> add_recipe_arguments(parser, Demo)
    >>> recipe_from_args(Demo, parser.parse_args(["--steps", "3", "--no-gather"]))
    Demo(steps=3, gather=False)
    >>> recipe_argv(Demo(steps=3, gather=False))
    ['--steps', '3', '--no-gather']
    >>> recipe_key(Demo(steps=3)) == recipe_key(Demo(steps=3)) != recipe_key(Demo(steps=4))
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

NESTED_SEPARATOR = "."  # dest of a nested recipe's field: "<field>.<nested field>"


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002 - argparse's word
    *,
    flag: str | None = None,
    parse: Callable[[str], Any] | None = None,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    cli: bool = True,
) -> Any:
    """A recipe field with its command-line description.

    Args:
        default: The field's default (also the flag's).
        help: The flag's help text.
        flag: The flag, when it is not ``--`` + the field name with dashes (for a ``bool`` that defaults
            to ``True``, the flag that turns it off, e.g. ``--no-gather``).
        parse: Turns the flag's text into the value (default: the field's type).
        choices: Allowed values of the flag.
        metavar: The value's name in ``--help``.
        default_factory: For mutable defaults (a nested recipe).
        cli: ``False`` keeps the field off the command line (set in code only).

    Returns:
        A :func:`dataclasses.field`.
    """
    metadata = {
        "help": help,
        "flag": flag,
        "parse": parse,
        "choices": choices,
        "metavar": metavar,
        "cli": cli,
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def _cli_fields(cls: type) -> list[tuple[dataclasses.Field, type, bool]]:
    """``(field, value type, optional)`` of each command-line field of the recipe class ``cls``."""
    hints = typing.get_type_hints(cls)
    found = []
    for spec in dataclasses.fields(cls):
        if not spec.metadata.get("cli", True):
            continue
        hint, optional = hints[spec.name], False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            members = [member for member in typing.get_args(hint) if member is not type(None)]
            hint, optional = members[0], len(members) < len(typing.get_args(hint))
        found.append((spec, hint, optional))
    return found


def _flag(spec: dataclasses.Field) -> str:
    return spec.metadata.get("flag") or "--" + spec.name.replace("_", "-")


def _default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None if spec.default is dataclasses.MISSING else spec.default


def add_recipe_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, prefix: str = ""
) -> None:
    """Add an option for every command-line field of the recipe class ``cls``.

    Args:
        parser: The parser (or argument group) to add to.
        cls: A dataclass whose fields were declared with :func:`option`.
        prefix: Internal: the dest prefix of a nested recipe's fields.
    """
    for spec, kind, _ in _cli_fields(cls):
        dest, default = prefix + spec.name, _default(spec)
        if dataclasses.is_dataclass(kind):
            group = parser.add_argument_group(spec.metadata.get("help") or spec.name)
            add_recipe_arguments(group, kind, dest + NESTED_SEPARATOR)
            continue
        extra: dict[str, Any] = {"dest": dest, "default": default, "help": spec.metadata.get("help")}
        if kind is bool:
            extra["action"] = "store_false" if default else "store_true"
        else:
            extra["type"] = spec.metadata.get("parse") or kind
            for key in ("choices", "metavar"):
                if spec.metadata.get(key) is not None:
                    extra[key] = spec.metadata[key]
        parser.add_argument(_flag(spec), **extra)


def recipe_from_args(cls: type, args: argparse.Namespace, prefix: str = "") -> Any:
    """The recipe ``cls`` built by keyword from options added by :func:`add_recipe_arguments`.

    Raises:
        ValueError: The recipe's own validation (``__post_init__``) rejected the values.
    """
    values = {}
    for spec, kind, _ in _cli_fields(cls):
        dest = prefix + spec.name
        nested = dataclasses.is_dataclass(kind)
        values[spec.name] = (
            recipe_from_args(kind, args, dest + NESTED_SEPARATOR) if nested else getattr(args, dest)
        )
    return cls(**values)


def recipe_argv(recipe: Any) -> list[str]:
    """The flags that rebuild ``recipe`` through :func:`add_recipe_arguments` (fields at their default
    are left out, so that the round's own defaults apply).

    Raises:
        ValueError: A field outside the command line differs from its default (no flag could carry it).
    """
    argv: list[str] = []
    cli = {spec.name: kind for spec, kind, _ in _cli_fields(type(recipe))}
    for spec in dataclasses.fields(recipe):
        value, default = getattr(recipe, spec.name), _default(spec)
        if value == default:
            continue
        if spec.name not in cli:
            raise ValueError(f"{type(recipe).__name__}.{spec.name} has no flag: it cannot be passed on")
        if dataclasses.is_dataclass(cli[spec.name]):
            argv += recipe_argv(value)
        elif cli[spec.name] is bool:
            argv.append(_flag(spec))
        else:
            shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
            argv += [_flag(spec), shown]
    return argv


def canonical_json(value: Any) -> str:
    """``value`` (dataclasses included) as compact JSON with sorted keys: equal values, equal text."""

    def plain(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return {spec.name: plain(getattr(item, spec.name)) for spec in dataclasses.fields(item)}
        if isinstance(item, dict):
            return {str(key): plain(entry) for key, entry in item.items()}
        if isinstance(item, (list, tuple)):
            return [plain(entry) for entry in item]
        return item if isinstance(item, (str, int, float, bool, type(None))) else str(item)

    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def recipe_key(value: Any) -> str:
    """A stable hash (SHA-256, hex) of ``value``'s :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def parse_recipe(
    parser: argparse.ArgumentParser, cls: type, argv: Sequence[str] | None = None
) -> tuple[argparse.Namespace, Any]:
    """Parse ``argv`` and build the recipe ``cls`` from it; a recipe that fails its own validation
    ends the command like any bad flag (usage, the message, exit status 2).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Demo:
        ...     steps: int = option(1, "optimizer steps")
        ...     def __post_init__(self):
        ...         if self.steps < 1:
        ...             raise ValueError("--steps must be at least 1")
        >>> parser = argparse.ArgumentParser()
        >>> add_recipe_arguments(parser, Demo)
        >>> parse_recipe(parser, Demo, ["--steps", "2"])[1]
        Demo(steps=2)
    """
    args = parser.parse_args(argv)
    try:
        return args, recipe_from_args(cls, args)
    except ValueError as error:
        parser.error(str(error))
