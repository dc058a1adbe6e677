-- A fake of REAPER's Lua API for running ScoreBridge's scripts under a plain Lua 5.4.
--
-- It follows the REAPER facts in ../shared/docs/HOSTS.md and REAPER's API documentation:
-- the same function names, argument order and return values, with arguments checked so
-- that a wrong call fails here as it would in REAPER. Loading this file defines the
-- global `reaper` and returns `fake`, the test's handle on the project:
--
--   fake.setup{fps=, drop=, offset=, project=, resource=}   the project settings
--   fake.add_track(name, {selected=}) / fake.add_item(track, {...}) / fake.add_marker{...}
--   fake.run_script(path)   runs an action (as REAPER does when it is invoked)
--   fake.step(n)            runs n UI cycles of deferred functions (30 ms each)
--   fake.requests           every `scorebridge request` started, as argv lists
--   fake.finish(i, text) / fake.progress(i, text)   answer request i as the client would
--   fake.dump(path)         the whole project and what the script did, as JSON

local ROOT = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") .. "../../../"  -- tests/helpers/reaper/ -> the checkout
local json = dofile(ROOT .. "reaper_scripts/scorebridge/json.lua")

local fake = {}
local P -- the project and everything recorded

function fake.reset()
  P = {
    tracks = {}, markers = {}, tempo = {}, next_marker_id = 1,
    fps = 25, drop = false, offset = 0, default_bpm = 120,
    project = "", resource = "/tmp/fake-reaper", os = "Other",
    state_count = 0, undo_depth = 0, undo = {}, ui_refresh = 0, outside_undo = {},
    messages = {}, console = {}, execs = {}, extstate = {}, toggles = {}, toolbar = {},
    defer_queue = {}, atexit = {}, errors = {}, clock = 1000.0, cycles = 0,
    action_options = nil, dirs = {}, user_inputs = nil,
  }
  fake.requests = {}
  fake.checks = {} -- whatever a scenario wants to see in the dump
  fake.exec_mode = "simulate" -- "simulate": record requests; "real": run the command
  fake.exe_missing = false
  fake.has_action_options = true
  fake.command_ids = {}
end
fake.reset()

function fake.state() return P end

-- argument checks ----------------------------------------------------------------------

local function check(cond, fn, what)
  if not cond then error("reaper." .. fn .. ": " .. what, 3) end
end

local function is_proj(p) return p == 0 or p == nil end
local function num(v) return type(v) == "number" end
local function int(v) return math.type(v) == "integer" or (num(v) and v == math.floor(v)) end
local function str(v) return type(v) == "string" end
local function bool(v) return type(v) == "boolean" end
local function obj(v, kind) return type(v) == "table" and v.kind == kind and not v.deleted end

-- A change to the project made by a script: REAPER counts it, and the test wants to know
-- whether it happened inside an undo block.
local function changed(what)
  P.state_count = P.state_count + 1
  if P.undo_depth == 0 then P.outside_undo[#P.outside_undo + 1] = what end
end

-- time map -----------------------------------------------------------------------------

local function sorted_tempo()
  table.sort(P.tempo, function(a, b) return a.time < b.time end)
  return P.tempo
end

-- Quarter notes from project time 0 to t (tempo changes are steps; BPM in quarters).
local function qn_at(t)
  local qn, last, bpm = 0, 0, P.default_bpm
  for _, m in ipairs(sorted_tempo()) do
    if m.time > t then break end
    qn = qn + (m.time - last) * bpm / 60
    last, bpm = m.time, m.bpm
  end
  return qn + (t - last) * bpm / 60
end

local function time_at_qn(q)
  local qn, last, bpm = 0, 0, P.default_bpm
  for _, m in ipairs(sorted_tempo()) do
    local at = qn + (m.time - last) * bpm / 60
    if at > q then break end
    qn, last, bpm = at, m.time, m.bpm
  end
  return last + (q - qn) * 60 / bpm
end

-- project set-up (the user's side) -----------------------------------------------------

function fake.setup(opts)
  for k, v in pairs(opts) do P[k] = v end
end

function fake.add_track(name, opts)
  opts = opts or {}
  local track = { kind = "track", name = name or "", ext = {}, depth = opts.depth or 0,
                  selected = opts.selected or false, items = {}, fx = {} }
  P.tracks[#P.tracks + 1] = track
  P.state_count = P.state_count + 1
  return track
end

local function new_item(track, pos, len)
  local item = { kind = "item", track = track, pos = pos, len = len, mute = 0, ext = {} }
  track.items[#track.items + 1] = item
  return item
end

-- opts: pos, len, file, offs, rate, type ("VIDEO", "WAVE", "MIDI"), source_length, name, mute
function fake.add_item(track, opts)
  local item = new_item(track, opts.pos, opts.len)
  item.mute = opts.mute and 1 or 0
  local source = { kind = "source", file = opts.file or "", type = opts.type or "VIDEO",
                   length = opts.source_length or (opts.offs or 0) + opts.len * (opts.rate or 1) }
  local take = { kind = "take", item = item, name = opts.name or "", startoffs = opts.offs or 0,
                 playrate = opts.rate or 1, source = source, ext = {}, notes = {}, ccs = {} }
  item.take = take
  P.state_count = P.state_count + 1
  return item
end

function fake.move_item(item, pos)
  item.pos = pos
  P.state_count = P.state_count + 1
end

function fake.touch() P.state_count = P.state_count + 1 end

local function sort_markers()
  table.sort(P.markers, function(a, b)
    if a.pos ~= b.pos then return a.pos < b.pos end
    return a.id < b.id
  end)
end

-- opts: pos, name, region_end (a region when given), color
function fake.add_marker(opts)
  local m = { isrgn = opts.region_end ~= nil, pos = opts.pos, rgnend = opts.region_end or 0,
              name = opts.name or "", id = P.next_marker_id, color = opts.color or 0 }
  P.next_marker_id = P.next_marker_id + 1
  P.markers[#P.markers + 1] = m
  sort_markers()
  P.state_count = P.state_count + 1
  return m
end

function fake.add_tempo(time, bpm, num, den)
  P.tempo[#P.tempo + 1] = { time = time, bpm = bpm, num = num or 0, den = den or 0, linear = false }
  P.state_count = P.state_count + 1
end

function fake.add_fx(track, name) track.fx[#track.fx + 1] = name end

function fake.set_ext(section, key, value)
  P.extstate[section .. "/" .. key] = value
end

-- running scripts ----------------------------------------------------------------------

local function record_error(err)
  P.errors[#P.errors + 1] = tostring(err)
end

local function run_atexit()
  local fns = P.atexit
  P.atexit = {}
  for _, fn in ipairs(fns) do
    local ok, err = pcall(fn)
    if not ok then record_error(err) end
  end
end

function fake.command_id(path)
  if not fake.command_ids[path] then
    local n = 0
    for _ in pairs(fake.command_ids) do n = n + 1 end
    fake.command_ids[path] = 55000 + n
  end
  return fake.command_ids[path]
end

-- Invoking an action. A script still running (deferred) that asked to be ended when it
-- is run again (set_action_options(1)) is ended instead of started a second time.
function fake.run_script(path)
  if #P.defer_queue > 0 and P.action_options and (P.action_options & 1) ~= 0
     and P.running == path then
    fake.terminate()
    return
  end
  P.action_options = nil
  P.running = path
  P.context = { path = path, section = 0, command = fake.command_id(path) }
  local ok, err = pcall(dofile, path)
  if not ok then record_error(err) end -- REAPER would show its Lua error dialog
  if #P.defer_queue == 0 then run_atexit() end
end

-- REAPER ending a running script: its deferred functions are dropped, atexit runs.
function fake.terminate()
  P.defer_queue = {}
  run_atexit()
end

function fake.step(n)
  for _ = 1, n or 1 do
    P.clock = P.clock + 0.03
    P.cycles = P.cycles + 1
    local queue = P.defer_queue
    P.defer_queue = {}
    for _, fn in ipairs(queue) do
      local ok, err = pcall(fn)
      if not ok then record_error(err) end
    end
    if #queue > 0 and #P.defer_queue == 0 then run_atexit() end
  end
end

-- Runs UI cycles until cond() holds (or the limit), sleeping between them when real
-- processes are at work.
function fake.step_until(cond, limit, sleep_s)
  for _ = 1, limit do
    if cond() then return true end
    fake.step(1)
    if sleep_s then os.execute("sleep " .. sleep_s) end
  end
  return cond()
end

-- The simulated `scorebridge request` client -------------------------------------------

-- "a" "b c" d -> {"a", "b c", "d"}: how a command line splits into arguments.
local function split_command(cmd)
  local args, i = {}, 1
  while i <= #cmd do
    local c = cmd:sub(i, i)
    if c == " " then
      i = i + 1
    elseif c == '"' then
      local j = cmd:find('"', i + 1, true)
      args[#args + 1] = cmd:sub(i + 1, j - 1)
      i = j + 1
    else
      local j = cmd:find(" ", i, true) or #cmd + 1
      args[#args + 1] = cmd:sub(i, j - 1)
      i = j
    end
  end
  return args
end
fake.split_command = split_command

local function option(argv, name)
  for i, a in ipairs(argv) do
    if a == name then return argv[i + 1] end
  end
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Answers request i: text is the manifest path or "error CODE: message".
function fake.finish(i, text)
  local req = fake.requests[i]
  os.remove(req.result .. ".progress")
  write(req.result, text .. "\n")
end

-- The client's FILE.midi.json for request i: a copy of the MIDI-stage manifest at `path`.
function fake.midi_ready(i, path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  write(fake.requests[i].result .. ".midi.json", text)
end

function fake.progress(i, text)
  write(fake.requests[i].result .. ".progress", text .. "\n")
end

local function has(argv, word)
  for _, a in ipairs(argv) do
    if a == word then return true end
  end
  return false
end

local function start_process(cmd, timeout)
  local argv = split_command(cmd)
  if fake.exe_missing then return nil end
  local request = has(argv, "request")
  if fake.exec_mode == "real" then
    if timeout == -1 then
      os.execute(cmd .. " >/dev/null 2>&1 &")
      if request then
        fake.requests[#fake.requests + 1] = { argv = argv, result = option(argv, "--manifest-file") }
      end
      return ""
    end
    local pipe = io.popen(cmd .. " 2>&1")
    local out = pipe:read("a")
    local _, _, code = pipe:close()
    return tostring(code) .. "\n" .. out
  end
  if has(argv, "--version") then return "0\nscorebridge 0.1.0\n" end
  if request and timeout == -1 then
    fake.requests[#fake.requests + 1] = { argv = argv, result = option(argv, "--manifest-file") }
    return ""
  end
  return "2\nusage: scorebridge ...\n"
end

-- the API --------------------------------------------------------------------------------

local R = {}

local function track_index(track)
  for i, t in ipairs(P.tracks) do
    if t == track then return i - 1 end
  end
end

function R.CountTracks(proj)
  check(is_proj(proj), "CountTracks", "proj")
  return #P.tracks
end

function R.GetTrack(proj, idx)
  check(is_proj(proj) and int(idx), "GetTrack", "(proj, integer idx)")
  return P.tracks[idx + 1]
end

function R.GetTrackName(track)
  check(obj(track, "track"), "GetTrackName", "track")
  if track.name == "" then return true, "Track " .. (track_index(track) + 1) end
  return true, track.name
end

function R.CountSelectedTracks(proj)
  check(is_proj(proj), "CountSelectedTracks", "proj")
  local n = 0
  for _, t in ipairs(P.tracks) do if t.selected then n = n + 1 end end
  return n
end

function R.GetSelectedTrack(proj, idx)
  check(is_proj(proj) and int(idx), "GetSelectedTrack", "(proj, integer idx)")
  local n = 0
  for _, t in ipairs(P.tracks) do
    if t.selected then
      if n == idx then return t end
      n = n + 1
    end
  end
end

function R.GetSetMediaTrackInfo_String(track, parm, value, set)
  check(obj(track, "track") and str(parm) and str(value) and bool(set),
        "GetSetMediaTrackInfo_String", "(track, string parmname, string value, boolean set)")
  if parm == "P_NAME" then
    if set then track.name = value; changed("track name") end
    return true, track.name
  end
  local key = parm:match("^P_EXT:(.+)$")
  check(key, "GetSetMediaTrackInfo_String", "unknown parameter " .. parm)
  if set then track.ext[key] = value; changed("track ext"); return true, value end
  if track.ext[key] == nil then return false, "" end
  return true, track.ext[key]
end

function R.GetMediaTrackInfo_Value(track, parm)
  check(obj(track, "track") and str(parm), "GetMediaTrackInfo_Value", "(track, string parmname)")
  if parm == "I_FOLDERDEPTH" then return track.depth + 0.0 end
  if parm == "IP_TRACKNUMBER" then return (track_index(track) or -1) + 1.0 end
  if parm == "I_SELECTED" then return track.selected and 1.0 or 0.0 end
  error("reaper.GetMediaTrackInfo_Value: parameter not faked: " .. parm, 2)
end

function R.SetMediaTrackInfo_Value(track, parm, value)
  check(obj(track, "track") and str(parm) and num(value), "SetMediaTrackInfo_Value",
        "(track, string parmname, number value)")
  check(parm == "I_FOLDERDEPTH", "SetMediaTrackInfo_Value", "parameter not faked: " .. parm)
  track.depth = math.floor(value)
  changed("folder depth")
  return true
end

function R.InsertTrackAtIndex(idx, defaults)
  check(int(idx) and bool(defaults), "InsertTrackAtIndex", "(integer idx, boolean wantDefaults)")
  idx = math.max(0, math.min(idx, #P.tracks))
  table.insert(P.tracks, idx + 1, { kind = "track", name = "", ext = {}, depth = 0,
                                    selected = false, items = {}, fx = {} })
  changed("insert track")
end

function R.DeleteTrack(track)
  check(obj(track, "track"), "DeleteTrack", "track")
  table.remove(P.tracks, track_index(track) + 1)
  track.deleted = true
  for _, item in ipairs(track.items) do item.deleted = true end
  changed("delete track")
end

function R.TrackFX_GetCount(track)
  check(obj(track, "track"), "TrackFX_GetCount", "track")
  return #track.fx
end

function R.TrackFX_AddByName(track, name, rec, instantiate)
  check(obj(track, "track") and str(name) and bool(rec) and int(instantiate),
        "TrackFX_AddByName", "(track, string fxname, boolean recFX, integer instantiate)")
  if name:match("^Missing") then return -1 end
  track.fx[#track.fx + 1] = name
  changed("add fx")
  return #track.fx - 1
end

-- items and takes

function R.CountTrackMediaItems(track)
  check(obj(track, "track"), "CountTrackMediaItems", "track")
  return #track.items
end

function R.GetTrackMediaItem(track, idx)
  check(obj(track, "track") and int(idx), "GetTrackMediaItem", "(track, integer idx)")
  return track.items[idx + 1]
end

function R.GetMediaItemInfo_Value(item, parm)
  check(obj(item, "item") and str(parm), "GetMediaItemInfo_Value", "(item, string parmname)")
  if parm == "D_POSITION" then return item.pos + 0.0 end
  if parm == "D_LENGTH" then return item.len + 0.0 end
  if parm == "B_MUTE" then return item.mute + 0.0 end
  error("reaper.GetMediaItemInfo_Value: parameter not faked: " .. parm, 2)
end

function R.GetActiveTake(item)
  check(obj(item, "item"), "GetActiveTake", "item")
  return item.take
end

function R.GetMediaItemTakeInfo_Value(take, parm)
  check(obj(take, "take") and str(parm), "GetMediaItemTakeInfo_Value", "(take, string parmname)")
  if parm == "D_STARTOFFS" then return take.startoffs + 0.0 end
  if parm == "D_PLAYRATE" then return take.playrate + 0.0 end
  error("reaper.GetMediaItemTakeInfo_Value: parameter not faked: " .. parm, 2)
end

function R.GetMediaItemTake_Source(take)
  check(obj(take, "take"), "GetMediaItemTake_Source", "take")
  return take.source
end

function R.GetMediaSourceFileName(source)
  check(obj(source, "source"), "GetMediaSourceFileName", "source")
  return source.file
end

function R.GetMediaSourceType(source)
  check(obj(source, "source"), "GetMediaSourceType", "source")
  return source.type
end

function R.GetMediaSourceLength(source)
  check(obj(source, "source"), "GetMediaSourceLength", "source")
  return source.length + 0.0, false
end

function R.GetTakeName(take)
  check(obj(take, "take"), "GetTakeName", "take")
  return take.name
end

function R.GetSetMediaItemInfo_String(item, parm, value, set)
  check(obj(item, "item") and str(parm) and str(value) and bool(set),
        "GetSetMediaItemInfo_String", "(item, string parmname, string value, boolean set)")
  local key = parm:match("^P_EXT:(.+)$")
  check(key, "GetSetMediaItemInfo_String", "parameter not faked: " .. parm)
  if set then item.ext[key] = value; changed("item ext"); return true, value end
  if item.ext[key] == nil then return false, "" end
  return true, item.ext[key]
end

function R.GetSetMediaItemTakeInfo_String(take, parm, value, set)
  check(obj(take, "take") and str(parm) and str(value) and bool(set),
        "GetSetMediaItemTakeInfo_String", "(take, string parmname, string value, boolean set)")
  check(parm == "P_NAME", "GetSetMediaItemTakeInfo_String", "parameter not faked: " .. parm)
  if set then take.name = value; changed("take name") end
  return true, take.name
end

function R.DeleteTrackMediaItem(track, item)
  check(obj(track, "track") and obj(item, "item") and item.track == track,
        "DeleteTrackMediaItem", "(track, item on that track)")
  for i, it in ipairs(track.items) do
    if it == item then table.remove(track.items, i) break end
  end
  item.deleted = true
  changed("delete item")
  return true
end

function R.CreateNewMIDIItemInProj(track, t0, t1, qn)
  check(obj(track, "track") and num(t0) and num(t1) and t1 > t0 and (qn == nil or bool(qn)),
        "CreateNewMIDIItemInProj", "(track, number starttime, number endtime, optional boolean qnIn)")
  check(not qn, "CreateNewMIDIItemInProj", "qnIn not faked")
  local item = new_item(track, t0, t1 - t0)
  item.take = { kind = "take", item = item, name = "", startoffs = 0, playrate = 1,
                source = { kind = "source", file = "", type = "MIDI", length = t1 - t0 },
                ext = {}, notes = {}, ccs = {}, midi = true, sorted = true }
  changed("new MIDI item")
  return item
end

-- MIDI

function R.MIDI_GetPPQPosFromProjTime(take, t)
  check(obj(take, "take") and take.midi and num(t), "MIDI_GetPPQPosFromProjTime", "(MIDI take, number time)")
  return (qn_at(t) - qn_at(take.item.pos)) * 960
end

function R.MIDI_GetProjTimeFromPPQPos(take, ppq)
  check(obj(take, "take") and take.midi and num(ppq), "MIDI_GetProjTimeFromPPQPos", "(MIDI take, number ppqpos)")
  return time_at_qn(qn_at(take.item.pos) + ppq / 960)
end

function R.MIDI_InsertNote(take, sel, muted, ppq0, ppq1, chan, pitch, vel, nosort)
  check(obj(take, "take") and take.midi and bool(sel) and bool(muted) and num(ppq0) and num(ppq1)
        and int(chan) and int(pitch) and int(vel) and (nosort == nil or bool(nosort)), "MIDI_InsertNote",
        "(take, boolean selected, boolean muted, number startppqpos, number endppqpos, "
        .. "integer chan, integer pitch, integer vel, optional boolean noSortIn)")
  check(chan >= 0 and chan <= 15 and pitch >= 0 and pitch <= 127 and vel >= 1 and vel <= 127
        and ppq1 > ppq0, "MIDI_InsertNote", "value out of range")
  take.notes[#take.notes + 1] = { ppq0 = ppq0, ppq1 = ppq1, chan = chan, pitch = pitch, vel = vel }
  if nosort then take.sorted = false end
  changed("insert note")
  return true
end

function R.MIDI_InsertCC(take, sel, muted, ppq, chanmsg, chan, msg2, msg3)
  check(obj(take, "take") and take.midi and bool(sel) and bool(muted) and num(ppq) and int(chanmsg)
        and int(chan) and int(msg2) and int(msg3), "MIDI_InsertCC",
        "(take, boolean selected, boolean muted, number ppqpos, integer chanmsg, integer chan, "
        .. "integer msg2, integer msg3)")
  take.ccs[#take.ccs + 1] = { ppq = ppq, chanmsg = chanmsg, chan = chan, msg2 = msg2, msg3 = msg3 }
  changed("insert cc")
  return true
end

function R.MIDI_Sort(take)
  check(obj(take, "take") and take.midi, "MIDI_Sort", "take")
  table.sort(take.notes, function(a, b)
    if a.ppq0 ~= b.ppq0 then return a.ppq0 < b.ppq0 end
    return a.pitch < b.pitch
  end)
  take.sorted = true
end

-- markers

function R.CountProjectMarkers(proj)
  check(is_proj(proj), "CountProjectMarkers", "proj")
  local m, r = 0, 0
  for _, mk in ipairs(P.markers) do
    if mk.isrgn then r = r + 1 else m = m + 1 end
  end
  return m + r, m, r
end

function R.EnumProjectMarkers3(proj, idx)
  check(is_proj(proj) and int(idx), "EnumProjectMarkers3", "(proj, integer idx)")
  local m = P.markers[idx + 1]
  if not m then return 0, false, 0.0, 0.0, "", 0, 0 end
  return idx + 1, m.isrgn, m.pos + 0.0, m.rgnend + 0.0, m.name, m.id, m.color
end

function R.AddProjectMarker2(proj, isrgn, pos, rgnend, name, wantidx, color)
  check(is_proj(proj) and bool(isrgn) and num(pos) and num(rgnend) and str(name) and int(wantidx)
        and int(color), "AddProjectMarker2", "(proj, boolean isrgn, number pos, number rgnend, "
        .. "string name, integer wantidx, integer color)")
  local m = fake.add_marker{ pos = pos, name = name, region_end = isrgn and rgnend or nil, color = color }
  P.state_count = P.state_count - 1
  changed("add marker")
  return m.id
end

function R.DeleteProjectMarkerByIndex(proj, idx)
  check(is_proj(proj) and int(idx), "DeleteProjectMarkerByIndex", "(proj, integer markrgnidx)")
  if not P.markers[idx + 1] then return false end
  table.remove(P.markers, idx + 1)
  changed("delete marker")
  return true
end

function R.ColorToNative(r, g, b)
  check(int(r) and int(g) and int(b), "ColorToNative", "(integer r, integer g, integer b)")
  return r | (g << 8) | (b << 16)
end

-- tempo and time

function R.CountTempoTimeSigMarkers(proj)
  check(is_proj(proj), "CountTempoTimeSigMarkers", "proj")
  return #P.tempo
end

function R.GetTempoTimeSigMarker(proj, idx)
  check(is_proj(proj) and int(idx), "GetTempoTimeSigMarker", "(proj, integer ptidx)")
  local m = sorted_tempo()[idx + 1]
  if not m then return false, 0.0, 0, 0.0, 0.0, 0, 0, false end
  return true, m.time, 0, 0.0, m.bpm, m.num, m.den, m.linear
end

function R.DeleteTempoTimeSigMarker(proj, idx)
  check(is_proj(proj) and int(idx), "DeleteTempoTimeSigMarker", "(proj, integer markerindex)")
  if not sorted_tempo()[idx + 1] then return false end
  table.remove(P.tempo, idx + 1)
  changed("delete tempo")
  return true
end

function R.SetTempoTimeSigMarker(proj, idx, timepos, measurepos, beatpos, bpm, num_, den, linear)
  check(is_proj(proj) and int(idx) and num(timepos) and int(measurepos) and num(beatpos) and num(bpm)
        and int(num_) and int(den) and bool(linear), "SetTempoTimeSigMarker",
        "(proj, integer ptidx, number timepos, integer measurepos, number beatpos, number bpm, "
        .. "integer timesig_num, integer timesig_denom, boolean lineartempo)")
  check(idx == -1 and measurepos == -1 and beatpos == -1 and timepos >= 0 and bpm > 0,
        "SetTempoTimeSigMarker", "only adding by time position is faked")
  P.tempo[#P.tempo + 1] = { time = timepos, bpm = bpm, num = num_, den = den, linear = linear }
  sorted_tempo()
  changed("add tempo")
  return true
end

function R.TimeMap_curFrameRate(proj)
  check(is_proj(proj), "TimeMap_curFrameRate", "proj")
  return P.fps + 0.0, P.drop
end

function R.GetProjectTimeOffset(proj, rndframe)
  check(is_proj(proj) and bool(rndframe), "GetProjectTimeOffset", "(proj, boolean rndframe)")
  return P.offset + 0.0
end

function R.GetProjectStateChangeCount(proj)
  check(is_proj(proj), "GetProjectStateChangeCount", "proj")
  return P.state_count
end

function R.EnumProjects(idx)
  check(int(idx), "EnumProjects", "(integer idx)")
  return { kind = "project" }, P.project
end

function R.GetResourcePath() return P.resource end

function R.RecursiveCreateDirectory(path, ignored)
  check(str(path) and int(ignored), "RecursiveCreateDirectory", "(string path, integer ignored)")
  os.execute('mkdir -p "' .. path .. '"')
  P.dirs[#P.dirs + 1] = path
  return 1
end

function R.GetOS() return P.os end

-- undo, UI

function R.Undo_BeginBlock()
  P.undo_depth = P.undo_depth + 1
  P.undo[#P.undo + 1] = { event = "begin", cycle = P.cycles }
end

function R.Undo_EndBlock(name, flags)
  check(str(name) and int(flags), "Undo_EndBlock", "(string descchange, integer extraflags)")
  check(P.undo_depth > 0, "Undo_EndBlock", "no block open")
  P.undo_depth = P.undo_depth - 1
  P.undo[#P.undo + 1] = { event = "end", name = name, flags = flags, cycle = P.cycles }
end

function R.PreventUIRefresh(n)
  check(int(n), "PreventUIRefresh", "(integer prevent_count)")
  P.ui_refresh = P.ui_refresh + n
end

function R.UpdateArrange() end
function R.UpdateTimeline() end
function R.TrackList_AdjustWindows(minor)
  check(bool(minor), "TrackList_AdjustWindows", "(boolean isMinor)")
end

function R.ShowMessageBox(msg, title, kind)
  check(str(msg) and str(title) and int(kind), "ShowMessageBox", "(string msg, string title, integer type)")
  P.messages[#P.messages + 1] = { msg = msg, title = title, type = kind }
  return 1
end

function R.ShowConsoleMsg(msg)
  check(str(msg), "ShowConsoleMsg", "(string msg)")
  P.console[#P.console + 1] = msg
end

function R.GetUserInputs(title, n, captions, values)
  check(str(title) and int(n) and str(captions) and str(values), "GetUserInputs",
        "(string title, integer num_inputs, string captions_csv, string retvals_csv)")
  P.user_inputs_asked = { title = title, n = n, captions = captions, values = values }
  if P.user_inputs == nil then return false, values end
  return true, P.user_inputs
end

-- actions, deferred functions, processes, ExtState

function R.defer(fn)
  check(type(fn) == "function", "defer", "(function)")
  P.defer_queue[#P.defer_queue + 1] = fn
end

function R.atexit(fn)
  check(type(fn) == "function", "atexit", "(function)")
  P.atexit[#P.atexit + 1] = fn
end

function R.time_precise() return P.clock end

function R.get_action_context()
  local c = P.context or { path = "", section = 0, command = 0 }
  return false, c.path, c.section, c.command, -1, -1, -1, ""
end

function R.set_action_options(flags)
  check(int(flags), "set_action_options", "(integer flags)")
  P.action_options = flags
end

function R.SetToggleCommandState(section, cmd, state)
  check(int(section) and int(cmd) and int(state), "SetToggleCommandState",
        "(integer section_id, integer command_id, integer state)")
  P.toggles[section .. ":" .. cmd] = state
  return true
end

function R.GetToggleCommandStateEx(section, cmd)
  check(int(section) and int(cmd), "GetToggleCommandStateEx", "(integer section_id, integer command_id)")
  return P.toggles[section .. ":" .. cmd] or -1
end

function R.RefreshToolbar2(section, cmd)
  check(int(section) and int(cmd), "RefreshToolbar2", "(integer section_id, integer command_id)")
  P.toolbar[#P.toolbar + 1] = { section = section, command = cmd,
                                state = P.toggles[section .. ":" .. cmd] or -1 }
end

function R.ExecProcess(cmd, timeout)
  check(str(cmd) and int(timeout), "ExecProcess", "(string cmdline, integer timeoutmsec)")
  P.execs[#P.execs + 1] = { cmd = cmd, timeout = timeout }
  return start_process(cmd, timeout)
end

function R.GetExtState(section, key)
  check(str(section) and str(key), "GetExtState", "(string section, string key)")
  return P.extstate[section .. "/" .. key] or ""
end

function R.SetExtState(section, key, value, persist)
  check(str(section) and str(key) and str(value) and bool(persist), "SetExtState",
        "(string section, string key, string value, boolean persist)")
  P.extstate[section .. "/" .. key] = value
end

-- set_action_options exists from REAPER 7.03 on; older versions lack it.
reaper = setmetatable({}, {
  __index = function(_, name)
    if name == "set_action_options" and not fake.has_action_options then return nil end
    local fn = R[name]
    if fn == nil then error("reaper." .. tostring(name) .. " is not faked (or not REAPER's API)", 2) end
    return fn
  end,
})

-- the dump -------------------------------------------------------------------------------

local function dump_take(take)
  local notes = json.array()
  for i, n in ipairs(take.notes) do
    notes[i] = { ppq0 = n.ppq0, ppq1 = n.ppq1, chan = n.chan, pitch = n.pitch, vel = n.vel,
                 t0 = R.MIDI_GetProjTimeFromPPQPos(take, n.ppq0),
                 t1 = R.MIDI_GetProjTimeFromPPQPos(take, n.ppq1) }
  end
  local ccs = json.array()
  for i, c in ipairs(take.ccs) do ccs[i] = c end
  return { name = take.name, midi = take.midi or false, sorted = take.sorted ~= false,
           notes = notes, ccs = ccs, file = take.source.file }
end

function fake.snapshot()
  local tracks = json.array()
  for i, t in ipairs(P.tracks) do
    local items = json.array()
    for j, it in ipairs(t.items) do
      items[j] = { pos = it.pos, len = it.len, ext = json.object(it.ext), take = dump_take(it.take) }
    end
    local fx = json.array()
    for k, f in ipairs(t.fx) do fx[k] = f end
    tracks[i] = { name = t.name, ext = json.object(t.ext), depth = t.depth, items = items, fx = fx }
  end
  local markers = json.array()
  for i, m in ipairs(P.markers) do
    markers[i] = { pos = m.pos, name = m.name, region = m.isrgn, rgnend = m.rgnend, id = m.id }
  end
  local tempo = json.array()
  for i, m in ipairs(sorted_tempo()) do tempo[i] = m end
  local requests = json.array()
  for i, r in ipairs(fake.requests) do requests[i] = { argv = json.array(r.argv), result = r.result } end
  local function list(t) local out = json.array() for i, v in ipairs(t) do out[i] = v end return out end
  return {
    tracks = tracks, markers = markers, tempo = tempo, requests = requests,
    undo = list(P.undo), undo_depth = P.undo_depth, ui_refresh = P.ui_refresh,
    outside_undo = list(P.outside_undo), messages = list(P.messages), console = list(P.console),
    execs = list(P.execs), errors = list(P.errors), extstate = json.object(P.extstate),
    toggles = json.object(P.toggles), toolbar = list(P.toolbar), state_count = P.state_count,
    deferred = #P.defer_queue, atexit_pending = #P.atexit, clock = P.clock, cycles = P.cycles,
    action_options = P.action_options, user_inputs_asked = P.user_inputs_asked,
    command_ids = json.object(fake.command_ids), checks = json.object(fake.checks),
  }
end

function fake.dump(path)
  write(path, json.encode(fake.snapshot(), " "))
end

return fake
