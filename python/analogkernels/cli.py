"""``analogkernels`` command line: the paper's experiments as one command.

- ``analogkernels demo``: under a minute on scikit-learn's bundled breast-cancer
  data (no download): RFF/ORF/SORF, FP vs simulated HERMES chip, accuracy and
  approximation error; prints a table and writes a PNG.
- ``analogkernels ridge ...``: the paper's ridge-classification sweep
  (``analogkernels.experiments``), with progress, parallel jobs (local
  processes, or tasks on a Dask cluster with ``--scheduler``), resumable cache,
  ``runs.csv``/``runs.json``, ``summary.md`` and one figure per dataset.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import AnalogKernelsError


class OutputError(Exception):
    """The output folder cannot be created or written (exit code 2)."""


def prepare_out(out: Path) -> Path:
    """Create ``out`` if needed and check that files can be written in it, so
    that a bad ``--out`` fails before any work, with one line that names it."""
    try:
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} is a file, not a folder")
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write to the output folder {out}: {reason}") from exc
    return out


DEFAULT_DATASETS = "ijcnn1,cod-rna,skin,magic04"


def _csv_list(choices: tuple[str, ...] | None = None):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        if choices is not None:
            bad = [t for t in items if t not in choices]
            if bad:
                raise argparse.ArgumentTypeError(
                    f"invalid choice(s) {', '.join(bad)}; choose from {', '.join(choices)}"
                )
        return items

    return parse


K_MAX = 8


def _k_range(text: str) -> list[int]:
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split("..", 1))
            bounds = [lo, hi]
        else:
            bounds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a range like 1..5 or a list like 1,3,5, got {text!r}"
        ) from None
    # Check the bounds before building a range (1..100000000 is 3.7 GB as a list).
    if min(bounds) < 1 or max(bounds) > K_MAX:
        raise argparse.ArgumentTypeError(f"k must lie in 1..{K_MAX}, got {text!r}")
    if ".." in text:
        if bounds[0] > bounds[1]:
            raise argparse.ArgumentTypeError(f"empty range {text!r}: write low..high")
        return list(range(bounds[0], bounds[1] + 1))
    return bounds


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .experiments import BACKENDS, KERNELS, SAMPLERS

    parser = argparse.ArgumentParser(
        prog="analogkernels",
        description="Kernel approximation on simulated analog in-memory computing hardware.",
    )
    parser.add_argument("--version", action="version", version=f"analogkernels {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="one-minute demo on bundled data (no download)")
    demo.add_argument("--out", type=Path, default=Path("analogkernels-demo"), help="output folder")
    demo.add_argument("--seeds", type=_positive_int, default=3)

    ridge = sub.add_parser("ridge", help="the paper's ridge-classification sweep")
    ridge.add_argument(
        "--dataset",
        type=_csv_list(),
        default=_csv_list()(DEFAULT_DATASETS),
        help=f"comma list (default {DEFAULT_DATASETS}; also letter, eeg, covtype)",
    )
    ridge.add_argument("--kernel", type=_csv_list(KERNELS), default=list(KERNELS))
    ridge.add_argument("--sampler", type=_csv_list(SAMPLERS), default=list(SAMPLERS))
    ridge.add_argument("--k", type=_k_range, default=[1, 2, 3, 4, 5], help="log2(s/d): 1..5")
    ridge.add_argument("--seeds", type=_positive_int, default=10, help="seeds 0..N-1")
    ridge.add_argument("--backend", type=_csv_list(BACKENDS), default=list(BACKENDS))
    ridge.add_argument("--preset", choices=["hermes", "ideal"], default="hermes")
    ridge.add_argument(
        "--programming",
        choices=["statistical", "iterative"],
        default="statistical",
        help="statistical noise model, or device-level program-and-verify (analogkernels.pcm)",
    )
    ridge.add_argument(
        "--t-inference",
        type=_nonneg_float,
        default=0.0,
        help="seconds after programming at which the chip is read",
    )
    ridge.add_argument(
        "--ijcnn1-encoding",
        choices=["paper", "full"],
        default="paper",
        help="paper: the 13 columns of the paper's code; full: 22 LIBSVM columns",
    )
    ridge.add_argument(
        "--out", type=Path, default=None, help="output folder (default results/<timestamp>)"
    )
    ridge.add_argument("--jobs", type=_positive_int, default=1, help="parallel processes")
    ridge.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the configurations as tasks on a Dask 'distributed' scheduler at ADDRESS "
        "(tcp://host:8786), or on a LocalCluster of N worker processes with local:N "
        "(needs analogkernels[dask]); same results, cache and resume",
    )
    ridge.add_argument(
        "--quick",
        action="store_true",
        help="k in {1,3,5}, 2 seeds, at most 4000 train and 4000 eval rows",
    )
    ridge.add_argument("--data-dir", default=None, help="folder with the data files")
    ridge.add_argument("--no-progress", action="store_true")

    attn = sub.add_parser("attention", help="kernelised attention experiments (needs [torch])")
    attn_sub = attn.add_subparsers(dest="attention_command", required=True)
    lo = attn_sub.add_parser("listops", help="train a small Performer on ListOps, FP vs chip")
    lo.add_argument("--quick", action="store_true", help="8000 trees, 1500 + 300 steps")
    lo.add_argument("--seeds", type=_positive_int, default=10, help="chip programming seeds")
    lo.add_argument("--t-inference", type=_nonneg_float, default=0.0)
    lo.add_argument("--steps", type=_positive_int, default=None, help="FP training steps")
    lo.add_argument("--hwa-steps", type=_positive_int, default=None, help="HW-aware steps")
    lo.add_argument("--out", type=Path, default=Path("results") / "attention")
    err = attn_sub.add_parser("error", help="FAVOR+ vs softmax attention error vs features")
    err.add_argument("--seeds", type=_positive_int, default=10)
    err.add_argument("--quick", action="store_true", help="k in 1..4, 3 seeds")
    err.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ListOps model (model.pt from 'attention listops') to capture Q/K/V from",
    )
    err.add_argument("--out", type=Path, default=Path("results") / "attention")

    energy = sub.add_parser("energy", help="energy/latency estimate vs a GPU")
    energy.add_argument(
        "--dataset", type=_csv_list(), default=_csv_list()("ijcnn1,cod-rna,skin,magic04,letter,eeg")
    )
    energy.add_argument("--kernel", choices=["rbf", "arccos0"], default="rbf")
    energy.add_argument("--mode", choices=["4-phase", "1-phase"], default="4-phase")
    return parser


# ---------------------------------------------------------------------------
# sweep machinery


def _worker_init(threads: int) -> None:
    import analogkernels

    analogkernels.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover
        pass


def _run_and_store(cfg_dict: dict[str, Any], path: str) -> dict[str, Any]:
    from .experiments import RunConfig, run_one, write_json_atomic

    record = run_one(RunConfig(**cfg_dict))
    write_json_atomic(Path(path), record)
    return record


def run_sweep(
    configs: list,
    out: Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Run every config not already cached in ``out/runs``; return all records.

    With ``scheduler`` (a ``distributed`` scheduler address, or ``local[:N]``)
    the pending runs are tasks on that Dask cluster (:func:`analogkernels.dask.iter_sweep`);
    this process writes each record as it arrives, so the cache and resume work as
    without Dask and a lost worker loses no finished run."""
    import dataclasses

    from tqdm import tqdm

    from .experiments import read_record

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
        desc="ridge sweep",
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
            threads = max(1, (os.cpu_count() or 1) // jobs)
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
    import dataclasses

    from .dask import blas_threads, iter_sweep, sweep_client
    from .experiments import write_json_atomic

    blas = blas_threads()  # before the cluster starts (its workers get the same)
    client, cluster = sweep_client(scheduler)
    try:
        # A LocalCluster's workers share this machine: split its cores among them
        # as --jobs does (a remote cluster's workers keep their own settings).
        threads = None
        if cluster is not None:
            threads = max(1, (os.cpu_count() or 1) // max(1, len(cluster.workers)))
        items = [dataclasses.asdict(cfg) for cfg, _ in pending]
        for i, record in iter_sweep(items, client, threads=threads, blas=blas):
            cfg, path = pending[i]
            write_json_atomic(path, record)
            records[cfg.key()] = record
            bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def write_outputs(records: list[dict[str, Any]], out: Path) -> list[Path]:
    from .experiments import plot_dataset, summarize, write_json_atomic

    written = []
    write_json_atomic(out / "runs.json", records)
    written.append(out / "runs.json")
    if records:
        tmp = out / ".runs.csv.tmp"
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        os.replace(tmp, out / "runs.csv")
        written.append(out / "runs.csv")
    tmp = out / ".summary.md.tmp"
    tmp.write_text(summarize(records))
    os.replace(tmp, out / "summary.md")
    written.append(out / "summary.md")
    for ds in sorted({r["dataset"] for r in records}):
        path = out / f"figure_{ds.replace(':', '_')}.png"
        plot_dataset(records, ds, path)
        written.append(path)
    return written


# ---------------------------------------------------------------------------
# commands


def cmd_ridge(args: argparse.Namespace) -> int:
    from .experiments import RunConfig

    ks, seeds = args.k, args.seeds
    limit_train = limit_eval = None
    if args.quick:
        ks = [k for k in ks if k in (1, 3, 5)] or ks[:1]
        seeds = min(seeds, 2)
        limit_train = limit_eval = 4000
    if args.scheduler is not None:
        if args.jobs != 1:
            print(
                "analogkernels ridge: --jobs and --scheduler exclude each other "
                "(with --scheduler local:N the cluster has N workers)",
                file=sys.stderr,
            )
            return 2
        from .dask import require

        try:
            require(distributed=True)
        except ImportError as exc:
            print(f"analogkernels ridge: --scheduler: {exc}", file=sys.stderr)
            return 1
    out = prepare_out(args.out or Path("results") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    configs = [
        RunConfig(
            dataset=ds,
            kernel=kern,
            sampler=smp,
            k=k,
            seed=seed,
            backend=b,
            preset=args.preset,
            programming=args.programming,
            t_inference=args.t_inference,
            ijcnn1_encoding=args.ijcnn1_encoding,
            max_train=limit_train,
            max_eval=limit_eval,
            data_dir=args.data_dir,
        )
        for ds in args.dataset
        for kern in args.kernel
        for smp in args.sampler
        for k in ks
        for seed in range(seeds)
        for b in args.backend
    ]
    # Fail fast on a missing dataset, before any process starts.
    from .datasets import DATASETS, load

    for ds in args.dataset:
        if ds not in DATASETS:
            print(
                f"analogkernels ridge: unknown dataset {ds!r}; choose from {', '.join(DATASETS)}",
                file=sys.stderr,
            )
            return 2
        load(ds, data_dir=args.data_dir, ijcnn1_encoding=args.ijcnn1_encoding)
    t0 = time.perf_counter()
    records = run_sweep(
        configs, out, jobs=args.jobs, progress=not args.no_progress, scheduler=args.scheduler
    )
    written = write_outputs(records, out)
    print((out / "summary.md").read_text())
    print(f"{len(records)} runs in {time.perf_counter() - t0:.1f} s; wrote:")
    for p in written:
        print(f"  {p}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .experiments import RunConfig

    out = prepare_out(args.out)
    t0 = time.perf_counter()
    configs = [
        RunConfig(
            dataset="sklearn:breast_cancer",
            kernel="rbf",
            sampler=smp,
            k=k,
            seed=seed,
            backend=b,
            t_inference=3600.0,
        )
        for smp in ("rff", "orf", "sorf")
        for k in (1, 3)
        for seed in range(args.seeds)
        for b in ("fp", "analog")
    ]
    records = run_sweep(configs, out, jobs=1, progress=False)
    write_outputs(records, out)
    print(
        "analogkernels demo — breast cancer (scikit-learn), RBF kernel (γ = 0.05), ridge α = 0.5,"
    )
    print(f"projection on the simulated HERMES chip read 1 h after programming; {args.seeds} seeds")
    print()
    print(
        f"{'sampler':>7} {'k':>2} {'s':>4} | {'FP acc %':>8} {'chip acc %':>10} | "
        f"{'FP kernel err':>13} {'chip kernel err':>15}"
    )
    import numpy as np

    for smp in ("rff", "orf", "sorf"):
        for k in (1, 3):
            sel = {
                b: [r for r in records if r["sampler"] == smp and r["k"] == k and r["backend"] == b]
                for b in ("fp", "analog")
            }
            acc = {b: 100 * np.mean([r["accuracy"] for r in v]) for b, v in sel.items()}
            err = {b: np.mean([r["approximation_error"] for r in v]) for b, v in sel.items()}
            s = sel["fp"][0]["n_projections"]
            print(
                f"{smp.upper():>7} {k:>2} {s:>4} | {acc['fp']:8.2f} {acc['analog']:10.2f} | "
                f"{err['fp']:13.4f} {err['analog']:15.4f}"
            )
    print()
    print(
        f"figure: {out / 'figure_sklearn_breast_cancer.png'}   "
        f"(done in {time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _plot_listops(run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    groups = [
        ("trained FP", run.fp, run.attention_only, run.full),
        ("after HW-aware fine-tuning", run.hwa_fp, run.hwa_attention_only, run.hwa_full),
    ]
    width = 0.25
    for i, (_, fp, att, full) in enumerate(groups):
        xs = np.array([i - width, i, i + width])
        means = [100 * fp, 100 * np.mean(att), 100 * np.mean(full)]
        errs = [0, 100 * np.std(att), 100 * np.std(full)]
        ax.bar(
            xs,
            means,
            width,
            yerr=errs,
            capsize=3,
            color=["tab:gray", "tab:blue", "tab:orange"],
            label=["FP", "projection on chip", "full model on chip"] if i == 0 else None,
        )
    ax.axhline(100 * run.settings["majority"], color="k", linestyle=":", label="majority class")
    ax.set_xticks([0, 1], [g[0] for g in groups])
    ax.set_ylabel("test accuracy (%)")
    lo = min(100 * run.settings["majority"], 100 * min(run.fp, run.hwa_fp)) - 5
    ax.set_ylim(max(0, lo), None)
    ax.set_title("ListOps: FP vs simulated HERMES chip (mean ± std over programming seeds)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_attention(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        print(
            "analogkernels attention needs PyTorch: pip install 'analogkernels[torch]'",
            file=sys.stderr,
        )
        return 1
    from . import lra

    out = prepare_out(args.out)
    if args.attention_command == "listops":
        t0 = time.perf_counter()
        run = lra.run_listops(
            quick=args.quick,
            seeds=args.seeds,
            t_inference=args.t_inference,
            train_steps=args.steps,
            hwa_steps=args.hwa_steps,
            progress=lambda msg: print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True),
        )
        torch.save(run.model.state_dict(), out / "model.pt")
        table = run.table() + f"Wall time {time.perf_counter() - t0:.0f} s.\n"
        (out / "listops.md").write_text(table)
        record = {k: v for k, v in run.__dict__.items() if k != "model"}
        (out / "listops.json").write_text(json.dumps(record, indent=1))
        _plot_listops(run, out / "listops.png")
        print(table)
        print(f"wrote {out / 'listops.md'}, {out / 'listops.png'}, {out / 'model.pt'}")
        return 0
    # error study
    import numpy as np

    rng = np.random.default_rng(0)
    d, L = 64, 128
    gauss = [
        tuple(rng.standard_normal((1, 1, L, d)) * s for s in (0.5, 0.5, 1.0)) for _ in range(4)
    ]
    sets = {"gaussian (d=64)": gauss}
    if args.model is not None:
        from .listops import REDUCED, generate

        model = lra.Performer(max_len=REDUCED.max_length)
        model.load_state_dict(torch.load(args.model))
        tokens, _ = generate(16, REDUCED, seed=123, pad_to=REDUCED.max_length)
        captured = lra.capture_qkv(model, tokens)
        sets["ListOps model layer 1 (d=32)"] = [captured[0]]
    ks = range(1, 5) if args.quick else range(1, 8)
    seeds = min(args.seeds, 3) if args.quick else args.seeds
    records = lra.attention_error_study(sets, ks=ks, seeds=seeds)
    lines = [
        "# FAVOR+ attention error vs softmax attention (s = k·d − 1 projections)",
        "",
        "| Q/K/V | k | s | FP error | chip error |",
        "|---|---|---|---|---|",
    ]
    by = {(r["source"], r["k"], r["backend"]): r for r in records}
    for src in sets:
        for k in ks:
            fp, an = by[(src, k, "fp")], by[(src, k, "analog")]
            lines.append(
                f"| {src} | {k} | {fp['s']} | {fp['error_mean']:.4f} ± {fp['error_std']:.4f} "
                f"| {an['error_mean']:.4f} ± {an['error_std']:.4f} |"
            )
    table = "\n".join(lines) + f"\n\nMean over {seeds} seeds (SORF projections, HERMES preset).\n"
    (out / "attention_error.md").write_text(table)
    (out / "attention_error.json").write_text(json.dumps(records, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
    for src, colour in zip(sets, ("tab:blue", "tab:green"), strict=False):
        for backend, style in (("fp", "-"), ("analog", "--")):
            rs = [by[(src, k, backend)] for k in ks]
            ax.errorbar(
                list(ks),
                [r["error_mean"] for r in rs],
                yerr=[r["error_std"] for r in rs],
                color=colour,
                linestyle=style,
                marker="o",
                capsize=2,
                label=f"{src} {backend.upper()}",
            )
    ax.set_xlabel("k (s = k·d − 1 projections)")
    ax.set_ylabel("relative attention error")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(out / "attention_error.png", dpi=110)
    plt.close(fig)
    print(table)
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    from .energy import table

    print(table(args.dataset, kernel=args.kernel, mode=args.mode))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "ridge": cmd_ridge,
        "demo": cmd_demo,
        "energy": cmd_energy,
        "attention": cmd_attention,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished runs are saved; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except OutputError as exc:
        print(f"analogkernels {args.command}: {exc}", file=sys.stderr)
        return 2
    except (AnalogKernelsError, ValueError, FileNotFoundError) as exc:
        print(f"analogkernels {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # Writing results (disk full, a folder made read-only meanwhile).
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"analogkernels {args.command}: cannot write the results{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
