"""utils/split_scp.pl: splitting list files over JOB=1:N tasks."""

from __future__ import annotations

import subprocess


def split(repo_root, *args, **kwargs):
    return subprocess.run([str(repo_root / "utils" / "split_scp.pl"), *map(str, args)],
                          capture_output=True, text=True, **kwargs)


def test_parts_are_contiguous_balanced_and_complete(repo_root, tmp_path):
    lines = [f"Track{i:05d} /audio/{i}.flac\n" for i in range(1, 11)]
    src = tmp_path / "mix.scp"
    src.write_text("".join(lines))
    outs = [tmp_path / f"mix.{j}.scp" for j in range(1, 4)]
    assert split(repo_root, src, *outs).returncode == 0
    parts = [o.read_text().splitlines(keepends=True) for o in outs]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sum(parts, []) == lines


def test_job_mode_prints_one_part_zero_or_one_based(repo_root, tmp_path):
    src = tmp_path / "list"
    src.write_text("".join(f"{i}\n" for i in range(7)))
    zero = split(repo_root, "-j", 3, 0, src)
    one = split(repo_root, "--one-based", "-j", 3, 1, src)
    assert zero.stdout == one.stdout == "0\n1\n2\n"
    assert split(repo_root, "-j", 3, 2, src).stdout == "5\n6\n"


def test_more_parts_than_lines_is_an_error(repo_root, tmp_path):
    src = tmp_path / "short.scp"
    src.write_text("a x\nb y\n")
    result = split(repo_root, src, *(tmp_path / f"o{j}" for j in range(3)))
    assert result.returncode != 0
    assert "short.scp has 2 lines, fewer than the 3 parts" in result.stderr
