-- Random files among the corpus's many/ tree, for the `many` scenario.
--
--   wrk -t1 -c100 -d10s -s perf/wrk/many.lua URL -- [FILES] [SEED]
--
-- perf/compare writes FILES (default 10000) files named
-- /many/dDD/fNNNNN.html, 100 to a directory. The sequence of paths is fixed
-- by SEED (default 1): every run with one wrk thread asks for the same files
-- in the same order, whichever server answers.

require "report"  -- done(): the summary line perf/compare reads

local requests = {}
local files = 0

function init(args)
  files = tonumber(args[1]) or 10000
  local seed = tonumber(args[2]) or 1
  for i = 0, files - 1 do
    local path = string.format("/many/d%02d/f%05d.html", math.floor(i / 100), i)
    requests[i + 1] = wrk.format("GET", path)
  end
  math.randomseed(seed)
end

function request()
  return requests[math.random(files)]
end
