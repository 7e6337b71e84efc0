"""Adapters from public preference datasets, in their own file formats, onto the preference contract.

Each adapter is ``from_X(path, **options) -> PreferenceSet``; ``ADAPTERS`` maps the dataset name to it.
"""

from pluralign.data.adapters.personalllm import from_personalllm
from pluralign.data.adapters.pickapic import from_pickapic
from pluralign.data.adapters.prism import from_prism
from pluralign.data.adapters.psoups import from_psoups
from pluralign.data.adapters.tldr import from_tldr
from pluralign.data.adapters.ultrafeedback import from_ultrafeedback

ADAPTERS = {
    "prism": from_prism,
    "tldr": from_tldr,
    "psoups": from_psoups,
    "ultrafeedback": from_ultrafeedback,
    "personalllm": from_personalllm,
    "pickapic": from_pickapic,
}

__all__ = [
    "ADAPTERS", "from_personalllm", "from_pickapic", "from_prism", "from_psoups", "from_tldr", "from_ultrafeedback",
]
