from pluralign.methods.pal.model import PalA, PalB
from pluralign.methods.pal.network import PalANetwork, PalBNetwork

__all__ = ["PalA", "PalB", "PalANetwork", "PalBNetwork"]
