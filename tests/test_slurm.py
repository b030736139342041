"""utils/slurm.pl against a real Slurm cluster (the one-node cluster of tools/slurm/local_slurm.sh).

Skipped where no cluster answers; with INMSRL_REQUIRE_SLURM=1 (CI) that is a failure instead, so the
Slurm backend is never silently untested there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SLURM_PL = Path(__file__).resolve().parents[1] / "utils" / "slurm.pl"


def slurm_missing_reason() -> str | None:
    """Why Slurm cannot be used here, or None when a node is up."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (start a local cluster: tools/slurm/local_slurm.sh start)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sinfo does not answer: {error}"
    if states.returncode != 0 or not any(s.strip("*~#") in ("idle", "mixed", "allocated")
                                         for s in states.stdout.split()):
        return f"no Slurm node is up (sinfo: {states.stdout.strip() or states.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    reason = slurm_missing_reason()
    if reason is None:
        return
    if os.environ.get("INMSRL_REQUIRE_SLURM") == "1":
        pytest.fail(f"INMSRL_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def job_name(slurm: None) -> Iterator[str]:
    """A unique log/job name for one test; its jobs are cancelled afterwards whatever happened."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["scancel", "--name", name], capture_output=True)


def slurm_pl(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SLURM_PL), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.timeout(180)
def test_array_job_succeeds(tmp_path: Path, job_name: str) -> None:
    result = slurm_pl("JOB=1:3", f"log/{job_name}.JOB.log", "echo", "task", "JOB", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for task in (1, 2, 3):
        log = lines(tmp_path / f"log/{job_name}.{task}.log")
        assert log[0] == f"# echo task {task}" and log[1].startswith("# Started at ")
        assert "task " + str(task) in log
        assert log[-2].startswith("# Accounting: time=") and log[-1].startswith("# Ended (code 0)")
    assert (tmp_path / f"log/q/{job_name}.sh").is_file()


@pytest.mark.timeout(240)
def test_failed_task_and_pick_failed(tmp_path: Path, job_name: str) -> None:
    log = f"log/{job_name}.JOB.log"
    result = slurm_pl("JOB=1:3", log, "test", "JOB", "-ne", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert f"slurm.pl: 1 / 3 failed, log is in log/{job_name}.2.log" in result.stderr
    assert lines(tmp_path / f"log/{job_name}.2.log")[-1].startswith("# Ended (code 1)")

    untouched = {t: (tmp_path / f"log/{job_name}.{t}.log").stat().st_mtime_ns for t in (1, 3)}
    rerun = slurm_pl("--pick", "failed", "JOB=1:3", log, "echo", "again", "JOB", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "again 2" in lines(tmp_path / f"log/{job_name}.2.log")
    assert "--array=2 " in (tmp_path / f"log/q/{job_name}.sh").read_text()  # the command it submitted
    for task, mtime in untouched.items():
        assert (tmp_path / f"log/{job_name}.{task}.log").stat().st_mtime_ns == mtime


@pytest.mark.timeout(180)
def test_conf_options_reach_the_job(tmp_path: Path, job_name: str) -> None:
    show = tmp_path / "show.sh"
    show.write_text('echo "cpus=$SLURM_CPUS_PER_TASK mem=$SLURM_MEM_PER_CPU"\n')
    result = slurm_pl("--num-threads", "2", "--mem=100M", f"log/{job_name}.log", "sh", str(show),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = lines(tmp_path / f"log/{job_name}.log")
    assert "cpus=2 mem=100" in log
    assert log[-2].endswith("threads=2")


@pytest.mark.timeout(60)
def test_sbatch_error_is_reported_with_the_command(tmp_path: Path, job_name: str) -> None:
    result = slurm_pl("-p", "no_such_partition", f"log/{job_name}.log", "true", cwd=tmp_path)
    assert result.returncode == 1
    assert "sbatch failed" in result.stderr and "partition" in result.stderr.lower()
    assert "the command was: sbatch" in result.stderr and "no_such_partition" in result.stderr


@pytest.mark.timeout(120)
def test_sigterm_cancels_the_job(tmp_path: Path, job_name: str) -> None:
    process = subprocess.Popen([str(SLURM_PL), f"log/{job_name}.log", "sleep", "300"], cwd=tmp_path,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while "R" not in subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%t"], capture_output=True,
                                    text=True).stdout.split():
        assert time.monotonic() < deadline, "the job did not start running"
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "cancelled Slurm job" in stderr
    deadline = time.monotonic() + 30
    while subprocess.run(["squeue", "-h", "-n", job_name, "-t", "PD,R"], capture_output=True,
                         text=True).stdout.strip():
        assert time.monotonic() < deadline, "the job still runs after slurm.pl was terminated"
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_time_limit_kill_is_reported(tmp_path: Path, job_name: str) -> None:
    # The limit goes through the conf language, as a user's conf/slurm.conf would pass it.
    conf = tmp_path / "slurm.conf"
    conf.write_text("command sbatch --export=PATH\noption time=* --time=$0\n")
    task = tmp_path / "task.sh"
    task.write_text('[ "$1" = 2 ] && exec sleep 600\necho quick\n')
    result = slurm_pl("--config", str(conf), "--time", "1", "JOB=1:2", f"log/{job_name}.JOB.log",
                      "sh", str(task), "JOB", cwd=tmp_path, timeout=280)
    assert result.returncode == 1
    expected = f"task 2 was killed by Slurm (TIMEOUT: time limit), log is in log/{job_name}.2.log"
    assert expected in result.stderr
    assert "1 / 2 failed" in result.stderr
    assert "# Killed by Slurm: TIMEOUT" in (tmp_path / f"log/{job_name}.2.log").read_text()
    assert lines(tmp_path / f"log/{job_name}.1.log")[-1].startswith("# Ended (code 0)")


@pytest.mark.timeout(180)
def test_task_over_its_memory_request_is_killed_and_named(tmp_path: Path, job_name: str) -> None:
    # Task 2 holds 300 MB under a 100 MB request; tools/slurm/local_slurm.sh enforces requests
    # (task/cgroup, or jobacct_gather's OverMemoryKill where no cgroup can be used).
    hog = tmp_path / "hog.py"
    hog.write_text("import sys, time\nhold = bytearray(int(sys.argv[1]) * 2**20)\ntime.sleep(4)\n"
                   "print('survived')\n")
    result = slurm_pl("--mem", "100M", "JOB=1:2", f"log/{job_name}.JOB.log", "python3", str(hog),
                      "$((JOB * JOB * 100 - 100 + 10))", cwd=tmp_path)
    assert result.returncode == 1
    expected = f"task 2 was killed by Slurm (OUT_OF_MEMORY: out of memory), log is in log/{job_name}.2.log"
    assert expected in result.stderr, result.stderr
    assert "1 / 2 failed" in result.stderr
    killed = (tmp_path / f"log/{job_name}.2.log").read_text()
    assert "# Killed by Slurm: OUT_OF_MEMORY" in killed and "survived" not in killed
    assert "survived" in (tmp_path / f"log/{job_name}.1.log").read_text()
