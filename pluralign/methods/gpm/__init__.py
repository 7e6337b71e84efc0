from pluralign.methods.gpm.model import GPM, PreferenceEmbeddingNetwork, complementary_sigmoid, skew_score

__all__ = ["GPM", "PreferenceEmbeddingNetwork", "complementary_sigmoid", "skew_score"]
