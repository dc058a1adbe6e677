-- @noindex
-- Places a finished score in the project, in one undo block: a folder track "ScoreBridge"
-- with one child track per instrument holding a MIDI item, the tempo map, and hit markers.
--
-- Everything ScoreBridge makes is tagged (tracks and items with P_EXT:scorebridge, markers
-- with an "SB:" name), and a new result replaces only tagged things: part tracks are
-- reused by instrument name, so the instruments and effects a composer put on them stay;
-- items the composer added to them stay too.

local json = require("scorebridge.json")
local project = require("scorebridge.project")
local settings_mod = require("scorebridge.settings")

local M = {}

M.FOLDER = "ScoreBridge"

-- The manifest and the notes it names, or nil and a message.
function M.load(manifest_path)
  local function read(path, what)
    local text, err = json.read_file(path)
    if not text then error("cannot read the " .. what .. " " .. path .. ": " .. tostring(err), 0) end
    return json.decode(text)
  end
  local ok, result = pcall(function()
    local manifest = read(manifest_path, "manifest")
    local notes_path = manifest.outputs and manifest.outputs.notes
    if not notes_path then error("the manifest names no notes file (outputs.notes)", 0) end
    return { manifest = manifest, parts = read(notes_path, "notes").parts or {} }
  end)
  if not ok then return nil, result end
  return result
end

-- tracks ------------------------------------------------------------------------------

local function depth(track)
  return math.floor(reaper.GetMediaTrackInfo_Value(track, "I_FOLDERDEPTH"))
end

local function set_depth(track, value)
  reaper.SetMediaTrackInfo_Value(track, "I_FOLDERDEPTH", value)
end

local function index_of(track)
  return math.floor(reaper.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")) - 1
end

local function tagged_tracks()
  local out = {}
  for i = 0, reaper.CountTracks(0) - 1 do
    local track = reaper.GetTrack(0, i)
    local tag = project.track_tag(track)
    if tag ~= "" then out[#out + 1] = { track = track, tag = tag } end
  end
  return out
end

local function find_tagged(tag)
  for _, t in ipairs(tagged_tracks()) do
    if t.tag == tag then return t.track end
  end
end

local function new_track(index, name, tag, folder_depth)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  reaper.GetSetMediaTrackInfo_String(track, project.TAG, tag, true)
  set_depth(track, folder_depth)
  return track
end

local function ensure_folder()
  return find_tagged("folder") or new_track(reaper.CountTracks(0), M.FOLDER, "folder", 0)
end

-- A new last child of the folder. Folder depths are relative steps (1 opens a folder, -n
-- closes n), so the track that closed the folder passes its closing step to the new one.
local function add_child(folder, name, tag)
  local first = index_of(folder)
  local folder_depth = depth(folder)
  local at, new_depth
  if folder_depth <= 0 then -- not (or no longer) a folder: open it, close it after the child
    set_depth(folder, 1)
    at, new_depth = first + 1, folder_depth - 1
  else
    local level, i, n = 1, first, reaper.CountTracks(0)
    while level > 0 and i + 1 < n do
      i = i + 1
      level = level + depth(reaper.GetTrack(0, i))
    end
    if i == first then
      at, new_depth = first + 1, -1
    else
      local last = reaper.GetTrack(0, i)
      local last_level = level - depth(last)
      set_depth(last, 1 - last_level) -- after it, stay among the folder's children
      at, new_depth = i + 1, level - 1
    end
  end
  return new_track(at, name, tag, new_depth)
end

local function remove_track(track)
  local d = depth(track)
  local index = index_of(track)
  if d < 0 and index > 0 then -- hand the folder's closing step to the track above
    local above = reaper.GetTrack(0, index - 1)
    set_depth(above, depth(above) + d)
  end
  set_depth(track, 0)
  reaper.DeleteTrack(track)
end

local function remove_own_items(track)
  for i = reaper.CountTrackMediaItems(track) - 1, 0, -1 do
    local item = reaper.GetTrackMediaItem(track, i)
    if project.item_tag(item) ~= "" then reaper.DeleteTrackMediaItem(track, item) end
  end
end

local function add_instrument(track, family, palette)
  local fx = palette[(family or ""):lower()] or palette["*"]
  if fx and reaper.TrackFX_AddByName(track, fx, false, -1) < 0 then
    reaper.ShowConsoleMsg("ScoreBridge: no effect or instrument named \"" .. fx .. "\" for "
      .. (family or "?") .. " (palette setting)\n")
  end
end

-- markers and tempo -------------------------------------------------------------------

local function remove_own_markers()
  local _, n_markers, n_regions = reaper.CountProjectMarkers(0)
  for i = n_markers + n_regions - 1, 0, -1 do
    local _, _, _, _, name = reaper.EnumProjectMarkers3(0, i)
    if project.is_ours(name) then reaper.DeleteProjectMarkerByIndex(0, i) end
  end
end

local function add_markers(manifest, origin)
  local color = reaper.ColorToNative(230, 120, 40) | 0x1000000
  local cue = manifest.plan and manifest.plan.cue or "1M1"
  reaper.AddProjectMarker2(0, false, origin, 0, "SB: cue " .. cue, -1, color)
  for _, hit in ipairs(manifest.hits or {}) do
    local name = "SB: hit " .. (hit.source or "") .. " " .. (hit.timecode or "")
    reaper.AddProjectMarker2(0, false, origin + hit.seconds, 0, name, -1, color)
  end
end

-- Tempo and time-signature changes as { time, bpm, num, den } (num = den = 0: no change).
-- Times come from the whole microseconds per quarter the MIDI file holds, so a beat lands
-- on the same second in REAPER as in the file.
local function tempo_points(manifest, origin)
  local tempo = manifest.tempo_map or {}
  if #tempo == 0 then return {} end
  local segments, seconds = {}, 0
  for i, t in ipairs(tempo) do
    local us = t.us_per_quarter or 60000000 / t.bpm
    if i > 1 then
      seconds = seconds + (t.beat - segments[i - 1].beat) * segments[i - 1].us / 1e6
    end
    segments[i] = { beat = t.beat, seconds = seconds, us = us }
  end
  local function segment_at(beat)
    local found = segments[1]
    for _, s in ipairs(segments) do
      if s.beat <= beat + 1e-9 then found = s end
    end
    return found
  end
  local by_beat, beats = {}, {}
  local function point(beat)
    if not by_beat[beat] then
      local s = segment_at(beat)
      by_beat[beat] = { time = origin + s.seconds + (beat - s.beat) * s.us / 1e6,
                        bpm = 60000000 / s.us, num = 0, den = 0 }
      beats[#beats + 1] = beat
    end
    return by_beat[beat]
  end
  for _, s in ipairs(segments) do point(s.beat) end
  local signatures = manifest.plan and manifest.plan.time_signatures or {}
  for _, sig in ipairs(signatures) do
    local p = point(sig.beat)
    p.num, p.den = sig.numerator, sig.denominator
  end
  table.sort(beats)
  local out = {}
  for i, beat in ipairs(beats) do out[i] = by_beat[beat] end
  return out
end

local function write_tempo(manifest, origin, duration)
  local points = tempo_points(manifest, origin)
  if #points == 0 then return 0 end
  local eps = 1e-6 -- the cue's span now follows the cue's tempo; what lies outside stays
  for i = reaper.CountTempoTimeSigMarkers(0) - 1, 0, -1 do
    local _, time = reaper.GetTempoTimeSigMarker(0, i)
    if time >= origin - eps and time <= origin + duration + eps then
      reaper.DeleteTempoTimeSigMarker(0, i)
    end
  end
  for _, p in ipairs(points) do
    reaper.SetTempoTimeSigMarker(0, -1, p.time, -1, -1, p.bpm, p.num, p.den, false)
  end
  reaper.UpdateTimeline()
  return #points
end

-- notes -------------------------------------------------------------------------------

local function round(x) return math.floor(x + 0.5) end

local function write_part(track, part, origin, duration, label)
  local item = reaper.CreateNewMIDIItemInProj(track, origin, origin + duration, false)
  reaper.GetSetMediaItemInfo_String(item, project.TAG, label, true)
  local take = reaper.GetActiveTake(item)
  reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", part.name, true)
  local channel = part.channel or 0
  -- A program change first, so that any General MIDI instrument plays the right sound.
  reaper.MIDI_InsertCC(take, false, false, 0, 0xC0, channel, part.program or 0, 0)
  for _, note in ipairs(part.notes) do
    local t0, t1, pitch, velocity = note[1], note[2], note[3], note[4]
    local ppq0 = round(reaper.MIDI_GetPPQPosFromProjTime(take, origin + t0))
    local ppq1 = math.max(ppq0 + 1, round(reaper.MIDI_GetPPQPosFromProjTime(take, origin + t1)))
    reaper.MIDI_InsertNote(take, false, false, ppq0, ppq1, channel, pitch, velocity, true)
  end
  reaper.MIDI_Sort(take)
  return #part.notes
end

-- Everything inside one undo block; ctx: origin (project seconds of the edit's frame 0),
-- settings, undo (the undo point's name), label (the tag value for items).
local function place(result, ctx)
  local manifest, settings = result.manifest, ctx.settings
  local origin, duration = ctx.origin, manifest.duration_seconds or 0
  local palette = settings_mod.palette(settings.palette)
  local summary = { parts = 0, notes = 0, hits = #(manifest.hits or {}), tempo = 0 }

  for _, t in ipairs(tagged_tracks()) do remove_own_items(t.track) end
  remove_own_markers()
  if settings.tempo_map then summary.tempo = write_tempo(manifest, origin, duration) end

  local folder = ensure_folder()
  local used = { folder = true }
  for _, part in ipairs(result.parts) do
    if #part.notes > 0 then
      local tag = "part:" .. part.name
      local track = find_tagged(tag)
      if not track then
        track = add_child(folder, part.name, tag)
        add_instrument(track, part.family, palette)
      end
      used[tag] = true
      summary.notes = summary.notes + write_part(track, part, origin, duration, ctx.label)
      summary.parts = summary.parts + 1
    end
  end
  -- Part tracks this result has no use for go, unless the composer put something on them.
  for _, t in ipairs(tagged_tracks()) do
    if not used[t.tag] and reaper.CountTrackMediaItems(t.track) == 0
       and reaper.TrackFX_GetCount(t.track) == 0 and depth(t.track) <= 0 then
      remove_track(t.track)
    end
  end
  if settings.markers then add_markers(manifest, origin) end
  return summary
end

function M.apply(result, ctx)
  reaper.PreventUIRefresh(1)
  reaper.Undo_BeginBlock()
  local ok, summary = pcall(place, result, ctx)
  reaper.Undo_EndBlock(ctx.undo, -1)
  reaper.PreventUIRefresh(-1)
  reaper.TrackList_AdjustWindows(false)
  reaper.UpdateArrange()
  if not ok then error(summary, 0) end
  for _, warning in ipairs(result.manifest.warnings or {}) do
    reaper.ShowConsoleMsg("ScoreBridge warning: " .. tostring(warning) .. "\n")
  end
  return summary
end

return M
