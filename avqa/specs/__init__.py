"""Stage specs: what one stage's command computes, as one frozen, validated dataclass per stage.

Each stage's settings are a `Spec` subclass (pydantic dataclass: typed, frozen, unknown keys refused). They are
built from config.yaml in exactly one place, `avqa.workflow`'s `*_spec(config, ...)` functions, and reach the
command as one JSON word: the rule passes `--spec {params.spec:q}` and the command reads `args.spec`. Paths the
rule owns (inputs, outputs, logs) stay command-line arguments; every setting is in the spec. By hand, a command
takes the same spec built from a config file instead: `--config config.yaml` (see `add_spec_arguments`).

Defaults live once: in config.yaml and its schema (workflow/schemas/config.schema.yaml). A spec's fields have no
defaults of their own, so a spec can only be built from a (validated) config or a complete JSON object.

This module and its stage modules import neither torch nor any stage, so the Snakefile parses without them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pydantic
from pydantic import ConfigDict, TypeAdapter
from pydantic.dataclasses import dataclass

from avqa.errors import UserError

# The options every spec dataclass takes: frozen (hashable, safe to share), unknown keys refused, no type coercion
# (a string is never read as a number); one place, so the stage modules cannot drift.
SPEC_CONFIG = ConfigDict(extra="forbid", strict=True)

S = TypeVar("S", bound="Spec")


def spec(cls):
    """Decorate a stage's settings class as a Spec dataclass (frozen, strict, unknown keys refused)."""
    return dataclass(frozen=True, config=SPEC_CONFIG)(cls)


class SpecError(UserError, ValueError):
    """A stage spec that is not valid JSON or breaks its dataclass (a missing, unknown or mistyped field)."""


class Spec:
    """Base of the stage specs: JSON in and out, and one-line errors that name the stage and the field."""

    stage: ClassVar[str] = "stage"

    def to_json(self) -> str:
        """The spec as one JSON object (sorted keys: equal specs give equal strings, hence equal rule params)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return TypeAdapter(type(self)).dump_python(self, mode="json")

    @classmethod
    def from_dict(cls: type[S], data: Any, source: str | None = None) -> S:
        """A spec from a JSON-shaped object (dicts, lists, numbers, strings), validated as JSON would be."""
        return cls.from_json(json.dumps(data), source)

    @classmethod
    def from_json(cls: type[S], text: str, source: str | None = None) -> S:
        # JSON mode: arrays fill tuple fields, ints fill float fields, "1" never fills an int (strict)
        try:
            return TypeAdapter(cls).validate_json(text)
        except pydantic.ValidationError as err:
            raise SpecError(f"{source or cls.stage + ' spec'}: {_first_error(err)}") from None


def _first_error(err: pydantic.ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def add_spec_arguments(parser: argparse.ArgumentParser, builder_help: str) -> None:
    """`--spec JSON` (what the rule passes) or `--config FILE` (by hand: the spec built from that config exactly
    as the workflow builds it); exactly one is needed."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--spec", help="the stage's settings as one JSON object (the rule passes it)")
    group.add_argument("--config", type=Path, help=f"by hand: build the spec from this config.yaml ({builder_help})")


def spec_from_args(args: argparse.Namespace, cls: type[S], build) -> S:
    """The command's spec: `--spec` JSON, or `build(config)` on the `--config` file (validated like the Snakefile's)."""
    if args.spec is not None:
        return cls.from_json(args.spec, f"{cls.stage} --spec")
    from avqa.workflow import load_config  # by hand only: the workflow helpers build specs from a config

    return build(load_config(args.config))
