"""The command line: usable --help, one-line errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import main


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["broker", "produce", "consume", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: wirestream " + command in capsys.readouterr().out


def test_run_help_lists_the_pipeline_options(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--bootstrap-servers", "--input-topic", "--bounded", "--kafka-config", "--no-nlp", "--start"):
        assert flag in out


def test_wrong_arguments_get_one_line_not_a_traceback():
    res = _cli("consume", "--topic", "t", "--nope")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "--nope" in res.stderr
    res = _cli("run", "--bootstrap-servers", "127.0.0.1:1", "--input-topic", "t", "--output-topic", "o",
               "--stop", "whenever")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--stop" in res.stderr.strip().splitlines()[-1]
