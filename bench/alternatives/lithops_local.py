"""Calls task(x) = x**2 for x = 0 .. N-1 through Lithops' localhost executor and
prints one JSON line of timings. Copied next to a venv with lithops by
bench/support/alternatives.ts and run with that venv's Python:

    python lithops_local.py N WORKER_PROCESSES LOCALHOST_VERSION

LOCALHOST_VERSION 2 (the default of Lithops) starts a Python process per call;
1 runs the whole job in one runner process that forks per call.
"""

import json
import sys
import time

started = time.perf_counter()

import lithops  # noqa: E402


def task(x):
    return x * x


def main():
    n, workers, version = (int(a) for a in sys.argv[1:4])
    config = {
        "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "WARNING"},
        "localhost": {"runtime": sys.executable, "worker_processes": workers, "version": version},
    }
    fexec = lithops.FunctionExecutor(config=config)
    ready = time.perf_counter()
    futures = fexec.map(task, list(range(n)))
    results = fexec.get_result(futures)
    done = time.perf_counter()
    fexec.clean()
    cleaned = time.perf_counter()
    # Lithops deletes its temporary data in a detached process it spawns; its
    # pid lets the caller wait for it before measuring anything else.
    cleaner = getattr(lithops.FunctionExecutor, "_cleaner_process", None)
    print(json.dumps({
        "startupMs": (ready - started) * 1000,
        "callsMs": (done - ready) * 1000,
        "cleanupMs": (cleaned - done) * 1000,
        "n": len(results),
        "sum": sum(results),
        "cleanerPid": cleaner.pid if cleaner is not None else None,
    }))


if __name__ == "__main__":
    main()
