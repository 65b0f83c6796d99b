"""The Python kernel ``labkeep run notebook.ipynb`` starts: ipykernel's own launcher, with
the bridge hook installed first when ``LABKEEP_BRIDGES`` asks for it.

A notebook's cells that use MLflow, W&B, a TensorBoard writer or Sacred are then recorded into
the run exactly as a script's calls are (``_bootstrap.install_bridges``), with nothing added to
the notebook itself: its executed copy and HTML show only the user's cells.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    from labkeep.runner._bootstrap import ENV_BRIDGES, install_bridges

    # As ipykernel_launcher: the working directory leaves sys.path while the kernel loads
    # (IPython puts it back for the cells).
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    mode = os.environ.pop(ENV_BRIDGES, None)
    if mode:
        install_bridges(mode)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
