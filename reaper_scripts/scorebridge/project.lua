-- @noindex
-- Reads the picture edit out of the REAPER project: the picture track's items, the
-- project markers and regions, the frame rate and the project start time.
--
-- Times in REAPER are seconds; they become whole frames at the project rate here, counted
-- from the first frame of the picture (its earliest item), which is the edit's frame 0.

local M = {}

M.TAG = "P_EXT:scorebridge" -- what marks ScoreBridge's own tracks and items
M.MARKER_PREFIX = "SB:"     -- what marks ScoreBridge's own markers

local VIDEO_EXTENSIONS = {}
for ext in ("mp4 mov mkv avi mxf webm m4v mpg mpeg mts m2ts ts wmv flv 3gp ogv dv"):gmatch("%S+") do
  VIDEO_EXTENSIONS[ext] = true
end

-- Rates as REAPER reports them (29.97002997…) snapped to the exact ones the engine uses.
local STANDARD_RATES = { 24000 / 1001, 24, 25, 30000 / 1001, 30, 48000 / 1001, 48, 50,
                         60000 / 1001, 60, 120000 / 1001, 120 }
local DROP_FRAME_RATES = { [30000 / 1001] = true, [60000 / 1001] = true }

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

function M.is_ours(name)
  return trim(name or ""):upper():sub(1, #M.MARKER_PREFIX) == M.MARKER_PREFIX
end

function M.basename(path)
  return (path or ""):match("([^/\\]*)$")
end

function M.track_tag(track)
  local _, value = reaper.GetSetMediaTrackInfo_String(track, M.TAG, "", false)
  return value or ""
end

function M.item_tag(item)
  local _, value = reaper.GetSetMediaItemInfo_String(item, M.TAG, "", false)
  return value or ""
end

local function source_of(item)
  local take = reaper.GetActiveTake(item)
  if not take then return nil, nil end
  return take, reaper.GetMediaItemTake_Source(take)
end

local function is_video(item)
  local _, source = source_of(item)
  if not source then return false end
  if reaper.GetMediaSourceType(source) == "VIDEO" then return true end
  local ext = (reaper.GetMediaSourceFileName(source) or ""):match("%.([%w]+)$")
  return ext ~= nil and VIDEO_EXTENSIONS[ext:lower()] == true
end

local function count_video_items(track)
  local n = 0
  for i = 0, reaper.CountTrackMediaItems(track) - 1 do
    if is_video(reaper.GetTrackMediaItem(track, i)) then n = n + 1 end
  end
  return n
end

-- The picture track: the one named "Video" or "Picture", else the selected track when it
-- holds video, else the first track that holds video. ScoreBridge's own tracks never count.
function M.picture_track()
  local tracks = {}
  for i = 0, reaper.CountTracks(0) - 1 do
    local track = reaper.GetTrack(0, i)
    if M.track_tag(track) == "" then tracks[#tracks + 1] = track end
  end
  for _, track in ipairs(tracks) do
    local _, name = reaper.GetTrackName(track)
    local lower = trim(name or ""):lower()
    if (lower == "video" or lower == "picture") and reaper.CountTrackMediaItems(track) > 0 then
      return track
    end
  end
  if reaper.CountSelectedTracks(0) > 0 then
    local track = reaper.GetSelectedTrack(0, 0)
    if M.track_tag(track) == "" and count_video_items(track) > 0 then return track end
  end
  for _, track in ipairs(tracks) do
    if count_video_items(track) > 0 then return track end
  end
  return nil, "No picture found.\n\nPut the rendered picture on a track named \"Video\" "
    .. "(or \"Picture\"), or select the track that holds it, and run ScoreBridge again."
end

-- (exact rate, drop frame) of the project.
function M.frame_rate()
  local fps, drop = reaper.TimeMap_curFrameRate(0)
  local rate = fps
  for _, std in ipairs(STANDARD_RATES) do
    if math.abs(fps - std) < 0.006 then rate = std end
  end
  return rate, (drop and DROP_FRAME_RATES[rate]) and true or false
end

-- The project file's folder, name without extension, and path (nil, "untitled", "" before
-- the project is saved).
function M.project_file()
  local _, path = reaper.EnumProjects(-1)
  if not path or path == "" then return nil, "untitled", "" end
  local folder, file = path:match("^(.*)[/\\]([^/\\]+)$")
  local name = (file or path):gsub("%.[^.]*$", "")
  return folder or ".", name, path
end

-- Where ScoreBridge keeps its files for this project: beside the project file, else (an
-- unsaved project) in REAPER's resource folder.
function M.work_folder()
  local folder, name = M.project_file()
  local dir = folder and (folder .. "/ScoreBridge")
    or (reaper.GetResourcePath() .. "/ScoreBridge/unsaved")
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir, name
end

local function read_items(track)
  local items = {}
  for i = 0, reaper.CountTrackMediaItems(track) - 1 do
    local item = reaper.GetTrackMediaItem(track, i)
    if reaper.GetMediaItemInfo_Value(item, "B_MUTE") == 0 then
      local take, source = source_of(item)
      local path, offset, playrate, length, name = "", 0, 1, nil, nil
      if take then
        offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
        playrate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
        name = reaper.GetTakeName(take)
      end
      if source then
        path = reaper.GetMediaSourceFileName(source) or ""
        local seconds, in_quarters = reaper.GetMediaSourceLength(source)
        if not in_quarters then length = seconds end
      end
      items[#items + 1] = {
        position = reaper.GetMediaItemInfo_Value(item, "D_POSITION"),
        length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH"),
        offset = offset, playrate = playrate, path = path, source_length = length,
        name = (name and name ~= "") and name or M.basename(path),
      }
    end
  end
  table.sort(items, function(a, b) return a.position < b.position end)
  return items
end

local function read_markers(origin, frames, duration)
  local markers = {}
  local _, n_markers, n_regions = reaper.CountProjectMarkers(0)
  for i = 0, n_markers + n_regions - 1 do
    local _, is_region, position, region_end, name, _, color = reaper.EnumProjectMarkers3(0, i)
    local frame = frames(position - origin)
    if not M.is_ours(name) and frame >= 0 and frame < duration then
      markers[#markers + 1] = {
        frame = frame, name = name or "", region = is_region, color = color,
        frames = is_region and math.max(0, frames(region_end - origin) - frame) or 0,
      }
    end
  end
  table.sort(markers, function(a, b)
    if a.frame ~= b.frame then return a.frame < b.frame end
    return a.name < b.name
  end)
  return markers
end

-- The picture edit (see otio.lua for its fields), or nil and a message for the user.
function M.read()
  local track, why = M.picture_track()
  if not track then return nil, why end
  local _, track_name = reaper.GetTrackName(track)
  local items = read_items(track)
  if #items == 0 then
    return nil, "No picture found.\n\nThe track \"" .. track_name .. "\" holds no unmuted items."
  end
  local rate, drop = M.frame_rate()
  local function frames(seconds) return math.floor(seconds * rate + 0.5) end
  local origin = items[1].position

  local clips = {}
  for _, it in ipairs(items) do
    local first = frames(it.position - origin)
    local last = frames(it.position + it.length - origin)
    local previous = clips[#clips]
    if previous and previous.first + previous.frames > first then
      previous.frames = first - previous.first -- overlapping items: the later one is seen
      if previous.frames <= 0 then table.remove(clips) end
    end
    if last > first then
      clips[#clips + 1] = {
        name = it.name, first = first, frames = last - first, path = it.path,
        source_first = frames(it.offset), playrate = it.playrate,
        source_frames = it.source_length and frames(it.source_length) or nil,
      }
    end
  end
  if #clips == 0 then
    return nil, "No picture found.\n\nThe items on \"" .. track_name .. "\" are shorter than a frame."
  end
  local last = clips[#clips]
  local duration = last.first + last.frames
  local _, name, path = M.project_file()
  return {
    name = name, rate = rate, drop = drop, origin = origin, track_name = track_name,
    project = path,
    start_frame = frames(reaper.GetProjectTimeOffset(0, false) + origin),
    duration = duration, clips = clips, markers = read_markers(origin, frames, duration),
  }
end

return M
