"""Version of the package and of the measuring algorithms.

``ALGORITHM_VERSION`` changes whenever a number a metric produces can change;
it is stored with every result so old results can be recomputed and compared.
"""

__version__ = "0.1.0"
ALGORITHM_VERSION = "2026.12.07-18"
