-- The plugin against the real `lsp-serve` (fake engine), headless:
--   REPOLSP_TEST_CMD='["python","-m","repolsp.server","--engine","fake"]'
--   REPOLSP_TEST_INLINE=native|fallback|legacy  REPOLSP_TEST_WORKDIR=<project dir>  REPOLSP_TEST_OUT=<dir>
--   nvim --headless --clean -l test_live.lua
-- `:startinsert` does not take effect inside a -l script, so the tests fire InsertEnter
-- themselves (with 'virtualedit' letting the cursor sit after the last character, as in insert
-- mode) and poll.
local H = dofile(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)) .. '/harness.lua')
local test, eq = H.test, H.eq

local cmd = vim.json.decode((assert(os.getenv('REPOLSP_TEST_CMD'), 'REPOLSP_TEST_CMD is not set')))
local mode = os.getenv('REPOLSP_TEST_INLINE') or 'native'
local workdir = assert(os.getenv('REPOLSP_TEST_WORKDIR'), 'REPOLSP_TEST_WORKDIR is not set')
local out_dir = os.getenv('REPOLSP_TEST_OUT') or workdir

local repolsp = require('repolsp')
local compat = require('repolsp.compat')
local inline = require('repolsp.inline')

local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
end

vim.cmd.cd(workdir)
vim.o.virtualedit = 'onemore'

local ATTACH_MS, SUGGEST_MS = 20000, 15000

local function example_buffer()
  local path = vim.fs.normalize(workdir .. '/example.py')
  local buf = vim.fn.bufnr(path)
  if buf > 0 then
    vim.api.nvim_set_current_buf(buf)
  else
    vim.cmd.edit(path)
  end
  return vim.api.nvim_get_current_buf()
end

local function client_for(buf)
  return H.wait_for(function() return compat.get_client(buf) end, ATTACH_MS, 'the repolsp client to attach')
end

local function status_of(client)
  local response = compat.request_sync(client, 'workspace/executeCommand', { command = 'repolsp.status', arguments = {} }, 5000)
  return response and response.result
end

local function ghost_text(buf)
  local ns = mode == 'native' and vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion'] or inline.ns
  if not ns then return nil end
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })) do
    local details = mark[4]
    local parts = {}
    for _, chunk in ipairs(details.virt_text or {}) do table.insert(parts, chunk[1]) end
    for _, line in ipairs(details.virt_lines or {}) do
      for _, chunk in ipairs(line) do table.insert(parts, chunk[1]) end
    end
    local text = table.concat(parts, '\n')
    if text ~= '' then return text end
  end
end

test('setup finds the server and the plugin attaches to lsp-serve', function()
  -- 'legacy' exercises the Neovim 0.10 path (vim.lsp.start per buffer) on this binary by hiding
  -- vim.lsp.config/enable from setup().
  local saved_config, saved_enable = vim.lsp.config, vim.lsp.enable
  if mode == 'legacy' then vim.lsp.config, vim.lsp.enable = nil, nil end
  local ok, started = pcall(repolsp.setup, {
    cmd = cmd,
    settings = { engine = 'fake', debounce_ms = 0 },
    inline = { native = mode == 'native' },
  })
  vim.lsp.config, vim.lsp.enable = saved_config, saved_enable
  eq(true, ok and started, 'setup() ' .. tostring(started) .. vim.inspect(notes))
  local buf = example_buffer()
  local client = client_for(buf)
  H.ok(client.server_capabilities.inlineCompletionProvider, 'server advertises inline completion')
  eq(mode == 'native' and 'native vim.lsp.inline_completion' or 'ghost-text fallback (extmarks)', inline.describe(repolsp.opts))
  if mode == 'legacy' then eq(nil, (vim.lsp._enabled_configs or {}).repolsp, 'not enabled through vim.lsp.enable') end
  if mode ~= 'legacy' and vim.lsp._enabled_configs then H.ok(vim.lsp._enabled_configs.repolsp, 'enabled through vim.lsp.enable') end
end)

test('an inline suggestion appears in insert mode and Tab accepts it', function()
  local buf = example_buffer()
  client_for(buf)
  -- Cursor at the end of the indented empty body line, as after typing the indentation.
  vim.api.nvim_win_set_cursor(0, { 2, 4 })
  local accept = vim.fn.maparg('<Tab>', 'i', false, true)
  H.ok(accept.callback, 'a buffer-local insert-mode <Tab> mapping')
  local shown = H.wait_for(function()
    -- Re-fire now and then: the first request may race the server finishing its startup.
    vim.api.nvim_exec_autocmds('InsertEnter', { buffer = buf, modeline = false })
    vim.wait(3000, function() return ghost_text(buf) ~= nil end, 20)
    return ghost_text(buf)
  end, SUGGEST_MS, 'ghost text')
  H.match('return', shown, 'ghost text')
  eq('', accept.callback(), '<Tab> accepts instead of inserting a tab')
  local line = H.wait_for(function()
    local l = vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1]
    return l:find('return') and l
  end, 3000, 'the suggestion in the buffer')
  H.match('^    return', line)
  eq(nil, ghost_text(buf), 'ghost text cleared after accepting')
  -- With nothing shown, <Tab> is an ordinary Tab.
  eq(vim.keycode('<Tab>'), accept.callback())
  vim.api.nvim_exec_autocmds('InsertLeave', { buffer = buf, modeline = false })
  vim.cmd('silent! undo')
end)

test(':RepolspStatus reports the served model', function()
  notes = {}
  vim.cmd('RepolspStatus')
  local note = H.wait_for(function()
    for _, n in ipairs(notes) do if n.msg:find('^repolsp: ') then return n.msg end end
  end, 5000, 'a status message')
  H.match('repolsp: ready', note)
  H.match('engine: fake', note)
  H.match('repolsp %S+ ready', repolsp.statusline())
end)

test(':RepolspReport opens the training report in a split and names its chart', function()
  local expected = os.getenv('REPOLSP_TEST_REPORT')
  if not expected then H.skip('REPOLSP_TEST_REPORT is not set') end
  example_buffer()
  notes = {}
  local windows = #vim.api.nvim_tabpage_list_wins(0)
  vim.cmd('RepolspReport')
  local buf = H.wait_for(function()
    local b = vim.fn.bufnr(expected)
    return b > 0 and vim.api.nvim_get_current_buf() == b and b
  end, 5000, 'the report in the current window')
  eq(windows + 1, #vim.api.nvim_tabpage_list_wins(0), 'a split')
  H.match('^# lsp%-train', vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1])
  local note = H.wait_for(function()
    for _, n in ipairs(notes) do if n.msg:find('training report') then return n.msg end end
  end, 5000, 'a message naming the chart')
  H.match('chart: [^\n]*report%.png', note)
  vim.cmd('close')
end)

test('configure() reaches the running server without a restart', function()
  local client = client_for(example_buffer())
  local id = client.id
  eq(true, repolsp.configure({ debounce_ms = 30, max_new_tokens = { single_line = 20 } }))
  local config = H.wait_for(function()
    local s = status_of(client)
    return s and s.config and s.config.debounceMs == 30 and s.config
  end, 5000, 'debounceMs = 30 on the server')
  eq(20, config.maxNewTokens.singleLine)
  eq(id, compat.get_client(0).id, 'same client')
end)

test('the docstring code action changes the buffer to a file that parses', function()
  local buf = example_buffer()
  local client = client_for(buf)
  if not client.server_capabilities.codeActionProvider then
    H.skip('the server does not offer code actions yet')
  end
  vim.api.nvim_win_set_cursor(0, { 1, 4 })
  local before = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local titles = {}
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      table.insert(titles, action.title)
      return action.title:lower():find('docstring') ~= nil
    end,
  })
  local after = H.wait_for(function()
    local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    return not vim.deep_equal(lines, before) and lines
  end, SUGGEST_MS, 'the docstring edit (actions seen: ' .. table.concat(titles, ', ') .. ')')
  H.ok(#after > #before, 'lines were added')
  vim.fn.writefile(after, out_dir .. '/docstring_result.py')
end)

test(':RepolspDocstring and :RepolspTests apply the server\'s edits', function()
  local buf = example_buffer()
  local client = client_for(buf)
  if not vim.tbl_contains((client.server_capabilities.executeCommandProvider or {}).commands or {}, 'repolsp.generateDocstring') then
    H.skip('the server does not offer repolsp.generateDocstring yet')
  end
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.fn.readfile(workdir .. '/example.py'))
  vim.api.nvim_win_set_cursor(0, { 1, 4 })
  local before = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  vim.cmd('RepolspDocstring')
  local after = H.wait_for(function()
    local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    return not vim.deep_equal(lines, before) and lines
  end, SUGGEST_MS, 'the docstring from :RepolspDocstring')
  H.match('"""', table.concat(after, '\n'))
  -- Tests for scale(): a new test file (or an edit of an existing one), opened in a buffer.
  local scale_row
  for i, line in ipairs(after) do if line:find('^def scale') then scale_row = i end end
  vim.api.nvim_win_set_cursor(0, { H.ok(scale_row, 'scale() in the buffer'), 4 })
  vim.cmd('RepolspTests')
  local test_text = H.wait_for(function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_get_name(b):find('test_[^/]*%.py$') then
        local text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
        if text:find('def test_') then return text end
      end
    end
  end, SUGGEST_MS, 'a test file with a test function')
  H.match('scale', test_text)
  vim.fn.writefile(vim.split(test_text, '\n'), out_dir .. '/tests_result.py')
end)

test(':checkhealth repolsp reports OK', function()
  vim.cmd('checkhealth repolsp')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  local text = table.concat(lines, '\n')
  vim.fn.writefile(lines, out_dir .. '/checkhealth.txt')
  H.match('OK[^\n]*server command', text)
  H.match('OK[^\n]*model [^\n]*engine fake[^\n]*ready', text)
  H.match('OK[^\n]*inline completion: ', text)
  H.ok(not text:find('ERROR'), 'no ERROR in :checkhealth')
  H.ok(not text:find('WARNING'), 'no WARNING in :checkhealth')
  vim.cmd('tabclose')
end)

H.teardown = function()
  for _, client in ipairs(vim.lsp.get_clients()) do
    if compat.has_011 then client:stop() else client.stop() end
  end
  vim.wait(5000, function() return #vim.lsp.get_clients() == 0 end, 50)
end

H.run()
