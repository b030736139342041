"""utils/run.pl, queue.pl and slurm.pl: the Kaldi job interface every recipe stage runs through.

run.pl is exercised for real; queue.pl and slurm.pl through their dry run (the conf translation) and,
for queue.pl, against a tiny fake Grid Engine (qsub/qstat/qacct shims) since no SGE exists here. Real
Slurm runs are in test_slurm.py.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[1] / "utils"


def wrapper(
    script: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run utils/<script> from `cwd` (not the repository), as a recipe's run.sh would."""
    return subprocess.run(
        [str(UTILS / script), *args], cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    return path


def intervals(directory: Path) -> list[tuple[float, float, str]]:
    """(start, end, name) of every task that recorded <name>.start / <name>.end timestamps."""
    return [
        (float(start.read_text()), float(start.with_suffix(".end").read_text()), start.stem)
        for start in sorted(directory.glob("*.start"))
    ]


def max_concurrency(spans: list[tuple[float, float, str]]) -> int:
    return max(sum(1 for s, e, _ in spans if s <= start < e) for start, _, _ in spans)


# --- run.pl ---------------------------------------------------------------------------------------


def test_job_range_substitutes_log_name_and_command(tmp_path: Path) -> None:
    result = wrapper("run.pl", "JOB=1:4", "log/x.JOB.log", "echo", "JOB", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "log").glob("*.log")) == [f"x.{i}.log" for i in range(1, 5)]
    for task in range(1, 5):
        lines = log_lines(tmp_path / f"log/x.{task}.log")
        assert lines[0] == f"# echo {task}"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == str(task)
        assert lines[3].startswith("# Accounting: time=") and lines[3].endswith("threads=1")
        assert lines[4].startswith("# Ended (code 0) at ") and lines[4].endswith(" seconds")


def test_any_variable_name_and_single_task_range(tmp_path: Path) -> None:
    result = wrapper("run.pl", "SPLIT=7", "log/y.SPLIT.log", "echo", "part-SPLIT", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert log_lines(tmp_path / "log/y.7.log")[2] == "part-7"


@pytest.mark.parametrize("script", ["run.pl", "queue.pl", "slurm.pl"])
@pytest.mark.parametrize("bad_range", ["JOB=a:b", "JOB=1-4", "JOB=1:", "JOB="])
def test_a_malformed_range_is_an_error_not_a_log_name(script: str, bad_range: str, tmp_path: Path) -> None:
    result = wrapper(script, bad_range, "log/x.JOB.log", "touch", "ran", cwd=tmp_path,
                     env={"INMSRL_DRY_RUN": "1"} if script != "run.pl" else None)
    assert result.returncode == 1
    assert f"'{bad_range}' is not a task range" in result.stderr and "JOB=1:4" in result.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / bad_range).exists()
    assert not (tmp_path / "log").exists()


def test_a_log_file_with_an_equals_sign_needs_a_directory(tmp_path: Path) -> None:
    result = wrapper("run.pl", "./a=b", "echo", "hi", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert log_lines(tmp_path / "a=b")[2] == "hi"


def test_several_tasks_need_the_variable_in_the_log_name(tmp_path: Path) -> None:
    result = wrapper("run.pl", "JOB=1:2", "log/one.log", "true", cwd=tmp_path)
    assert result.returncode != 0
    assert "log/one.log" in result.stderr and "JOB" in result.stderr


def test_failed_task_is_reported_and_pick_failed_reruns_only_it(tmp_path: Path) -> None:
    result = wrapper("run.pl", "JOB=1:4", "log/x.JOB.log", "test", "JOB", "-ne", "3", cwd=tmp_path)
    assert result.returncode == 1
    assert "run.pl: 1 / 4 failed, log is in log/x.3.log" in result.stderr
    assert "failed task(s): 3" in result.stderr
    assert log_lines(tmp_path / "log/x.3.log")[-1].startswith("# Ended (code 1)")

    before = {t: (tmp_path / f"log/x.{t}.log").stat().st_mtime_ns for t in (1, 2, 4)}
    contents = {t: (tmp_path / f"log/x.{t}.log").read_text() for t in (1, 2, 4)}
    time.sleep(0.05)
    rerun = wrapper("run.pl", "--pick", "failed", "JOB=1:4", "log/x.JOB.log", "echo", "again", "JOB",
                    cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    lines = log_lines(tmp_path / "log/x.3.log")
    assert lines[2] == "again 3" and lines[-1].startswith("# Ended (code 0)")
    for task in (1, 2, 4):
        log = tmp_path / f"log/x.{task}.log"
        assert log.stat().st_mtime_ns == before[task] and log.read_text() == contents[task]

    nothing_left = wrapper("run.pl", "--pick=failed", "JOB=1:4", "log/x.JOB.log", "false", cwd=tmp_path)
    assert nothing_left.returncode == 0 and "nothing to run" in nothing_left.stderr


def test_single_failing_job_message(tmp_path: Path) -> None:
    result = wrapper("run.pl", "log/solo.log", "false", cwd=tmp_path)
    assert result.returncode == 1
    assert "run.pl: job failed, log is in log/solo.log" in result.stderr


def test_max_jobs_run_limits_concurrency(tmp_path: Path) -> None:
    task = write_script(tmp_path / "task.sh", 'date +%s.%N > "$1.start"; sleep 0.4; date +%s.%N > "$1.end"\n')
    (tmp_path / "times").mkdir()
    result = wrapper("run.pl", "--max-jobs-run", "2", "JOB=1:6", "log/t.JOB.log", "sh", str(task),
                     "times/JOB", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spans = intervals(tmp_path / "times")
    assert len(spans) == 6
    assert max_concurrency(spans) == 2  # never more than 2, and the limit is actually used


def test_gpu_pool_gives_each_running_task_its_own_gpu(tmp_path: Path) -> None:
    task = write_script(
        tmp_path / "task.sh",
        'echo "$CUDA_VISIBLE_DEVICES" > "$1.gpu"; date +%s.%N > "$1.start"; sleep 0.4; '
        'date +%s.%N > "$1.end"\n',
    )
    (tmp_path / "times").mkdir()
    result = wrapper("run.pl", "--gpu", "1", "JOB=1:4", "log/g.JOB.log", "sh", str(task), "times/JOB",
                     cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert result.returncode == 0, result.stderr
    spans = intervals(tmp_path / "times")
    gpu = {name: (tmp_path / "times" / f"{name}.gpu").read_text().strip() for _, _, name in spans}
    assert len(gpu) == 4 and set(gpu.values()) <= {"0", "1"}  # exactly one id each
    for s1, e1, a in spans:
        for s2, e2, b in spans:
            if a < b and s1 < e2 and s2 < e1:  # the two tasks ran at the same time
                assert gpu[a] != gpu[b], f"tasks {a} and {b} overlapped on GPU {gpu[a]}"


def test_gpu_pool_too_small_is_a_clear_error(tmp_path: Path) -> None:
    result = wrapper("run.pl", "--gpu", "2", "log/g.log", "true", cwd=tmp_path,
                     env={"CUDA_VISIBLE_DEVICES": "3"})
    assert result.returncode != 0
    assert "--gpu 2" in result.stderr and "CUDA_VISIBLE_DEVICES='3'" in result.stderr


def test_gpu_0_leaves_cuda_visible_devices_alone(tmp_path: Path) -> None:
    result = wrapper("run.pl", "--gpu", "0", "log/g.log", "printenv", "CUDA_VISIBLE_DEVICES", cwd=tmp_path,
                     env={"CUDA_VISIBLE_DEVICES": "5,6"})
    assert result.returncode == 0, result.stderr
    assert log_lines(tmp_path / "log/g.log")[2] == "5,6"


def test_each_task_gets_its_share_of_the_cpus_as_threads(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def threads(*args: str, extra: dict[str, str] | None = None) -> set[str]:
        for old in tmp_path.glob("log/*"):
            old.unlink()
        result = subprocess.run([str(UTILS / "run.pl"), *args, "log/t.JOB.log", "sh", "-c",
                                 'echo "$OMP_NUM_THREADS $MKL_NUM_THREADS"'], cwd=tmp_path,
                                env={**env, **(extra or {})}, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return {log_lines(p)[2] for p in tmp_path.glob("log/t.*.log")}

    cpus = os.cpu_count() or 1
    assert threads("JOB=1:1") == {f"{cpus} {cpus}"}  # one task: every CPU
    at_once = min(cpus, 4)
    share = max(1, cpus // at_once)
    assert threads("--max-jobs-run", str(at_once), "JOB=1:8") == {f"{share} {share}"}
    assert threads("--num-threads", "3", "JOB=1:2") == {"3 3"}
    assert threads("JOB=1:2", extra={"OMP_NUM_THREADS": "5"}) == {"5 "}  # the caller's choice stays


def test_options_in_equals_form_and_threads_in_accounting(tmp_path: Path) -> None:
    result = wrapper("run.pl", "--num-threads=3", "--max-jobs-run=1", "--mem=2G", "log/a.log", "true",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert log_lines(tmp_path / "log/a.log")[-2].endswith("threads=3")


def test_words_with_spaces_and_quotes_are_quoted(tmp_path: Path) -> None:
    result = wrapper("run.pl", "log dir/q.log", "echo", "a  b", 'say "hi"', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = log_lines(tmp_path / "log dir/q.log")
    assert lines[0] == "# echo \"a  b\" 'say \"hi\"'"
    assert lines[2] == 'a  b say "hi"'


def test_sigterm_kills_running_tasks(tmp_path: Path) -> None:
    task = write_script(tmp_path / "task.sh", 'echo $$ > "$1.pid"; exec sleep 60\n')
    process = subprocess.Popen(
        [str(UTILS / "run.pl"), "JOB=1:2", "log/s.JOB.log", "sh", str(task), "JOB"], cwd=tmp_path,
        stderr=subprocess.PIPE, text=True,
    )
    pid_files = [tmp_path / "1.pid", tmp_path / "2.pid"]
    deadline = time.monotonic() + 20
    while not all(p.exists() and p.read_text().strip() for p in pid_files):
        assert time.monotonic() < deadline, "tasks did not start"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode != 0
    assert "SIGTERM" in stderr
    for pid_file in pid_files:
        pid = int(pid_file.read_text())
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z", f"task process {pid} still runs"
    assert "# Killed: run.pl received SIGTERM" in (tmp_path / "log/s.1.log").read_text()


@pytest.mark.parametrize("script", ["run.pl", "queue.pl", "slurm.pl"])
def test_help(script: str, tmp_path: Path) -> None:
    result = wrapper(script, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: {script} [options] [JOB=a:b] <log-file> <command>")


@pytest.mark.parametrize("script", ["run.pl", "queue.pl", "slurm.pl"])
def test_missing_command_prints_usage(script: str, tmp_path: Path) -> None:
    result = wrapper(script, "JOB=1:2", "log/x.JOB.log", cwd=tmp_path)
    assert result.returncode != 0 and "usage:" in result.stderr


# --- conf translation (dry run) ---------------------------------------------------------------------


def submit_words(script: str, *args: str, cwd: Path) -> list[str]:
    """The submit command queue.pl / slurm.pl would run, via INMSRL_DRY_RUN=1."""
    result = wrapper(script, *args, cwd=cwd, env={"INMSRL_DRY_RUN": "1"})
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def contains(words: list[str], *sequence: str) -> bool:
    n = len(sequence)
    return any(words[i:i + n] == list(sequence) for i in range(len(words) - n + 1))


def test_slurm_default_conf_translation(tmp_path: Path) -> None:
    words = submit_words("slurm.pl", "--mem", "2G", "--num-threads", "2", "--gpu", "1", "--max-jobs-run", "3",
                         "-A", "acct", "JOB=1:5", "log/tr.JOB.log", "echo", "JOB", cwd=tmp_path)
    assert words[:3] == ["sbatch", "--export=PATH", "--ntasks-per-node=1"]
    for expected in (["--mem-per-cpu=2G"], ["--cpus-per-task=2"], ["-p", "gpu", "--gres=gpu:1"],
                     ["--array=1-5%3"], ["--parsable"], ["-A", "acct"]):
        assert contains(words, *expected), (expected, words)
    assert words[-1] == "log/q/tr.sh" and (tmp_path / "log/q/tr.sh").is_file()
    # without --gpu, `default gpu=0` applies and `option gpu=0` adds nothing
    plain = submit_words("slurm.pl", "--dry-run", "log/p.log", "true", cwd=tmp_path)
    assert not any("gres" in w or w == "gpu" for w in plain) and contains(plain, "--array=1")


def test_queue_default_conf_translation(tmp_path: Path) -> None:
    words = submit_words("queue.pl", "--mem=2G", "--num-threads", "4", "--max-jobs-run", "2", "-q", "all.q",
                         "-V", "JOB=1:4", "log/tr.JOB.log", "echo", "JOB", cwd=tmp_path)
    assert words[0] == "qsub" and contains(words, "-l", "arch=*64*")
    for expected in (["-l", "mem_free=2G,ram_free=2G"], ["-pe", "smp", "4"], ["-tc", "2"], ["-t", "1-4"],
                     ["-q", "all.q", "-V"]):
        assert contains(words, *expected), (expected, words)
    assert "-pe" not in submit_words("queue.pl", "--num-threads", "1", "log/a.log", "true", cwd=tmp_path)


CUSTOM_CONF = """\
# a site conf
command sbatch -p cpu   # trailing comment

option gpu=0 -p cpu-only
option gpu=* -p gpu --gres=gpu:$0
default gpu=0
option mem=0
option mem=* --mem=$0
option time=* --time=$0
"""


def test_custom_conf_exact_value_beats_star_and_default(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text(CUSTOM_CONF)
    default = submit_words("slurm.pl", "--config", str(conf), "log/a.log", "true", cwd=tmp_path)
    assert contains(default, "-p", "cpu-only")
    gpu = submit_words("slurm.pl", "--config", str(conf), "--gpu", "2", "--mem", "0", "--time", "5",
                       "log/a.log", "true", cwd=tmp_path)
    assert contains(gpu, "-p", "gpu", "--gres=gpu:2") and "cpu-only" not in gpu
    assert not any(w.startswith("--mem") for w in gpu)  # exact `mem=0` with no options adds nothing
    assert contains(gpu, "--time=5")
    queue = submit_words("queue.pl", f"--config={conf}", "--mem", "1G", "log/a.log", "true", cwd=tmp_path)
    assert contains(queue, "--mem=1G")


def test_unknown_option_names_option_and_conf(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text(CUSTOM_CONF)
    for script in ("slurm.pl", "queue.pl"):
        result = wrapper(script, "--dry-run", "--config", str(conf), "--foo-bar", "1", "log/a.log", "true",
                         cwd=tmp_path)
        assert result.returncode != 0
        assert "--foo-bar" in result.stderr and str(conf) in result.stderr
    builtin = wrapper("slurm.pl", "--dry-run", "--colour", "red", "log/a.log", "true", cwd=tmp_path)
    assert builtin.returncode != 0 and "--colour" in builtin.stderr and "built-in" in builtin.stderr


def test_unmatched_value_names_option_value_and_conf(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text("command qsub\noption gpu=0\n")
    result = wrapper("queue.pl", "--dry-run", "--config", str(conf), "--gpu", "2", "log/a.log", "true",
                     cwd=tmp_path)
    assert result.returncode != 0
    assert "--gpu 2" in result.stderr and str(conf) in result.stderr


def test_malformed_conf_line_names_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("command sbatch\n# fine\noption mem 4G\n")
    result = wrapper("slurm.pl", "--dry-run", "--config", str(conf), "log/a.log", "true", cwd=tmp_path)
    assert result.returncode != 0 and f"{conf}:3:" in result.stderr
    conf.write_text("option mem=* --mem=$0\n")
    result = wrapper("slurm.pl", "--dry-run", "--config", str(conf), "log/a.log", "true", cwd=tmp_path)
    assert result.returncode != 0 and "no 'command' line" in result.stderr


def test_pick_failed_submits_only_failed_ids(tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    for task in (1, 2, 4):
        (log_dir / f"x.{task}.log").write_text("# true\n# Ended (code 0) at now, elapsed time 0 seconds\n")
    (log_dir / "x.5.log").write_text("# true\n# Ended (code 2) at now, elapsed time 0 seconds\n")
    slurm = submit_words("slurm.pl", "--pick", "failed", "--max-jobs-run", "1", "JOB=1:5", "log/x.JOB.log",
                         "true", cwd=tmp_path)
    assert contains(slurm, "--array=3,5%1")
    queue = submit_words("queue.pl", "--pick", "failed", "JOB=1:5", "log/x.JOB.log", "echo", "task", "JOB",
                         cwd=tmp_path)
    assert contains(queue, "-t", "1-2")
    # SGE numbers the array 1..2; the batch script maps index 2 to task 5
    script = tmp_path / "log/q/x.sh"
    run = subprocess.run(["bash", str(script)], cwd=tmp_path, env={**os.environ, "SGE_TASK_ID": "2"})
    assert run.returncode == 0
    assert log_lines(log_dir / "x.5.log")[2] == "task 5"


# --- queue.pl against a fake Grid Engine -----------------------------------------------------------

FAKE_QSUB = r"""#!/bin/bash
# Fake qsub: runs each array task of `-t 1-K ... script` now, records qacct-style accounting.
while [ $# -gt 1 ]; do
  [ "$1" = -t ] && { tasks=${2#1-}; shift; }
  shift
done
for i in $(seq 1 "$tasks"); do
  SGE_TASK_ID=$i bash "$1" > /dev/null 2>&1
  code=$?
  printf '=============================\ntaskid  %s\nfailed  0  \nexit_status  %s\n' "$i" "$code" \
    >> "$FAKE_SGE/acct"
done
echo "4242.1-$tasks:1"
"""


def test_queue_pl_follows_a_fake_sge_job(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "qsub").write_text(FAKE_QSUB)
    (shims / "qstat").write_text('#!/bin/sh\necho "Following jobs do not exist: $2" >&2; exit 1\n')
    (shims / "qacct").write_text('#!/bin/sh\ncat "$FAKE_SGE/acct"\n')
    for shim in shims.iterdir():
        shim.chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}", "FAKE_SGE": str(tmp_path)}
    result = wrapper("queue.pl", "JOB=1:3", "log/q.JOB.log", "test", "JOB", "-ne", "2", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "queue.pl: 1 / 3 failed, log is in log/q.2.log" in result.stderr
    assert log_lines(tmp_path / "log/q.1.log")[-1].startswith("# Ended (code 0)")


# --- slurm.pl when Slurm has already forgotten the job ----------------------------------------------

FAKE_SBATCH = r"""#!/bin/bash
# Fake sbatch: runs the --array tasks of the batch script (the last argument) at once, prints a job id.
for arg; do
  case $arg in --array=*) spec=${arg#--array=}; spec=${spec%\%*};; esac
  script=$arg
done
for part in ${spec//,/ }; do
  for i in $(seq "${part%-*}" "${part#*-}"); do SLURM_ARRAY_TASK_ID=$i bash "$script" > /dev/null 2>&1; done
done
echo 77
"""


def test_slurm_pl_falls_back_to_logs_when_slurm_forgot_the_job(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "sbatch").write_text(FAKE_SBATCH)
    forgotten = "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified'\nexit 1\n"
    (shims / "scontrol").write_text(forgotten)
    (shims / "sacct").write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}"}
    result = wrapper("slurm.pl", "JOB=1:3", "log/f.JOB.log", "test", "JOB", "-ne", "3", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "judging it by its log" in result.stderr
    assert "slurm.pl: 1 / 3 failed, log is in log/f.3.log" in result.stderr
    rerun = wrapper("slurm.pl", "--pick", "failed", "JOB=1:3", "log/f.JOB.log", "true", cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert "--array=3 " in (tmp_path / "log/q/f.sh").read_text()


FAKE_SBATCH_OOM = r"""#!/bin/bash
# Fake sbatch: runs the 1-N tasks of --array, each into its --output file; task $FAKE_OOM gets the
# lines slurmstepd writes when jobacct_gather's OverMemoryKill ends a task.
for arg; do
  case $arg in --array=*) last=${arg#--array=1-};; --output=*) output=${arg#--output=};; esac
  script=$arg
done
for i in $(seq 1 "$last"); do
  SLURM_ARRAY_TASK_ID=$i bash "$script" > "${output//%a/$i}" 2>&1
  if [ "$i" = "$FAKE_OOM" ]; then
    echo "slurmstepd-vm: error: StepId=78.batch exceeded memory limit (338927616 > 104857600), being killed" \
      >> "${output//%a/$i}"
  fi
done
echo 78
"""


def test_slurm_pl_names_a_task_killed_by_slurms_memory_accounting(tmp_path: Path) -> None:
    # OverMemoryKill leaves the task FAILED (not OUT_OF_MEMORY): only Slurm's output tells why.
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "sbatch").write_text(FAKE_SBATCH_OOM)
    (shims / "scontrol").write_text(
        "#!/bin/sh\necho 'JobId=78 ArrayTaskId=1 JobState=COMPLETED Reason=None'\n"
        "echo 'JobId=79 ArrayTaskId=2 JobState=FAILED Reason=JobLaunchFailure'\n"
        "echo 'JobId=80 ArrayTaskId=3 JobState=FAILED Reason=NonZeroExitCode'\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}", "FAKE_OOM": "2"}
    result = wrapper("slurm.pl", "JOB=1:3", "log/m.JOB.log", "test", "JOB", "-ne", "3", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "task 2 was killed by Slurm (OUT_OF_MEMORY: out of memory), log is in log/m.2.log" in result.stderr
    assert "task 3 was killed" not in result.stderr  # an ordinary failure stays one
    assert "2 / 3 failed" in result.stderr
    assert "# Killed by Slurm: OUT_OF_MEMORY" in (tmp_path / "log/m.2.log").read_text()
