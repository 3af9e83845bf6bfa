-- A tiny test harness for `nvim --headless -l`: test(), eq(), wait_for(), run() exits 0/1.
-- Result lines start on a fresh line: Neovim itself prints messages without a newline.
local H = { cases = {} }

-- Absolute: the live tests change directory.
local root = vim.fs.normalize(vim.fn.fnamemodify(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)) .. '/../../..', ':p'))
H.repo_root = root
vim.opt.runtimepath:prepend(root .. '/editors/nvim')
vim.opt.swapfile = false

function H.test(name, fn)
  table.insert(H.cases, { name = name, fn = fn })
end

function H.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(('%sexpected %s, got %s'):format(what and (what .. ': ') or '', vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.ok(value, what)
  if not value then error('not true: ' .. (what or '?'), 2) end
  return value
end

function H.match(pattern, text, what)
  if type(text) ~= 'string' or not text:find(pattern) then
    error(('%s%q does not match %q'):format(what and (what .. ': ') or '', tostring(text), pattern), 2)
  end
end

--- Polls `cond` (processing events) until it returns a truthy value or `timeout_ms` passes.
function H.wait_for(cond, timeout_ms, what)
  local value
  local ok = vim.wait(timeout_ms or 10000, function()
    value = cond()
    return value and true or false
  end, 20)
  if not ok then error('timed out waiting for ' .. (what or 'a condition'), 2) end
  return value
end

--- Marks the running test as skipped (with a reason shown by the pytest wrapper).
function H.skip(reason)
  error({ skip = reason }, 2)
end

--- Called once after all tests (stop servers here so none outlives the run).
H.teardown = nil

function H.run()
  local failed = 0
  local only = os.getenv('REPOLSP_TEST_ONLY')
  for _, case in ipairs(H.cases) do
    if not only or case.name:find(only, 1, true) then
      local started = vim.uv.hrtime()
      local ok, err = xpcall(case.fn, function(e)
        return type(e) == 'table' and e or debug.traceback(e, 2)
      end)
      local ms = (vim.uv.hrtime() - started) / 1e6
      if ok then
        io.stdout:write(('\nok - %s (%.0f ms)\n'):format(case.name, ms))
      elseif type(err) == 'table' and err.skip then
        io.stdout:write(('\nskip - %s: %s\n'):format(case.name, err.skip))
      else
        failed = failed + 1
        io.stdout:write(('\nnot ok - %s\n%s\n'):format(case.name, err))
      end
    end
  end
  if H.teardown then pcall(H.teardown) end
  io.stdout:write(('%d tests, %d failed\n'):format(#H.cases, failed))
  io.stdout:flush()
  os.exit(failed == 0 and 0 or 1)
end

return H
