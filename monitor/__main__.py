"""The `monitor` command (`python -m monitor` too): the signals an operator may send
are heard before the command line's slow imports (`monitor.signals`)."""

from monitor.signals import listen_early


def main() -> None:
    listen_early()
    from monitor.cli import main as cli_main

    cli_main()


# Guarded: the extraction workers' fork server imports the main module again.
if __name__ == "__main__":
    main()
