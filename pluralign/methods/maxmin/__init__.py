from pluralign.methods.maxmin.em import responsibility_nll, user_log_likelihood
from pluralign.methods.maxmin.model import BestOfN, GroupRewardNetwork, MaxMin

__all__ = ["BestOfN", "GroupRewardNetwork", "MaxMin", "responsibility_nll", "user_log_likelihood"]
