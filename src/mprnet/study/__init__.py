"""The IPOL study in one call: MPRNet against its peers and classic methods, quality and cost, as a report folder."""

from .runner import StudySettings, run_study

__all__ = ["StudySettings", "run_study"]
