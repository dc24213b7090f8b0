"""`miad benchmark --executor slurm`: an array of SLURM jobs, each a worker on the shared output folder, through
submitit (https://github.com/facebookincubator/submitit).

Each job runs one worker per GPU it holds (`--gpus-per-job` tasks, task k pinned to the job's k-th GPU; one CPU
task without GPUs), and the workers claim runs from `--out` as any other worker does, so jobs may start, die or
time out in any order: a dead job's run is taken over by a live one. With `--gpus-per-run K` each job is instead
one worker of K tasks that train every run together with DistributedDataParallel (`miad.bench.group`; NCCL on
GPUs, Gloo on CPU tasks), SLURM ending all of a job's tasks when one fails. submitit keeps each job's pickled call,
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


def check_gpus_per_run(gpus_per_run: int, gpus_per_job: int) -> None:
    if gpus_per_run > 1 and gpus_per_job not in (0, gpus_per_run):
        raise MiadError(f"--gpus-per-run {gpus_per_run} with --gpus-per-job {gpus_per_job}: a job is one worker of "
                        f"--gpus-per-run tasks; pass --gpus-per-job {gpus_per_run} (or 0 for CPU tasks)")


def submit_workers(out: Path, jobs: int, partition: str | None = None, gpus_per_job: int = 1,
                   time_limit_min: int = 24 * 60, device: str = "auto", num_workers: int = 0,
                   loggers: list[str] | None = None, cluster: str = "slurm", gpus_per_run: int = 1) -> list[Any]:
    """Submit `jobs` worker jobs on `out` (whose command is already recorded); the submitit jobs.

    cluster: "slurm", or "local" (submitit's local executor: the same jobs as processes on this machine).
    gpus_per_run > 1: each job is one worker of that many tasks training each run together (DDP).
    """
    check_gpus_per_run(gpus_per_run, gpus_per_job)
    submitit = check_executor(cluster)
    out = Path(out).resolve()
    executor = submitit.AutoExecutor(folder=out / "slurm" / "%j", cluster=cluster)
    together = gpus_per_run > 1
    executor.update_parameters(
        name=f"miad-benchmark-{out.name}", timeout_min=time_limit_min, gpus_per_node=gpus_per_job,
        tasks_per_node=gpus_per_run if together else max(1, gpus_per_job), slurm_partition=partition,
        slurm_array_parallelism=jobs,
        # one failed task leaves the others of its DDP group blocked in a collective: SLURM ends them all
        **({"slurm_srun_args": ["--kill-on-bad-exit=1"]} if together and cluster == "slurm" else {}),
    )
    return executor.map_array(job_worker, [str(out)] * jobs, [device] * jobs, [num_workers] * jobs,
                              [loggers] * jobs, [together] * jobs)


def job_worker(out: str, device: str = "auto", num_workers: int = 0, loggers: list[str] | None = None,
               together: bool = False) -> dict[str, Any]:
    """What each task of a job runs: pin to this task's GPU (or, `together`, join the job's process group), then
    be one more worker on `out`."""
    import submitit
    from submitit.helpers import TorchDistributedEnvironment


    env = submitit.JobEnvironment()
    if together:  # RANK, WORLD_SIZE, MASTER_ADDR/PORT, LOCAL_RANK as torchrun sets them; the runner starts the group
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    else:
        gpus = visible_gpus(device)
        if len(gpus) > 1:  # before CUDA starts in this process
            os.environ["CUDA_VISIBLE_DEVICES"] = gpus[env.local_rank % len(gpus)]
    failed = work(out, device, num_workers, loggers=loggers)
    return {"job": env.job_id, "task": env.global_rank, "failed": failed}
