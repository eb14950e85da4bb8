import subprocess
import sys

import pytest

from ssomotion_ros.cli.main import build_parser, main


def test_help_lists_the_commands():
    text = build_parser().format_help()
    for cmd in ("bringup", "demo", "say", "eval", "bench"):
        assert cmd in text


def test_console_script_help(repo_root):
    exe = repo_root / ".venv" / "bin" / "ssomotion"
    if not exe.exists():
        pytest.skip("run ./setup.sh to install the ssomotion command")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "bringup" in out.stdout and "say" in out.stdout and "demo" in out.stdout


def test_unknown_suite_and_benchmark_fail_clearly(capsys):
    assert main(["eval", "--suite", "no-such-suite"]) == 2
    assert "unknown suite 'no-such-suite'" in capsys.readouterr().err
    assert main(["bench", "no-such-bench"]) == 2
    assert "unknown benchmark 'no-such-bench'" in capsys.readouterr().err


def test_msg_imports_from_venv_python_without_sourcing(repo_root):
    py = repo_root / ".venv" / "bin" / "python"
    if not py.exists():
        pytest.skip("run ./setup.sh first")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    code = "import ssomotion_ros.msg as m; print(m.MotionStatus.CANCELLED)"
    out = subprocess.run(
        [str(py), "-c", code], capture_output=True, text=True, env=env, cwd="/", check=True
    )
    assert out.stdout.strip() == "6"


def test_bringup_rejects_a_bad_graph(tmp_path, capsys):
    bad = tmp_path / "g.yaml"
    bad.write_text("nodes: [{name: x}]\n")
    assert main(["bringup", "--graph", str(bad)]) == 2
    assert "needs a string 'executable'" in capsys.readouterr().out
    assert sys.executable


def test_eval_list_names_every_suite_with_a_description(capsys):
    from ssomotion_ros.cli.commands.eval import available_suites

    assert main(["eval", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(available_suites())
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines), lines
    assert main(["eval"]) == 2
    assert "--suite NAME is required" in capsys.readouterr().err
