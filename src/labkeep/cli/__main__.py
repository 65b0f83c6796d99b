"""``python -m labkeep.cli``: the same as the ``labkeep`` command."""

from labkeep.cli import main

if __name__ == "__main__":
    main()
