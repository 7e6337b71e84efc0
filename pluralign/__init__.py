"""pluralign: pluralistic and personalized alignment from preference data whose annotators disagree."""

__version__ = "0.1.0"
