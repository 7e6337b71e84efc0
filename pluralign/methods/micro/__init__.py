from pluralign.methods.micro.model import MiCRo, MixtureObjective, RoutedMixtureNetwork, routing_balance

__all__ = ["MiCRo", "MixtureObjective", "RoutedMixtureNetwork", "routing_balance"]
