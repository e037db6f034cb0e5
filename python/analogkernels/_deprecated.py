"""The module paths that moved into :mod:`analogkernels.paper`, kept as aliases.

``analogkernels.experiments``, ``.lra``, ``.listops`` and ``.energy`` were
documented modules before the paper's experiments moved into
:mod:`analogkernels.paper`; importing one of them still works, with a
:class:`FutureWarning` that names the new module.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved(old: str, *new: str) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """Make module ``old`` an alias of the modules ``new``, with a warning.

    Call it from the old module's body:
    ``__all__, __getattr__, __dir__ = moved(__name__, "analogkernels.paper.x")``.

    Parameters
    ----------
    old : str
        The old module's name (``__name__``).
    *new : str
        The modules its names live in now, searched in this order.

    Returns
    -------
    __all__ : list of str
        The public names of the new modules.
    __getattr__ : callable
        The old module's attribute lookup: the first new module that has the name.
    __dir__ : callable
        The names of the new modules.

    Warns
    -----
    FutureWarning
        Once per import of ``old``: use the new module.
    """
    modules = [importlib.import_module(name) for name in new]
    warnings.warn(
        f"{old} is deprecated and will be removed: import {', '.join(new)} instead",
        FutureWarning,
        stacklevel=3,
    )

    def __getattr__(name: str) -> Any:
        for module in modules:
            try:
                return getattr(module, name)
            except AttributeError:
                continue
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({name for module in modules for name in dir(module)})

    public = list(dict.fromkeys(n for module in modules for n in getattr(module, "__all__", ())))
    return public, __getattr__, __dir__
