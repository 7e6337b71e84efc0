from pluralign.methods.bt.model import BradleyTerry, RewardNetwork

__all__ = ["BradleyTerry", "RewardNetwork"]
