"""Methods: one estimator class per paper, all with the interface of :class:`PreferenceModel`."""

from pluralign.methods.base import ConfigError, PreferenceModel, TrainingDiverged, UserVector
from pluralign.methods.bt import BradleyTerry
from pluralign.methods.gpm import GPM
from pluralign.methods.maxmin import MaxMin
from pluralign.methods.micro import MiCRo
from pluralign.methods.pal import PalA, PalB
from pluralign.methods.vpl import VPL

# name -> estimator class: what `pluralign fit METHOD` accepts
METHODS: dict[str, type[PreferenceModel]] = {
    BradleyTerry.name: BradleyTerry,
    MiCRo.name: MiCRo,
    GPM.name: GPM,
    MaxMin.name: MaxMin,
    PalA.name: PalA,
    PalB.name: PalB,
    VPL.name: VPL,
}

__all__ = ["METHODS", "ConfigError", "PreferenceModel", "TrainingDiverged", "UserVector", "BradleyTerry"]
