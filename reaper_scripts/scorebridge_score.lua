-- @description ScoreBridge: Score picture (and live score)
-- @author ScoreBridge
-- @version 0.1.0
-- @about
--   Scores the picture in the project: MIDI tracks whose chords land on the cuts, the
--   cue's tempo map and hit markers, in one undo step. Needs the ScoreBridge engine
--   (the `scorebridge` command); see its README, section "REAPER".
-- @provides
--   [main] scorebridge_live.lua
--   [main] scorebridge_settings.lua
--   scorebridge/json.lua
--   scorebridge/otio.lua
--   scorebridge/place.lua
--   scorebridge/project.lua
--   scorebridge/request.lua
--   scorebridge/settings.lua

-- ScoreBridge: Score picture. Reads the picture edit, has the engine score it without
-- blocking REAPER, and places the music when it is done.

local SCRIPT_DIR = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
package.path = SCRIPT_DIR .. "?.lua;" .. package.path

local UNDO = "ScoreBridge: Score picture"

local function main()
  local json = require("scorebridge.json")
  local otio = require("scorebridge.otio")
  local place = require("scorebridge.place")
  local project = require("scorebridge.project")
  local request = require("scorebridge.request")
  local settings = require("scorebridge.settings").load()

  local edit, why = project.read()
  if not edit then return request.message(why) end
  local exe = request.executable(settings, SCRIPT_DIR)
  local found, problem = request.check(exe)
  if not found then return request.message(problem) end

  local dir, name = project.work_folder()
  local input = dir .. "/" .. name .. ".otio"
  local written, err = json.write_file(input, otio.encode(edit))
  if not written then return request.message("Cannot write " .. input .. ":\n" .. tostring(err)) end
  local job, failed = request.start{
    exe = exe, input = input, out = dir, result = dir .. "/" .. name .. ".result",
    seed = settings.seed, audio = settings.audio, timeout = settings.timeout,
  }
  if not job then return request.message(failed) end
  reaper.ShowConsoleMsg(string.format("ScoreBridge: scoring %s (%d shots, %d markers)\n",
                                      name, #edit.clips, #edit.markers))

  local poll
  poll = request.guard(function()
    local status, a, b = request.poll(job)
    if status == "running" then
      request.show_progress(job, a, b)
      reaper.defer(poll)
    elseif status == "midi" then
      -- One run, one placement: the MIDI stage is left to the result that follows it.
      os.remove(a)
      reaper.defer(poll)
    elseif status == "error" then
      request.message(request.describe(a, b))
    else
      local result, bad = place.load(a)
      if not result then
        return request.message("ScoreBridge finished, but its result cannot be read:\n" .. bad)
      end
      local done = place.apply(result, { origin = edit.origin, settings = settings,
                                         undo = UNDO, label = "score" })
      reaper.ShowConsoleMsg(string.format(
        "ScoreBridge: placed %d parts (%d notes), %d hits, %d tempo changes\n  %s\n",
        done.parts, done.notes, done.hits, done.tempo, a))
    end
  end)
  reaper.defer(poll)
end

-- Nothing may reach REAPER's Lua error dialog: every failure is a message box.
local ok, err = pcall(main)
if not ok then
  reaper.ShowMessageBox("ScoreBridge stopped because of an error:\n\n" .. tostring(err),
                        "ScoreBridge", 0)
end
