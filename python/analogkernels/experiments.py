"""Deprecated: moved to :mod:`analogkernels.paper.protocol` (importing this module warns).

The figure (``plot_dataset``) is in :mod:`analogkernels.paper.figures`, the run
cache (``read_record``, ``record_problem``) in :mod:`analogkernels.paper.sweep`,
``write_json_atomic`` in :mod:`analogkernels.paper.outputs`.
"""

from ._deprecated import moved

__all__, __getattr__, __dir__ = moved(
    __name__,
    "analogkernels.paper.protocol",
    "analogkernels.paper.figures",
    "analogkernels.paper.sweep",
    "analogkernels.paper.outputs",
)
