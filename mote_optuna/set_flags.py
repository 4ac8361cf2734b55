"""A command-line flag that stands for a ``--set FIELD=VALUE`` override of a study file.

``SetFlag`` appends the override to the list that ``--set`` fills, in command-line order, so the
flag is validated exactly as the study file and ``--set`` are (``config.apply_override``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class SetFlag(argparse.Action):
    """``--flag VALUE`` as ``--set FIELD=VALUE``; with ``value`` given, a switch that sets it.

    The value is YAML text, as after ``--set``; a ``Path`` (``type=Path``) stays a string."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        *,
        field: str,
        value: str | None = None,
        help: str | None = None,
        **kwargs: Any,
    ) -> None:
        if value is None:
            kwargs.setdefault("metavar", field.rsplit(".", 1)[-1].upper())
        super().__init__(
            option_strings,
            dest,
            nargs=0 if value is not None else None,
            default=argparse.SUPPRESS,
            help=help or f"--set {field}={value or 'VALUE'}",
            **kwargs,
        )
        self.field = field
        self.value = value

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if self.value is not None:
            text = self.value
        else:
            text = json.dumps(str(values)) if isinstance(values, Path) else str(values)
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), f"{self.field}={text}"])
