"""The benchmark: method x category x seed runs, flat result rows, the paper's tables, Figure A.1, a report.

    from miad.bench import run_benchmark
    run_benchmark("builtin", methods="all", scenarios="all", preset="quick", out="bench-out")

`run_benchmark` (runner.py) runs or resumes the grid and writes everything; `write_outputs` (outputs.py)
rebuilds the results, tables, figures and report of a folder from its finished runs.
"""

__all__ = ["BenchmarkResult", "run_benchmark", "write_outputs"]


def __getattr__(name: str):
    # Lazy, so that `miad.bench.claims` and the table code import without the runner's dependencies.
    if name in ("BenchmarkResult", "run_benchmark"):
        from miad.bench import runner

        return getattr(runner, name)
    if name == "write_outputs":
        from miad.bench.outputs import write_outputs

        return write_outputs
    raise AttributeError(f"module 'miad.bench' has no attribute {name!r}")
