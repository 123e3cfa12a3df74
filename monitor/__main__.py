"""Allows `python -m monitor`."""

from monitor.cli import main

# Guarded: the extraction workers' fork server imports the main module again.
if __name__ == "__main__":
    main()
