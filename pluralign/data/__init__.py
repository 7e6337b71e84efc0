"""Preference data: the contract, readers, adapters, synthetic benchmarks and the embedding cache."""

from pluralign.data.contract import DataError, PreferenceSet, validate_rows
from pluralign.data.readers import read_preferences

__all__ = ["DataError", "PreferenceSet", "validate_rows", "read_preferences"]
