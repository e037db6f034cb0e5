"""Deprecated: moved to :mod:`analogkernels.paper.lra` (importing this module warns)."""

from ._deprecated import moved

__all__, __getattr__, __dir__ = moved(__name__, "analogkernels.paper.lra")
