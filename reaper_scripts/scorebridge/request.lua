-- @noindex
-- Talks to the ScoreBridge engine through its command-line client: REAPER's Lua has no
-- sockets, so `scorebridge request … --manifest-file FILE` is started without waiting and
-- FILE is polled from a deferred loop. While the client runs, FILE.progress holds one line
-- "<fraction> <stage>", and FILE.midi.json, once the MIDI is in place while the WAV still
-- renders, a manifest of the MIDI stage; when it ends, FILE holds the manifest path or
-- "error CODE: message".

local json = require("scorebridge.json")

local M = {}

M.TITLE = "ScoreBridge"

function M.message(text)
  reaper.ShowMessageBox(text, M.TITLE, 0)
end

-- fn wrapped so that an error shows a message box instead of REAPER's Lua error dialog;
-- the wrapper returns true when fn ran to its end.
function M.guard(fn)
  return function(...)
    local ok, err = pcall(fn, ...)
    if not ok then M.message("ScoreBridge stopped because of an error:\n\n" .. tostring(err)) end
    return ok
  end
end

-- Every argument in double quotes: that reads the same to a shell and to a plain
-- command-line parser. Characters that a shell would still expand are refused.
function M.quote(arg)
  arg = tostring(arg)
  local windows = (reaper.GetOS() or ""):match("^Win") ~= nil
  if arg:find('"', 1, true) or (not windows and arg:find("[$`\\]")) then
    error("ScoreBridge cannot pass this path to a command line (it holds \", $, ` or \\):\n"
      .. arg, 0)
  end
  return '"' .. arg .. '"'
end

local function command(args)
  local quoted = {}
  for i, arg in ipairs(args) do quoted[i] = M.quote(arg) end
  return table.concat(quoted, " ")
end

-- The command that runs `scorebridge`, as a list of arguments: the setting (one path),
-- else what `scorebridge install reaper` recorded beside the scripts (one argument a line,
-- e.g. a Python and "-m bridge"), else `scorebridge` on the PATH.
function M.executable(settings, script_dir)
  if settings.cli ~= "" then return { settings.cli } end
  local recorded, args = json.read_file(script_dir .. "scorebridge/cli.txt"), {}
  for line in (recorded or ""):gmatch("[^\r\n]+") do
    if line:match("%S") then args[#args + 1] = line end
  end
  if #args > 0 then return args end
  return { "scorebridge" }
end

local function with(prefix, args)
  local out = {}
  for _, a in ipairs(prefix) do out[#out + 1] = a end
  for _, a in ipairs(args) do out[#out + 1] = a end
  return out
end

-- true, version; or false and a message for the user.
function M.check(exe)
  local out = reaper.ExecProcess(command(with(exe, { "--version" })), 20000)
  local code, text = (out or ""):match("^(%-?%d+)\r?\n(.*)$")
  if tonumber(code) == 0 and text:find("scorebridge", 1, true) then
    return true, text:match("[^\r\n]*")
  end
  return false, "The ScoreBridge engine was not found.\n\nTried to run: "
    .. table.concat(exe, " ") .. "\n\n"
    .. "Install ScoreBridge and run `scorebridge install reaper` in a terminal, or set the "
    .. "full path of the scorebridge executable with the action \"ScoreBridge: Settings\"."
end

-- Starts one request; returns a job to poll, or nil and a message.
-- opts: exe (from executable()), input, out, result, seed, audio, timeout, session, revision
function M.start(opts)
  local args = with(opts.exe, { "request", opts.input, "--out", opts.out,
                               "--manifest-file", opts.result, "--seed", opts.seed,
                               "--timeout", math.floor(opts.timeout), "-q" })
  if not opts.audio then args[#args + 1] = "--no-audio" end
  args[#args + 1] = "--no-stems" -- REAPER keeps the MIDI: one WAV per role is never placed
  if opts.session then
    for _, a in ipairs{ "--session", opts.session, "--revision", opts.revision } do
      args[#args + 1] = a
    end
  end
  os.remove(opts.result) -- a file left by an earlier run must not be taken for this one
  os.remove(opts.result .. ".progress")
  os.remove(opts.result .. ".midi.json")
  os.remove(opts.result .. ".wav.json") -- the WAV stage: REAPER places MIDI and needs none
  local cmd = command(args)
  if reaper.ExecProcess(cmd, -1) == nil then
    return nil, "The ScoreBridge client could not be started:\n" .. cmd
  end
  local now = reaper.time_precise()
  -- The client gives up after its own timeout and says so; this is for a client that died.
  return { cmd = cmd, result = opts.result, revision = opts.revision, started = now,
           deadline = now + opts.timeout + 60, shown = -1, stage = nil }
end

-- "running", fraction or nil, stage or nil | "midi", MIDI-stage manifest path (once, while
-- the WAV renders) | "done", manifest path | "error", code, message
function M.poll(job)
  local text = json.read_file(job.result)
  if text and text:sub(-1) == "\n" then
    os.remove(job.result)
    local line = text:match("^[^\r\n]*")
    local code, message = line:match("^error%s+([%w_]+):%s*(.*)$")
    if code then return "error", code, message end
    return "done", line
  end
  if reaper.time_precise() > job.deadline then
    return "error", "timeout", "no answer from the scorebridge client in "
      .. math.floor(job.deadline - job.started) .. " s"
  end
  if not job.midi_seen and json.read_file(job.result .. ".midi.json") then
    job.midi_seen = true
    return "midi", job.result .. ".midi.json"
  end
  local progress = json.read_file(job.result .. ".progress") or ""
  local fraction, stage = progress:match("^%s*([%d.]+)%s+([^\r\n]*)")
  return "running", tonumber(fraction), stage
end

-- Progress on REAPER's console: a line when the stage changes or every tenth of the way.
function M.show_progress(job, fraction, stage, prefix)
  if not fraction then return end
  local step = math.floor(fraction * 10)
  if stage ~= job.stage or step > job.shown then
    job.stage, job.shown = stage, step
    reaper.ShowConsoleMsg(string.format("%s%3d%%  %s\n", prefix or "ScoreBridge: ",
                                        math.floor(fraction * 100 + 0.5), stage or ""))
  end
end

-- The user's message for an error code from the client.
function M.describe(code, message)
  if code == "unreachable" or code == "auth" then
    return "The ScoreBridge engine (daemon) could not be reached (" .. code .. "):\n"
      .. message .. "\n\nIt starts by itself; if this keeps happening, run `scorebridge serve` "
      .. "in a terminal to see why."
  elseif code == "bad_input" then
    return "ScoreBridge could not use the picture edit:\n" .. message
  elseif code == "timeout" then
    return "ScoreBridge took too long and was given up:\n" .. message
      .. "\n\nThe timeout is in \"ScoreBridge: Settings\"."
  end
  return "ScoreBridge failed (" .. code .. "):\n" .. message
end

return M
