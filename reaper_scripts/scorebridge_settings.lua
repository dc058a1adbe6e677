-- @noindex
-- ScoreBridge: Settings. One dialog for what the other actions read from ExtState.

local SCRIPT_DIR = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
package.path = SCRIPT_DIR .. "?.lua;" .. package.path

local function main()
  local settings = require("scorebridge.settings")
  local captions, values = {}, {}
  for i, field in ipairs(settings.FIELDS) do
    captions[i] = field.caption
    local value = reaper.GetExtState(settings.SECTION, field.key)
    values[i] = value ~= "" and value or field.default
  end
  -- Values are joined with newlines, so that paths and palettes may hold commas.
  local ok, answer = reaper.GetUserInputs("ScoreBridge settings", #settings.FIELDS,
    table.concat(captions, ",") .. ",separator=\n,extrawidth=300", table.concat(values, "\n"))
  if not ok then return end
  local new, i = {}, 0
  for value in (answer .. "\n"):gmatch("(.-)\n") do
    i = i + 1
    local field = settings.FIELDS[i]
    if field then new[field.key] = value:match("^%s*(.-)%s*$") end
  end
  for _, key in ipairs{ "tempo_map", "markers", "audio" } do
    if new[key] and new[key] ~= "0" and new[key] ~= "1" then
      return reaper.ShowMessageBox("\"" .. key .. "\" must be 1 or 0.", "ScoreBridge", 0)
    end
  end
  if not tonumber(new.seed or "1") or not tonumber(new.timeout or "900") then
    return reaper.ShowMessageBox("Seed and timeout must be numbers.", "ScoreBridge", 0)
  end
  settings.save(new)
end

local ok, err = pcall(main)
if not ok then
  reaper.ShowMessageBox("ScoreBridge stopped because of an error:\n\n" .. tostring(err),
                        "ScoreBridge", 0)
end
