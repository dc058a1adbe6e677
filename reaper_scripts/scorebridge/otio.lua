-- @noindex
-- The picture edit as an OpenTimelineIO JSON document (the schema versions OTIO 0.17+ writes).
--
-- The edit is plain data read from the project (see project.lua); all times are whole
-- frames at the project rate, counted from the edit's first frame:
--   { name, rate, drop, start_frame, track_name, origin, project,
--     clips = { {name, first, frames, source_first, source_frames, path, playrate} },
--     markers = { {frame, frames, name, region, color} } }

local json = require("scorebridge.json")

local M = {}

local function rt(value, rate)
  -- Frame counts are written as floats (1.0, not 1), as OTIO itself writes them.
  return { OTIO_SCHEMA = "RationalTime.1", value = value + 0.0, rate = rate + 0.0 }
end

local function range(first, frames, rate)
  return { OTIO_SCHEMA = "TimeRange.1", start_time = rt(first, rate), duration = rt(frames, rate) }
end

local function item(schema, name, metadata)
  return { OTIO_SCHEMA = schema, name = name or "", metadata = json.object(metadata or {}),
           effects = json.array(), markers = json.array(), enabled = true, color = json.null }
end

local function marker(m, rate)
  local meta = { reaper = json.object{ region = m.region and true or false, color = m.color or 0 } }
  return { OTIO_SCHEMA = "Marker.2", name = m.name, comment = "",
           color = m.region and "GREEN" or "RED", metadata = json.object(meta),
           marked_range = range(m.frame, m.frames or 0, rate) }
end

local function clip(c, rate)
  local out = item("Clip.2", c.name, { reaper = json.object{ playrate = c.playrate } })
  out.source_range = range(c.source_first, c.frames, rate)
  local ref
  if c.path and c.path ~= "" then
    -- Take offsets count from the start of the file, so the media starts at frame 0
    -- (without an available range the reader would subtract the file's own timecode).
    ref = { OTIO_SCHEMA = "ExternalReference.1", name = "", metadata = json.object(),
            target_url = c.path, available_image_bounds = json.null,
            available_range = range(0, math.max(c.source_frames or 0, c.source_first + c.frames), rate) }
  else
    ref = { OTIO_SCHEMA = "MissingReference.1", name = "", metadata = json.object(),
            available_range = json.null, available_image_bounds = json.null }
  end
  out.media_references = json.object{ DEFAULT_MEDIA = ref }
  out.active_media_reference_key = "DEFAULT_MEDIA"
  if c.playrate and c.playrate ~= 1 then
    out.effects[1] = { OTIO_SCHEMA = "LinearTimeWarp.1", name = "", metadata = json.object(),
                       effect_name = "LinearTimeWarp", time_scalar = c.playrate + 0.0 }
  end
  return out
end

function M.document(edit)
  local rate = edit.rate
  local children, at = json.array(), 0
  for _, c in ipairs(edit.clips) do
    if c.first > at then -- empty picture between items
      local gap = item("Gap.1", "")
      gap.source_range = range(0, c.first - at, rate)
      children[#children + 1] = gap
    end
    children[#children + 1] = clip(c, rate)
    at = c.first + c.frames
  end
  local track = item("Track.1", edit.track_name)
  track.kind, track.source_range, track.children = "Video", json.null, children
  local stack = item("Stack.1", "tracks")
  stack.source_range, stack.children = json.null, json.array{ track }
  for i, m in ipairs(edit.markers) do stack.markers[i] = marker(m, rate) end
  return {
    OTIO_SCHEMA = "Timeline.1",
    name = edit.name,
    global_start_time = rt(edit.start_frame, rate),
    metadata = json.object{
      drop_frame = edit.drop and true or false,
      scorebridge = json.object{ host = "reaper", origin_seconds = edit.origin,
                                 project = edit.project or "" },
    },
    tracks = stack,
  }
end

-- The document as text: the same edit always gives the same text.
function M.encode(edit)
  return json.encode(M.document(edit), "  ") .. "\n"
end

return M
