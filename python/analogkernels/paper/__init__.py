"""The paper's experiments, built on the library (Büchel et al., Nat. Mach. Intell. 2024).

The library modules (:mod:`analogkernels.analog`,
:mod:`analogkernels.kernel_approximation`, :mod:`analogkernels.linear_model`,
...) are what a user of the simulated chip needs; this subpackage is what
reproduces the paper with them, and what the ``analogkernels`` command line runs:

- :mod:`~analogkernels.paper.protocol`: one ridge-classification run
  (:class:`~analogkernels.paper.protocol.RunConfig`,
  :func:`~analogkernels.paper.protocol.run_one`) and the summary in the paper's form;
- :mod:`~analogkernels.paper.sweep`: many runs, cached and in parallel;
- :mod:`~analogkernels.paper.outputs`: the result files;
- :mod:`~analogkernels.paper.figures`: the figures;
- :mod:`~analogkernels.paper.listops`, :mod:`~analogkernels.paper.lra` and
  :mod:`~analogkernels.paper.attention_study`: kernelised attention on ListOps
  (extra ``[torch]``);
- :mod:`~analogkernels.paper.energy`: the energy and latency estimate.

Nothing is imported here: import the module you need.
"""
