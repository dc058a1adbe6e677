-- @noindex
-- ScoreBridge: Live score (toggle). While on, every change to the picture edit (its items
-- or its markers) is scored again once the edit has been still for a moment, as a new
-- revision of one session; only the newest revision's music is placed, each placement
-- one undo step. Running the action again turns it off.

local SCRIPT_DIR = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
package.path = SCRIPT_DIR .. "?.lua;" .. package.path

local UNDO = "ScoreBridge: Live score"
local SECTION = "scorebridge"
local DEBOUNCE_S = 1.5 -- the edit must stay unchanged this long before it is sent

local function live()
  local json = require("scorebridge.json")
  local otio = require("scorebridge.otio")
  local place = require("scorebridge.place")
  local project = require("scorebridge.project")
  local request = require("scorebridge.request")
  local settings = require("scorebridge.settings").load()
  local _, _, section_id, command_id = reaper.get_action_context()

  -- REAPER 7.03 and later end this instance themselves when the action runs again; older
  -- versions may start a second instance, which then only asks this one to stop.
  if reaper.set_action_options then reaper.set_action_options(1) end
  if reaper.GetExtState(SECTION, "live_running") == "1"
     and reaper.GetToggleCommandStateEx(section_id, command_id) == 1 then
    reaper.SetExtState(SECTION, "live_stop", "1", false)
    return
  end

  local exe = request.executable(settings, SCRIPT_DIR)
  local found, problem = request.check(exe)
  if not found then return request.message(problem) end
  local dir, name = project.work_folder()
  local input = dir .. "/" .. name .. ".live.otio"

  local state = {
    session = string.format("reaper-%d-%04d", os.time(), math.random(0, 9999)),
    revision = 0,  -- the newest revision sent
    jobs = {},     -- requests not yet answered
    count = nil,   -- the project's state change count when last looked at
    seen = nil,    -- signature of the edit as last seen (its OTIO text)
    sent = nil,    -- signature of the edit last sent
    edit = nil, changed_at = nil, running = true, waiting_said = false,
  }

  local function say(text) reaper.ShowConsoleMsg("ScoreBridge live: " .. text .. "\n") end

  local function watch(now)
    local count = reaper.GetProjectStateChangeCount(0)
    if count == state.count then return end
    state.count = count
    local edit, why = project.read()
    local signature = edit and otio.encode(edit) or nil
    if not edit and not state.waiting_said then
      say("waiting for a picture. " .. why:gsub("\n+", " "))
    end
    state.waiting_said = edit == nil
    if signature ~= state.seen then
      -- The first picture is sent at once; later changes wait until the edit is still.
      state.changed_at = state.seen == nil and now - DEBOUNCE_S or now
      state.seen, state.edit = signature, edit
    end
  end

  local function send()
    state.revision = state.revision + 1
    local written, err = json.write_file(input, state.seen)
    if not written then error("cannot write " .. input .. ": " .. tostring(err), 0) end
    local job, failed = request.start{
      exe = exe, input = input, out = dir, seed = settings.seed, audio = settings.audio,
      timeout = settings.timeout, session = state.session, revision = state.revision,
      result = string.format("%s/%s.live-%d.result", dir, name, state.revision),
    }
    if not job then error(failed, 0) end
    job.edit = state.edit
    state.jobs[#state.jobs + 1] = job
    state.sent = state.seen
    say(string.format("revision %d sent", state.revision))
  end

  local function swap_in(job, manifest_path, stage)
    local result, bad = place.load(manifest_path)
    if not result then
      return request.message("ScoreBridge finished, but its result cannot be read:\n" .. bad)
    end
    local done = place.apply(result, { origin = job.edit.origin, settings = settings,
                                       undo = UNDO, label = "live " .. job.revision })
    -- Placing changed the project; what was placed is no edit of the picture.
    state.count = reaper.GetProjectStateChangeCount(0)
    job.placed = true
    say(string.format("revision %d placed%s: %d parts, %d notes", job.revision, stage or "",
                      done.parts, done.notes))
  end

  local function collect()
    for i = #state.jobs, 1, -1 do
      local job = state.jobs[i]
      local status, a, b = request.poll(job)
      local newest = job.revision == state.revision
      if status == "running" then
        if newest then request.show_progress(job, a, b, "ScoreBridge live r" .. job.revision .. ": ") end
      elseif status == "midi" then
        -- The MIDI is ready while the WAV renders: place it now; the WAV adds nothing here.
        if newest then swap_in(job, a, " (MIDI; the WAV follows)") end
        os.remove(a)
      else
        table.remove(state.jobs, i)
        if not newest or a == "stale" or a == "cancelled" then
          say(string.format("revision %d superseded, not placed", job.revision))
        elseif status == "done" and job.placed then
          say(string.format("revision %d: the WAV is ready too", job.revision))
        elseif status == "done" then
          swap_in(job, a)
        else
          request.message(request.describe(a, b))
          if a == "unreachable" or a == "auth" then state.running = false end
        end
      end
    end
  end

  local function tick()
    if reaper.GetExtState(SECTION, "live_stop") == "1" then
      state.running = false
      return
    end
    local now = reaper.time_precise()
    watch(now)
    if state.edit and state.seen ~= state.sent and now - state.changed_at >= DEBOUNCE_S then
      send()
    end
    collect()
  end

  local function loop()
    local ok, err = pcall(tick)
    if not ok then
      request.message("ScoreBridge live mode stopped because of an error:\n\n" .. tostring(err))
      state.running = false
    end
    if state.running then reaper.defer(loop) end
  end

  -- Runs when the loop ends, and when REAPER ends the script (the action run again).
  local function stopped()
    reaper.SetExtState(SECTION, "live_running", "", false)
    reaper.SetExtState(SECTION, "live_stop", "", false)
    reaper.SetToggleCommandState(section_id, command_id, 0)
    reaper.RefreshToolbar2(section_id, command_id)
    say("off")
  end

  reaper.SetExtState(SECTION, "live_running", "1", false)
  reaper.SetExtState(SECTION, "live_stop", "", false)
  reaper.SetToggleCommandState(section_id, command_id, 1)
  reaper.RefreshToolbar2(section_id, command_id)
  reaper.atexit(stopped)
  say("on (session " .. state.session .. "); run the action again to turn it off")
  loop()
end

local ok, err = pcall(live)
if not ok then
  reaper.ShowMessageBox("ScoreBridge stopped because of an error:\n\n" .. tostring(err),
                        "ScoreBridge", 0)
end
