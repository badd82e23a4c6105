"""Readers for each source format; see ``toolqual_utils.loaders.detect``."""
