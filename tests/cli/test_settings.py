"""One options type for the command line, the daemon and batch: the same values are accepted
and refused with the same words, whichever way an option arrives."""

import json
import re
import subprocess
import sys
from fractions import Fraction

import pytest

from bridge.cli import build_parser
from bridge.daemon.protocol import RequestError, parse_options
from bridge.settings import ScoreOptions

# (option, JSON value, command-line text, what the refusal says)
REFUSED = [
    ("seed", -1, "-1", "seed must be"),
    ("seed", 2**32, str(2**32), "seed must be"),
    ("valence", 1.5, "1.5", "in [-1, 1]"),
    ("key", "H major", "H major", "not a key"),
    ("loudness", -5, "-5", "loudness must be"),
    ("fps", "0", "0", "frame rate must be"),
    ("candidates", 17, "17", "candidates must be"),
]


@pytest.mark.parametrize("name,value,text,says", REFUSED, ids=[f"{r[0]}={r[2]}" for r in REFUSED])
def test_an_option_out_of_range_is_refused_the_same_everywhere(name, value, text, says, capsys):
    with pytest.raises(ValueError, match=re.escape(says)):
        ScoreOptions.from_mapping({name: value})
    with pytest.raises(RequestError, match=re.escape(says)):
        parse_options(json.dumps({name: value}))
    flag = "--" + name.replace("_", "-")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["score", "edit.otio", f"{flag}={text}"])
    assert says in capsys.readouterr().err


def test_the_command_line_and_options_json_give_the_same_score_arguments():
    args = build_parser().parse_args(
        ["score", "edit.otio", "--seed", "7", "--no-audio", "--key", "E minor", "--fps", "29.97", "--valence", "-0.5"]
    )
    from bridge.cli.main import _score_options

    options = _score_options(args)
    assert options == ScoreOptions(seed=7, audio=False, key="E minor", fps=Fraction(30000, 1001), valence=-0.5)
    assert parse_options(json.dumps(options.to_json())) == options.score_kwargs()
    assert options.score_kwargs()["audio_out"] is False and "audio" not in options.score_kwargs()
    no_stems = _score_options(build_parser().parse_args(["score", "edit.otio", "--no-stems"]))
    assert no_stems.stems is False and no_stems.to_json() == {"stems": False}


def test_unknown_options_and_wrong_types_are_named():
    with pytest.raises(ValueError, match="unknown option.*tempo"):
        ScoreOptions.from_mapping({"tempo": 120})
    with pytest.raises(ValueError, match="audio must be true or false"):
        ScoreOptions.from_mapping({"audio": "no"})
    with pytest.raises(ValueError, match="stems must be true or false"):
        ScoreOptions.from_mapping({"stems": 0})
    with pytest.raises(ValueError, match="seed must be"):
        ScoreOptions(seed=True)
    assert ScoreOptions.from_mapping({"valence": None}) == ScoreOptions()  # null: the default


def test_a_batch_refuses_a_bad_seed_before_scoring_anything(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bridge", "batch", str(tmp_path), "--out", str(tmp_path / "out"), "--seed", "-3"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "seed must be" in out.stderr
    assert not (tmp_path / "out").exists()
