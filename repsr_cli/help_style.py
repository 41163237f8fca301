"""Help pages in the conventions of command-line tools, not of Python annotations.

Typer 0.29 writes each parameter's Python annotation into the help (`<bool>` beside a flag, `<list[str]>`
beside the inputs) and a required argument as `{inputs}...` in the usage line. Every repsr command is built
with `Command`, which shows instead what a shell user types: no type beside a flag, click's type names (FLOAT,
INTEGER, TEXT) or the option's own metavar beside a value, and `INPUTS...` in the usage line.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_CLICK_NAMES = {
    "float": "FLOAT",
    "int": "INTEGER",
    "str": "TEXT",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIRECTORY",
}


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the argument's name and help say what it takes

    def _usage_display_name(self) -> str:
        name = self.display_name_raw.upper() + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        label = self.display_type(ctx).strip("<>")  # Typer's label: float, int, list[str], a|b, ...
        many = label.startswith("list[")
        label = label[5:-1] if many else label
        return _CLICK_NAMES.get(label, label) + ("..." if many else "")


def _restyle(param: object) -> None:
    # the parameters are built by Typer itself; only their help rendering changes
    if type(param) is TyperArgument:
        param.__class__ = _Argument
    elif type(param) is TyperOption:
        param.__class__ = _Option


class _Styled:
    """Restyles a command's parameters, --help among them (made on first use)."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _restyle(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _restyle(option)
        return option


class Command(_Styled, TyperCommand):
    """A Typer command whose parameters describe themselves as above."""


class Group(_Styled, TyperGroup):
    """The `repsr` group itself (its --version and --help), styled as its commands."""
