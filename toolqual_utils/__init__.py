"""toolqual: find the wrong instances in synthetic tool-use training data.

Public entry points are re-exported here; the implementation lives in the submodules.
"""
__version__ = "0.1.0"
