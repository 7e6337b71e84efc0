"""Methods: one estimator class per paper, all with the interface of :class:`PreferenceModel`."""

from pluralign.methods.base import ConfigError, PreferenceModel, UserVector
from pluralign.methods.bt import BradleyTerry

# name -> estimator class: what `pluralign fit METHOD` accepts
METHODS: dict[str, type[PreferenceModel]] = {
    BradleyTerry.name: BradleyTerry,
}

__all__ = ["METHODS", "ConfigError", "PreferenceModel", "UserVector", "BradleyTerry"]
