"""The paper's sweeps: many runs of the protocol, cached, in parallel, with progress.

:func:`run_sweep` runs a list of :class:`~analogkernels.paper.protocol.RunConfig`
in this process, in a pool of local processes or as tasks on a Dask cluster,
and caches every finished run as ``OUT/runs/<key>.json`` (:func:`read_record`
reuses a record only if it is one of exactly that run, by this version), so an
interrupted sweep resumes where it stopped. :func:`ridge_configs` and
:func:`demo_configs` build the runs of ``analogkernels ridge`` and
``analogkernels demo``; :func:`run_calibration` is ``analogkernels calibrate``'s
fit with a progress bar.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..exceptions import ConfigError
from . import protocol
from .outputs import write_json_atomic
from .protocol import RunConfig

__all__ = [
    "demo_configs",
    "read_record",
    "record_problem",
    "ridge_configs",
    "run_calibration",
    "run_sweep",
]

#: ``--quick``: these k (of those asked for), at most this many seeds and at
#: most this many training and evaluation rows per run.
QUICK_KS = (1, 3, 5)
QUICK_SEEDS = 2
QUICK_ROWS = 4000


def ridge_configs(
    datasets: Iterable[str],
    kernels: Iterable[str],
    samplers: Iterable[str],
    ks: Sequence[int],
    seeds: int,
    backends: Iterable[str],
    *,
    quick: bool = False,
    **settings: Any,
) -> list[RunConfig]:
    """The runs of a ridge sweep: every combination, in a fixed order.

    Parameters
    ----------
    datasets, kernels, samplers : iterable of str
        Names (:data:`analogkernels.datasets.DATASETS`,
        :data:`~analogkernels.paper.protocol.KERNELS`,
        :data:`~analogkernels.paper.protocol.SAMPLERS`).
    ks : sequence of int
        k = log2(s/d): ``s = 2**k * d - k`` projections.
    seeds : int
        Seeds ``0 .. seeds - 1`` per setting.
    backends : iterable of str
        ``"fp"`` and/or ``"analog"``.
    quick : bool, default False
        Only the k of :data:`QUICK_KS` (the first k if none of them is asked
        for), at most :data:`QUICK_SEEDS` seeds and :data:`QUICK_ROWS` training
        and evaluation rows.
    **settings
        The other fields of :class:`~analogkernels.paper.protocol.RunConfig`
        (``preset``, ``t_inference`` in seconds, ``data_dir``, ...).

    Returns
    -------
    list of RunConfig
        Dataset-major, then kernel, sampler, k, seed and backend.
    """
    datasets, kernels, samplers, backends = (
        list(v) for v in (datasets, kernels, samplers, backends)
    )
    ks = list(ks)
    if quick:
        ks = [k for k in ks if k in QUICK_KS] or ks[:1]
        seeds = min(seeds, QUICK_SEEDS)
        settings = {**settings, "max_train": QUICK_ROWS, "max_eval": QUICK_ROWS}
    return [
        RunConfig(dataset=ds, kernel=kern, sampler=smp, k=k, seed=seed, backend=b, **settings)
        for ds in datasets
        for kern in kernels
        for smp in samplers
        for k in ks
        for seed in range(seeds)
        for b in backends
    ]


#: ``analogkernels demo``: its dataset, samplers and k (RBF kernel, both backends).
DEMO_DATASET = "sklearn:breast_cancer"
DEMO_SAMPLERS = protocol.SAMPLERS
DEMO_KS = (1, 3)


def demo_configs(seeds: int, t_inference: float) -> list[RunConfig]:
    """The runs of ``analogkernels demo``.

    Parameters
    ----------
    seeds : int
        Seeds ``0 .. seeds - 1`` per setting.
    t_inference : float
        When the chip is read, in seconds after programming.

    Returns
    -------
    list of RunConfig
        RBF kernel on :data:`DEMO_DATASET`, for every sampler of
        :data:`DEMO_SAMPLERS`, k of :data:`DEMO_KS`, seed and backend.
    """
    return ridge_configs(
        [DEMO_DATASET],
        ["rbf"],
        DEMO_SAMPLERS,
        DEMO_KS,
        seeds,
        protocol.BACKENDS,
        t_inference=t_inference,
    )


def _threads_per_worker(workers: int) -> int:
    """The machine's cores split among ``workers`` processes sharing it (at least 1).

    Parameters
    ----------
    workers : int
        Worker processes on this machine (fewer than 1 counts as 1).

    Returns
    -------
    int
        Threads for each worker's Rust core and BLAS.
    """
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _worker_init(threads: int) -> None:
    import analogkernels

    analogkernels.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover
        pass


def _run_and_store(cfg_dict: dict[str, Any], path: str) -> dict[str, Any]:
    # Through the module: a replaced protocol.run_one (a test's) is the one run.
    record = _with_versions(protocol.run_one(RunConfig(**cfg_dict)), _run_versions())
    write_json_atomic(Path(path), record)
    return record


def _run_versions() -> dict[str, str]:
    """The versions this process records in a run.

    The fields of :data:`analogkernels.paper.protocol.VERSION_FIELDS`; ``version``
    is the package's.
    """
    versions = protocol.software_versions()
    return {field: versions[field] for field, _ in protocol.VERSION_FIELDS}


def _with_versions(record: dict[str, Any], versions: dict[str, str]) -> dict[str, Any]:
    return {**record, **versions}


def run_sweep(
    configs: list,
    out: Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    scheduler: str | None = None,
    desc: str = "ridge sweep",
) -> list[dict[str, Any]]:
    """Run every config not already cached in ``out/runs``; return all records.

    With ``scheduler`` (a ``distributed`` scheduler address, or ``local[:N]``)
    the pending runs are tasks on that Dask cluster (:func:`analogkernels.dask.iter_sweep`);
    this process writes each record as it arrives, so the cache and resume work as
    without Dask and a lost worker loses no finished run.
    """
    from tqdm import tqdm

    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    pending = []
    for cfg in configs:
        path = runs_dir / f"{cfg.key()}.json"
        # Only a valid record of this very run, by this version, is reused;
        # anything else is recomputed (and its file overwritten).
        record = read_record(path, cfg) if path.is_file() else None
        if record is not None:
            records[cfg.key()] = record
            continue
        pending.append((cfg, path))
    bar = tqdm(
        total=len(configs),
        initial=len(records),
        disable=not progress,
        unit="run",
        desc=desc,
        dynamic_ncols=True,
    )
    try:
        if scheduler is not None and pending:
            _run_on_dask(pending, scheduler, records, bar)
        elif jobs == 1 or len(pending) <= 1:
            for cfg, path in pending:
                records[cfg.key()] = _run_and_store(dataclasses.asdict(cfg), str(path))
                bar.update()
        else:
            threads = _threads_per_worker(jobs)
            with cf.ProcessPoolExecutor(
                max_workers=jobs, initializer=_worker_init, initargs=(threads,)
            ) as pool:
                futures = {
                    pool.submit(_run_and_store, dataclasses.asdict(cfg), str(path)): cfg
                    for cfg, path in pending
                }
                try:
                    for fut in cf.as_completed(futures):
                        records[futures[fut].key()] = fut.result()
                        bar.update()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        bar.close()
    return [records[c.key()] for c in configs]


def _run_on_dask(pending: list, scheduler: str, records: dict[str, dict], bar: Any) -> None:
    from ..dask import blas_threads, iter_sweep, sweep_client

    blas = blas_threads()  # before the cluster starts (its workers get the same)
    client, cluster = sweep_client(scheduler)
    try:
        # A LocalCluster's workers share this machine: split its cores among them
        # as --jobs does (a remote cluster's workers keep their own settings).
        threads = None
        if cluster is not None:
            threads = _threads_per_worker(len(cluster.workers))
        # The versions of the workers that compute the runs (the same on every
        # worker, or each field lists the distinct values).
        per_worker = list(client.run(_run_versions).values()) or [_run_versions()]
        versions = {key: " / ".join(sorted({v[key] for v in per_worker})) for key in per_worker[0]}
        items = [dataclasses.asdict(cfg) for cfg, _ in pending]
        for i, record in iter_sweep(items, client, threads=threads, blas=blas):
            cfg, path = pending[i]
            if record.get("chip_digest", "") != cfg.chip_digest():
                # A worker with another install computed another chip (e.g. a
                # refitted preset): its record is not a result of this run.
                raise ConfigError(
                    f"a Dask worker ran {cfg.preset!r} with other parameter values "
                    f"(chip_digest {record.get('chip_digest')!r}, this process "
                    f"{cfg.chip_digest()!r}); install the same analogkernels on "
                    f"the workers as here"
                )
            record = _with_versions(record, versions)
            write_json_atomic(path, record)
            records[cfg.key()] = record
            bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: Measured fields of a record: (name, type, lowest, highest) (None: unbounded).
_RECORD_FIELDS: tuple[tuple[str, type, float | None, float | None], ...] = (
    ("accuracy", float, 0.0, 1.0),
    ("approximation_error", float, 0.0, None),
    ("log2_s_over_d", float, None, None),
    ("wall_time_s", float, 0.0, None),
    ("n_features_in", int, 1, None),
    ("n_projections", int, 1, None),
    ("n_features", int, 1, None),
    ("n_train", int, 1, None),
    ("n_eval", int, 1, None),
)


def record_problem(record: Any, cfg: RunConfig) -> str | None:
    """Why a cached record cannot stand for ``cfg``'s run (None if it can).

    A record is reused only if it is a record of exactly this configuration
    (every field of ``cfg`` equal: a file copied over another run's is not) on
    a chip with the same parameter values (:meth:`RunConfig.chip_digest`: a
    preset refitted since is not), written by this version of the package
    (results change between versions), and every measured value has its type
    and range (an accuracy of 2.5 is an edited or damaged file).
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, value in dataclasses.asdict(cfg).items():
        if key not in record or record[key] != value or type(record[key]) is not type(value):
            return f"field {key!r} is {record.get(key)!r}, the run has {value!r}"
    digest = cfg.chip_digest()
    if digest and "chip_digest" not in record:
        return "no 'chip_digest' (written before records named their chip's values)"
    if record.get("chip_digest", "") != digest:
        return (
            f"computed on a chip with other parameter values (digest "
            f"{record.get('chip_digest')!r}, the run's preset has {digest!r})"
        )
    if record.get("version") != __version__:
        return f"written by analogkernels {record.get('version')!r}, this is {__version__}"
    for name, kind, low, high in _RECORD_FIELDS:
        value = record.get(name)
        ok_type = isinstance(value, kind) or (kind is float and isinstance(value, int))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value):
            return f"field {name!r} is {value!r}, not a finite {kind.__name__}"
        if (low is not None and value < low) or (high is not None and value > high):
            return f"field {name!r} is {value!r}, outside [{low}, {high}]"
    return None


def read_record(path: Path, cfg: RunConfig) -> dict[str, Any] | None:
    """The cached record of ``cfg`` at ``path``, or None.

    None when it is missing, unreadable or fails :func:`record_problem` (the run is
    then recomputed and the file overwritten).
    """
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if record_problem(record, cfg) is None else None


def run_calibration(
    targets: dict[Any, Any],
    out: Path,
    *,
    accuracy_drops: dict[Any, Any] | None = None,
    parameters: Sequence[str],
    seeds: int,
    data_dir: str | None = None,
    max_evaluations: int,
    start: dict[str, float] | None = None,
    progress: bool = True,
    per_dataset: Sequence[str] = (),
) -> Any:
    """Fit the chip model to measured kernel errors and write ``calibration.json``.

    :func:`analogkernels.calibration.fit` with a progress bar on stderr (one
    step per chi^2 evaluation).

    Parameters
    ----------
    targets : dict
        The measured errors per cell (:func:`analogkernels.calibration.load_targets`).
    accuracy_drops : dict, optional
        The measured accuracy drops per cell (``metric="accuracy_drop"``), fitted too.
    out : Path
        The output folder (it must exist).
    parameters : sequence of str
        The free parameters (names of :data:`analogkernels.calibration.PARAMETERS`).
    seeds : int
        Simulation seeds ``0 .. seeds - 1``.
    data_dir : str, optional
        Folder with the data files.
    max_evaluations : int
        Budget of chi^2 evaluations.
    start : dict, optional
        Starting values of free parameters (default: the base config's); for a
        per-dataset parameter by name (every dataset) or ``"name[dataset]"``.
    progress : bool, default True
        Show the progress bar.
    per_dataset : sequence of str, default ()
        Free parameters fitted with one value per dataset (a diagnostic of run
        conditions; see :func:`analogkernels.calibration.fit`).

    Returns
    -------
    analogkernels.calibration.CalibrationResult
        The fit, also written to ``out / "calibration.json"``.
    """
    from tqdm import tqdm

    from ..calibration import fit

    bar = tqdm(
        total=max_evaluations,
        disable=not progress,
        unit="eval",
        desc="calibrate",
        dynamic_ncols=True,
    )

    def step(evaluation: int, chi2: float) -> None:
        bar.update(1)
        bar.set_postfix(chi2=f"{chi2:.1f}", refresh=False)

    try:
        result = fit(
            targets,
            accuracy_drops=accuracy_drops,
            parameters=parameters,
            seeds=range(seeds),
            data_dir=data_dir,
            max_evaluations=max_evaluations,
            start=start,
            progress=step,
            per_dataset=per_dataset,
        )
    finally:
        bar.close()
    write_json_atomic(out / "calibration.json", result.to_json())
    return result
