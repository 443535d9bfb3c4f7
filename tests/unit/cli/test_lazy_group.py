"""The lazy command group: its help lists every command as an eager group would, and a
command is imported when it is used."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from evalfleet.cli.lazy_group import LazyCommand, LazyGroup
from evalfleet.cli.main import COMMANDS, cli


def _eager_copy() -> click.Group:
    """The same group with every command imported and added the ordinary way."""
    group = click.Group(name=cli.name, params=cli.params, help=cli.help, callback=cli.callback)
    for name, spec in COMMANDS.items():
        group.add_command(spec.load(), name)
    return group


def test_every_kept_help_is_the_first_sentence_of_its_command() -> None:
    for name, spec in COMMANDS.items():
        command = spec.load()
        assert command.name == name
        assert spec.short_help == command.get_short_help_str(limit=10_000), name


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_help_lists_every_command_exactly_as_an_eager_group(width: int) -> None:
    # Given a fresh lazy group that has imported no command yet
    fresh = LazyGroup(name=cli.name, params=cli.params, help=cli.help, lazy_commands=COMMANDS)
    # When its help is printed
    lazy = CliRunner().invoke(fresh, ["--help"], terminal_width=width, prog_name="evalfleet")
    eager = CliRunner().invoke(_eager_copy(), ["--help"], terminal_width=width,
                               prog_name="evalfleet")  # fmt: skip
    # Then it is the eager group's help, and it imported nothing
    assert lazy.exit_code == 0 and lazy.output == eager.output
    assert fresh.commands == {}
    for name in COMMANDS:
        assert f"\n  {name} " in lazy.output


def test_a_command_is_imported_on_first_use_and_kept() -> None:
    fresh = LazyGroup(name="g", lazy_commands={"db": COMMANDS["db"]})
    ctx = click.Context(fresh)
    command = fresh.get_command(ctx, "db")
    assert command is not None and command.name == "db"
    assert fresh.get_command(ctx, "db") is command
    assert fresh.get_command(ctx, "nope") is None


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["nope"])
    assert result.exit_code == 2 and "No such command 'nope'" in result.output


def test_a_target_that_is_not_a_command_is_refused() -> None:
    with pytest.raises(TypeError, match="not a click command"):
        LazyCommand("evalfleet.cli.main:COMMANDS", "x").load()
