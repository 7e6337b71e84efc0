from pluralign.methods.vpl.estimator import VPL
from pluralign.methods.vpl.model import VPLGuide, VPLModel, kl_weight_at
from pluralign.methods.vpl.network import VPLNetwork

__all__ = ["VPL", "VPLGuide", "VPLModel", "VPLNetwork", "kl_weight_at"]
