"""`python -m evalfleet`: the `evalfleet` command, for environments without its script on PATH."""

from evalfleet.cli.main import cli

if __name__ == "__main__":
    cli()
