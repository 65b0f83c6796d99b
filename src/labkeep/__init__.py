"""labkeep: experiment tracking and reproducibility for machine-learning work."""

from labkeep._version import __version__
from labkeep.errors import LabkeepError

__all__ = ["LabkeepError", "__version__"]
