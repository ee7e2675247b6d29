"""Before/after skin photo progress analyzer (pure library: no UI imports)."""
from .version import ALGORITHM_VERSION, __version__

__all__ = ["ALGORITHM_VERSION", "__version__"]
