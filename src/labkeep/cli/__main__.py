"""``python -m labkeep.cli``: the same as the ``labkeep`` command."""

from labkeep.cli._main import main

main()
