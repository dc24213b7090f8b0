"""`miad benchmark --executor slurm`: an array of SLURM jobs, each a worker on the shared output folder, through
submitit (https://github.com/facebookincubator/submitit).

Each job runs one worker per GPU it holds (`--gpus-per-job` tasks, task k pinned to the job's k-th GPU; one CPU
task without GPUs), and the workers claim runs from `--out` as any other worker does, so jobs may start, die or
time out in any order: a dead job's run is taken over by a live one. submitit keeps each job's pickled call,
stdout and stderr under `OUT/slurm/<job id>/`, so a failed job can be debugged from the output folder alone.
submitit (the `cluster` extra) is imported where it is used: miad works without it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from miad.bench.worker import work
from miad.bench.workers import visible_gpus
from miad.errors import MiadError


def check_executor(cluster: str = "slurm") -> Any:
    """submitit, once it and (for SLURM) `sbatch` are known to be there; else a one-line error with the fix."""
    try:
        import submitit
    except ImportError:
        raise MiadError("--executor slurm needs submitit, which is not installed; run "
                        "`pip install 'miad[cluster]'` (or `pip install submitit`)") from None
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise MiadError("--executor slurm: no `sbatch` on PATH; submit from a SLURM login node, or run the "
                        "workers on this machine with --jobs N (without --executor slurm)")
    return submitit


def submit_workers(out: Path, jobs: int, partition: str | None = None, gpus_per_job: int = 1,
                   time_limit_min: int = 24 * 60, device: str = "auto", num_workers: int = 0,
                   loggers: list[str] | None = None, cluster: str = "slurm") -> list[Any]:
    """Submit `jobs` worker jobs on `out` (whose command is already recorded); the submitit jobs.

    cluster: "slurm", or "local" (submitit's local executor: the same jobs as processes on this machine).
    """
    submitit = check_executor(cluster)
    out = Path(out).resolve()
    executor = submitit.AutoExecutor(folder=out / "slurm" / "%j", cluster=cluster)
    executor.update_parameters(
        name=f"miad-benchmark-{out.name}", timeout_min=time_limit_min, gpus_per_node=gpus_per_job,
        tasks_per_node=max(1, gpus_per_job), slurm_partition=partition, slurm_array_parallelism=jobs,
    )
    return executor.map_array(job_worker, [str(out)] * jobs, [device] * jobs, [num_workers] * jobs,
                              [loggers] * jobs)


def job_worker(out: str, device: str = "auto", num_workers: int = 0, loggers: list[str] | None = None
               ) -> dict[str, Any]:
    """What each task of a job runs: pin to this task's GPU, then be one more worker on `out`."""
    import submitit


    env = submitit.JobEnvironment()
    gpus = visible_gpus(device)
    if len(gpus) > 1:  # before CUDA starts in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[env.local_rank % len(gpus)]
    failed = work(out, device, num_workers, loggers=loggers)
    return {"job": env.job_id, "task": env.global_rank, "failed": failed}
