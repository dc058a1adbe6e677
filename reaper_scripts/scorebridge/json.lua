-- @noindex
-- A small JSON codec for ScoreBridge's REAPER scripts (REAPER's Lua has no JSON library).
--
-- decode(text) -> value: objects and arrays become tables, null becomes nil.
-- Load it with require("scorebridge.json") so that every module shares one copy.
-- encode(value) -> text: keys sorted, so the same data always gives the same text (the
-- live mode compares encoded edits). Mark tables with array()/object() where an empty
-- table must come out as [] or {}; otherwise a table with keys 1..n is an array.

local M = {}

-- Written as null; decoding gives nil instead.
M.null = setmetatable({}, { __jsontype = "null", __tostring = function() return "null" end })

local ARRAY = { __jsontype = "array" }
local OBJECT = { __jsontype = "object" }

function M.array(t) return setmetatable(t or {}, ARRAY) end
function M.object(t) return setmetatable(t or {}, OBJECT) end

-- decoding ---------------------------------------------------------------------------

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
                  n = "\n", r = "\r", t = "\t" }

local function fail(text, pos, what)
  local line = select(2, text:sub(1, pos):gsub("\n", "")) + 1
  error(string.format("JSON: %s at line %d (character %d)", what, line, pos), 0)
end

local function skip(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local decode_value

local function decode_string(text, pos)
  local out, i = {}, pos + 1
  while true do
    local j = text:find('["\\%c]', i)
    if not j then fail(text, pos, "unterminated string") end
    out[#out + 1] = text:sub(i, j - 1)
    local c = text:sub(j, j)
    if c == '"' then return table.concat(out), j + 1 end
    if c ~= "\\" then fail(text, j, "control character in string") end
    local e = text:sub(j + 1, j + 1)
    if e == "u" then
      local hex = text:match("^%x%x%x%x", j + 2)
      if not hex then fail(text, j, "bad \\u escape") end
      local code, nexti = tonumber(hex, 16), j + 6
      if code >= 0xD800 and code <= 0xDBFF then -- a surrogate pair is one character
        local low = text:match("^\\u(%x%x%x%x)", nexti)
        low = low and tonumber(low, 16)
        if low and low >= 0xDC00 and low <= 0xDFFF then
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          nexti = nexti + 6
        end
      end
      out[#out + 1] = utf8.char(code)
      i = nexti
    elseif ESCAPES[e] then
      out[#out + 1] = ESCAPES[e]
      i = j + 2
    else
      fail(text, j, "bad escape")
    end
  end
end

local function decode_number(text, pos)
  local s = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  local n = s and tonumber(s)
  if not n then fail(text, pos, "bad number") end
  return n, pos + #s
end

local function decode_array(text, pos)
  local out, n = M.array(), 0
  pos = skip(text, pos + 1)
  if text:sub(pos, pos) == "]" then return out, pos + 1 end
  while true do
    local value
    value, pos = decode_value(text, pos)
    n = n + 1
    out[n] = value
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "]" then return out, pos + 1 end
    if c ~= "," then fail(text, pos, "expected , or ] in array") end
    pos = skip(text, pos + 1)
  end
end

local function decode_object(text, pos)
  local out = M.object()
  pos = skip(text, pos + 1)
  if text:sub(pos, pos) == "}" then return out, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then fail(text, pos, "expected a key") end
    local key
    key, pos = decode_string(text, pos)
    pos = skip(text, pos)
    if text:sub(pos, pos) ~= ":" then fail(text, pos, "expected :") end
    local value
    value, pos = decode_value(text, skip(text, pos + 1))
    out[key] = value
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "}" then return out, pos + 1 end
    if c ~= "," then fail(text, pos, "expected , or } in object") end
    pos = skip(text, pos + 1)
  end
end

function decode_value(text, pos)
  pos = skip(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then return decode_object(text, pos) end
  if c == "[" then return decode_array(text, pos) end
  if c == '"' then return decode_string(text, pos) end
  if c == "-" or c:match("%d") then return decode_number(text, pos) end
  if text:sub(pos, pos + 3) == "true" then return true, pos + 4 end
  if text:sub(pos, pos + 4) == "false" then return false, pos + 5 end
  if text:sub(pos, pos + 3) == "null" then return nil, pos + 4 end
  fail(text, pos, "unexpected " .. (c == "" and "end of text" or ("'" .. c .. "'")))
end

function M.decode(text)
  local value, pos = decode_value(text, 1)
  pos = skip(text, pos)
  if pos <= #text then fail(text, pos, "trailing text") end
  return value
end

-- encoding ---------------------------------------------------------------------------

local NAMED = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  local escaped = s:gsub('[%c"\\]', function(c)
    return NAMED[c] or string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

local function encode_number(n)
  if n ~= n or n == math.huge or n == -math.huge then
    error("JSON: cannot encode " .. tostring(n), 0)
  end
  if math.type(n) == "integer" then return string.format("%d", n) end
  if n == math.floor(n) and math.abs(n) < 1e15 then return string.format("%.1f", n) end
  return string.format("%.17g", n)
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == ARRAY then return true end
  if mt == OBJECT then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local encode_value

local function encode_table(t, indent, depth)
  local pad, inner, sep = "", "", ","
  if indent then
    pad = "\n" .. string.rep(indent, depth)
    inner = "\n" .. string.rep(indent, depth + 1)
    sep = ","
  end
  local parts = {}
  if is_array(t) then
    for i = 1, #t do parts[i] = inner .. encode_value(t[i], indent, depth + 1) end
    if #parts == 0 then return "[]" end
    return "[" .. table.concat(parts, sep) .. pad .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("JSON: object keys must be strings", 0) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local colon = indent and ": " or ":"
  for i, k in ipairs(keys) do
    parts[i] = inner .. encode_string(k) .. colon .. encode_value(t[k], indent, depth + 1)
  end
  if #parts == 0 then return "{}" end
  return "{" .. table.concat(parts, sep) .. pad .. "}"
end

function encode_value(v, indent, depth)
  local kind = type(v)
  if v == nil or v == M.null then return "null" end
  if kind == "boolean" then return tostring(v) end
  if kind == "number" then return encode_number(v) end
  if kind == "string" then return encode_string(v) end
  if kind == "table" then return encode_table(v, indent, depth) end
  error("JSON: cannot encode a " .. kind, 0)
end

-- indent: nil for compact text, or a string such as "  " for readable text.
function M.encode(value, indent)
  return encode_value(value, indent, 0)
end

-- Write text to path so that a reader sees the old file or the new one, never half.
function M.write_file(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  f:close()
  if not ok then os.remove(tmp) return nil, werr end
  local moved, merr = os.rename(tmp, path)
  if not moved then -- Windows cannot rename over an existing file
    os.remove(path)
    moved, merr = os.rename(tmp, path)
  end
  if not moved then os.remove(tmp) return nil, merr end
  return true
end

function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

return M
