"""The `gesture-snn` entry point: every stage explains itself, and bad input is an error message
with exit status 2, not a traceback."""

from __future__ import annotations

import re

import pytest

from gesture_snn.cli import COMMANDS, main


def test_top_level_help_lists_every_stage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^    {re.escape(name)}(\s|$)", out, re.MULTILINE), name


@pytest.mark.parametrize("name", COMMANDS)
def test_each_stage_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gesture-snn {name}")
    assert "(default: True)" not in out and "(default: False)" not in out


def test_unknown_stage_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bitstream"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_data_root_is_a_user_error_without_traceback(tmp_path, capsys):
    status = main(["train", "--data", str(tmp_path / "nowhere"), "--run", str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("gesture-snn train: error:") and "Traceback" not in err
    assert "gesture-snn synthetic" in err and "gesture-snn fetch" in err


def test_simulate_refuses_an_unknown_target(tmp_path, capsys):
    status = main(["simulate", "--run", str(tmp_path), "--target", "ice41"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("gesture-snn simulate: error: --target: unknown target 'ice41'") and "ice40-up5k" in err
