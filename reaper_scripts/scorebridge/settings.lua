-- @noindex
-- ScoreBridge's settings, kept in REAPER's ExtState (section "scorebridge", persistent).
--
--   cli        path of the scorebridge executable ("" = the path `scorebridge install
--              reaper` recorded, else `scorebridge` on the PATH)
--   tempo_map  1: write the cue's tempo map and time signatures into the project
--   markers    1: mark every hit with a project marker named "SB: hit …"
--   seed       the same seed gives the same music
--   audio      1: also render the WAV preview (slower; REAPER only needs the MIDI)
--   palette    instruments for new part tracks: "family=FX name; …", e.g.
--              "pad=ReaSynth; drums=ReaSamplOmatic5000; *=ReaSynth" (* = any family)
--   timeout    seconds to wait for a result

local M = {}

M.SECTION = "scorebridge"

M.FIELDS = {
  { key = "cli", default = "", caption = "scorebridge executable (empty: automatic)" },
  { key = "tempo_map", default = "1", caption = "Write tempo map (1/0)" },
  { key = "markers", default = "1", caption = "Mark hits (1/0)" },
  { key = "seed", default = "1", caption = "Seed" },
  { key = "audio", default = "0", caption = "Render WAV preview too (1/0)" },
  { key = "palette", default = "", caption = "Palette (family=FX; ...)" },
  { key = "timeout", default = "900", caption = "Timeout (seconds)" },
}

function M.load()
  local out = {}
  for _, field in ipairs(M.FIELDS) do
    local value = reaper.GetExtState(M.SECTION, field.key)
    if value == nil or value == "" then value = field.default end
    out[field.key] = value
  end
  out.tempo_map = out.tempo_map ~= "0"
  out.markers = out.markers ~= "0"
  out.audio = out.audio == "1"
  out.seed = math.tointeger(tonumber(out.seed)) or 1
  out.timeout = tonumber(out.timeout) or 900
  return out
end

-- Saves the fields given as strings (as the settings dialog returns them).
function M.save(values)
  for _, field in ipairs(M.FIELDS) do
    if values[field.key] ~= nil then
      reaper.SetExtState(M.SECTION, field.key, tostring(values[field.key]), true)
    end
  end
end

-- The palette as { family = "FX name" }.
function M.palette(text)
  local out = {}
  for entry in (text or ""):gmatch("[^;]+") do
    local family, fx = entry:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    if family and family ~= "" and fx ~= "" then out[family:lower()] = fx end
  end
  return out
end

return M
