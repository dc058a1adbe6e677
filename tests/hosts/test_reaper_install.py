"""`scorebridge install reaper`: the scripts copied into REAPER's resource folder, the
actions registered in reaper-kb.ini (idempotently, keeping the user's lines), the ReaPack
index in step with the scripts, and an installed copy that finds its engine."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bridge.errors import BadInput
from bridge.hosts import reaper
from helpers.reaper.lua_harness import EDITS, edit_project_lua, lua_string, needs_lua, run_lua

USER_KB = (
    'ACT 0 0 "abc123" "Custom: my macro" 40001 40002\r\n'
    'SCR 4 0 RSdeadbeef "Custom: someone else.lua" "Other/someone else.lua"\r\n'
    "KEY 1 65 _RSdeadbeef 0\r\n"
    # an older ScoreBridge line under another id: replaced, not doubled
    'SCR 4 0 RS0000 "Custom: ScoreBridge: Score picture" "ScoreBridge/scorebridge_score.lua"\r\n'
)


def lua_sources():
    return sorted(p.relative_to(reaper.SCRIPTS) for p in reaper.SCRIPTS.rglob("*.lua"))


def test_install_copies_and_registers(tmp_path):
    (tmp_path / "reaper-kb.ini").write_bytes(USER_KB.encode())
    written = reaper.install(dest=tmp_path)
    target = tmp_path / "Scripts" / "ScoreBridge"
    for rel in lua_sources():
        assert (target / rel).read_bytes() == (reaper.SCRIPTS / rel).read_bytes()
        assert target / rel in written
    cli = (target / "scorebridge" / "cli.txt").read_text().splitlines()
    assert cli == reaper.own_command() and Path(cli[0]).exists()
    assert tmp_path / "reaper-kb.ini" in written

    kb = (tmp_path / "reaper-kb.ini").read_bytes().decode()
    lines = kb.split("\r\n")
    assert lines[:3] == USER_KB.split("\r\n")[:3]  # the user's lines, as they were
    ours = [line for line in lines if "ScoreBridge" in line]
    assert ours == reaper.kb_lines(windows=False)
    assert ours[0].startswith("SCR 4 0 RS") and ours[0].endswith(
        '"Custom: ScoreBridge: Score picture" "ScoreBridge/scorebridge_score.lua"'
    )
    assert '"Custom: ScoreBridge: Live score (toggle)" "ScoreBridge/scorebridge_live.lua"' in ours[1]
    assert all(len(line.split()[3]) == 42 for line in ours)  # RS + 40 hex digits

    # Again: the same files, the same lines, nothing doubled.
    reaper.install(dest=tmp_path)
    assert (tmp_path / "reaper-kb.ini").read_bytes().decode() == kb
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*.tmp"))


def test_install_into_a_new_folder_and_windows_paths(tmp_path):
    dest = tmp_path / "portable" / "REAPER"
    reaper.install(dest=dest)
    assert (dest / "Scripts" / "ScoreBridge" / "scorebridge_live.lua").is_file()
    assert (dest / "reaper-kb.ini").read_text().splitlines() == reaper.kb_lines(windows=False)
    windows = reaper.kb_lines(windows=True)
    assert windows[0].endswith('"ScoreBridge\\scorebridge_score.lua"')
    assert [line.split()[3] for line in windows] == [line.split()[3] for line in reaper.kb_lines(False)]


def test_default_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert reaper.resource_dir("Linux") == tmp_path / ".config" / "REAPER"
    assert reaper.resource_dir("Darwin") == tmp_path / "Library" / "Application Support" / "REAPER"
    assert reaper.resource_dir("Windows") == tmp_path / "Roaming" / "REAPER"


def test_missing_reaper_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(reaper, "resource_dir", lambda system=None: tmp_path / "nope" / "REAPER")
    with pytest.raises(BadInput, match="REAPER's resource folder .* does not exist.*--dest"):
        reaper.install()
    assert not (tmp_path / "nope").exists()


def test_cli_install(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "bridge", "install", "reaper", "--dest", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "reaper-kb.ini") in done.stdout.splitlines()


def test_reapack_index_lists_every_script():
    index = ET.parse(reaper.SCRIPTS / "index.xml").getroot()
    assert index.tag == "index" and index.get("version") == "1"
    [package] = index.iter("reapack")
    assert package.get("type") == "script"
    [version] = package.iter("version")
    sources = {s.get("file"): s for s in version.iter("source")}
    assert set(sources) == {str(p) for p in lua_sources()}
    mains = {f for f, s in sources.items() if s.get("main") == "main"}
    assert mains == {name for name, _ in reaper.ACTIONS}
    header = (reaper.SCRIPTS / "scorebridge_score.lua").read_text()
    assert f"-- @version {version.get('name')}" in header
    for rel in lua_sources():
        if str(rel) != "scorebridge_score.lua":
            assert f"{'[main] ' if str(rel) in mains else ''}{rel}" in header


@needs_lua
def test_installed_copy_runs_the_recorded_command(tmp_path):
    """The installed score action, run from REAPER's Scripts folder, starts the command
    `install` recorded (here `python -m bridge`: several arguments)."""
    root = tmp_path / "resource"
    reaper.install(dest=root)
    cli = root / "Scripts" / "ScoreBridge" / "scorebridge" / "cli.txt"
    cli.write_text(f"{sys.executable}\n-m\nbridge\n")
    script = root / "Scripts" / "ScoreBridge" / "scorebridge_score.lua"
    body = edit_project_lua(EDITS["25"], "") + f"\nfake.run_script({lua_string(script)})\n"
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    assert state["execs"][0]["cmd"] == f'"{sys.executable}" "-m" "bridge" "--version"'
    assert state["requests"][0]["argv"][:4] == [sys.executable, "-m", "bridge", "request"]
