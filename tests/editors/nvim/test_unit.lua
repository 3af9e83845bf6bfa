-- Pure-function tests of the Neovim plugin (no server): nvim --headless --clean -l test_unit.lua
local H = dofile(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)) .. '/harness.lua')
local test, eq = H.test, H.eq

local config = require('repolsp.config')
local server = require('repolsp.server')
local inline = require('repolsp.inline')
local commands = require('repolsp.commands')
local compat = require('repolsp.compat')

-- to_server_settings: { id, settings, expected wire settings, problem patterns }
local mapping_cases = {
  { 'empty -> server defaults', {}, {}, {} },
  {
    'snake_case maps to camelCase',
    { model = ' gemma ', engine = 'FAKE', max_new_tokens = { single_line = 32, multi_line = 96 },
      temperature = 0.2, debounce_ms = 75, context_budget_tokens = 512,
      enabled_languages = { 'python', ' go ', '' }, log_level = 'Debug', log_file = '/tmp/r.log' },
    { model = 'gemma', engine = 'fake', maxNewTokens = { singleLine = 32, multiLine = 96 },
      temperature = 0.2, debounceMs = 75, contextBudgetTokens = 512,
      enabledLanguages = { 'python', 'go' }, logLevel = 'debug', logFile = '/tmp/r.log' },
    {},
  },
  { 'camelCase is accepted as is', { debounceMs = 10, maxNewTokens = { singleLine = 5 } },
    { debounceMs = 10, maxNewTokens = { singleLine = 5 } }, {} },
  { 'empty strings mean default', { model = '', log_file = '  ' }, {}, {} },
  { 'bad values are dropped and named', { debounce_ms = 'fast', temperature = 9, engine = 'gpt', max_new_tokens = { single_line = 1.5 } },
    {}, { 'debounce_ms', 'engine', 'max_new_tokens.single_line', 'temperature' } },
  { 'unknown keys are named', { modle = 'x' }, {}, { 'settings.modle: unknown' } },
  { 'a team server (engine openai)',
    { engine = 'openai', endpoint = ' http://gpu-box:8000/v1 ', remoteModel = 'Qwen/Qwen2.5-Coder-7B',
      fim_template = 'qwen2.5-coder', api_key_env = 'TEAM_KEY', fallback_to_local = true },
    { engine = 'openai', endpoint = 'http://gpu-box:8000/v1', remoteModel = 'Qwen/Qwen2.5-Coder-7B',
      fimTemplate = 'qwen2.5-coder', apiKeyEnv = 'TEAM_KEY', fallbackToLocal = true },
    {} },
  { 'fallback_to_local must be a boolean', { fallback_to_local = 'yes' }, {}, { 'fallback_to_local: expected true or false' } },
  { 'tilde in log path expands', { log_file = '~/r.log' }, { logFile = vim.fs.normalize('~/r.log') }, {} },
}
for _, c in ipairs(mapping_cases) do
  test('to_server_settings: ' .. c[1], function()
    local got, problems = config.to_server_settings(c[2])
    eq(c[3], got)
    eq(#c[4], #problems, 'problem count ' .. vim.inspect(problems))
    for i, pattern in ipairs(c[4]) do H.match(pattern, problems[i], 'problem') end
  end)
end

test('resolve: lists replace defaults; bad cmd falls back to search', function()
  local opts, problems = config.resolve({ filetypes = { 'python' }, cmd = {} })
  eq({ 'python' }, opts.filetypes)
  eq(nil, opts.cmd)
  H.match('cmd must be a list', problems[1])
  local defaults = config.resolve(nil)
  eq(true, defaults.inline.enabled)
  eq('<Tab>', defaults.inline.accept_key)
  eq(vim.empty_dict(), config.as_object(defaults.server_settings))
  eq('{}', vim.json.encode(config.as_object({})))
end)

local function fake_env(files, path_bins, extra)
  local set = {}
  for _, f in ipairs(files) do set[f] = true end
  return vim.tbl_extend('force', {
    root = '/ws',
    is_windows = false,
    is_file = function(p) return set[p] == true end,
    executable = function(name) return path_bins[name] end,
  }, extra or {})
end

-- server.resolve: { id, opts, files, PATH executables, expected cmd or error pattern }
local resolve_cases = {
  { 'explicit cmd with args wins', { cmd = { '/opt/lsp-serve', '--engine', 'fake' }, python = '/py/bin/python' },
    { '/opt/lsp-serve', '/ws/.venv/bin/lsp-serve' }, {}, { '/opt/lsp-serve', '--engine', 'fake' } },
  { 'explicit bare name found on PATH', { cmd = { 'lsp-serve' } }, {}, { ['lsp-serve'] = '/usr/bin/lsp-serve' }, { 'lsp-serve' } },
  { 'explicit cmd that does not exist is an error', { cmd = { '/nope' } }, {}, {}, 'cmd%[1%] = "/nope"' },
  { 'python with lsp-serve beside it', { python = '/py/bin/python' }, { '/py/bin/python', '/py/bin/lsp-serve' }, {}, { '/py/bin/lsp-serve' } },
  { 'python without the script runs the module', { python = '/py/bin/python3', cmd_args = { '--log-level', 'debug' } },
    { '/py/bin/python3' }, {}, { '/py/bin/python3', '-m', 'repolsp.server', '--log-level', 'debug' } },
  { 'missing python is an error', { python = '/gone/python' }, {}, {}, 'python = "/gone/python"' },
  { 'project .venv', {}, { '/ws/.venv/bin/lsp-serve' }, { ['lsp-serve'] = '/usr/bin/lsp-serve' }, { '/ws/.venv/bin/lsp-serve' } },
  { 'project venv/', {}, { '/ws/venv/bin/lsp-serve' }, {}, { '/ws/venv/bin/lsp-serve' } },
  { 'PATH last', {}, {}, { ['lsp-serve'] = '/usr/bin/lsp-serve' }, { '/usr/bin/lsp-serve' } },
  { 'nothing found explains how to install', {}, {}, {}, 'not found.*pip install repolsp' },
}
for _, c in ipairs(resolve_cases) do
  test('server.resolve: ' .. c[1], function()
    local cmd, err, tried = server.resolve(c[2], fake_env(c[3], c[4]))
    if type(c[5]) == 'string' then
      eq(nil, cmd)
      H.match(c[5], err)
    else
      eq(nil, err)
      eq(c[5], cmd)
    end
    eq('table', type(tried))
  end)
end

test('server.resolve: Windows venv layout', function()
  local cmd = server.resolve({}, fake_env({ 'C:/ws/.venv/Scripts/lsp-serve.exe' }, {}, { root = 'C:/ws', is_windows = true }))
  eq({ 'C:/ws/.venv/Scripts/lsp-serve.exe' }, cmd)
end)

test('server.resolve: failure lists where it looked', function()
  local _, _, tried = server.resolve({}, fake_env({}, {}))
  eq('/ws/.venv/bin/lsp-serve', tried[1])
  eq('lsp-serve on PATH', tried[#tried])
end)

-- ghost_lines: { id, item text, typed since range start, expected lines or nil }
local ghost_cases = {
  { 'plain continuation', 'return a + b', '', { 'return a + b' } },
  { 'multi-line', 'if x:\n    pass', '', { 'if x:', '    pass' } },
  { 'range repeats typed text', 'return a + b', 'ret', { 'urn a + b' } },
  { 'stale item does not match typed text', 'return a', 'yield', nil },
  { 'nothing left to show', 'abc', 'abc', nil },
}
for _, c in ipairs(ghost_cases) do
  test('ghost_lines: ' .. c[1], function() eq(c[4], inline.ghost_lines(c[2], c[3])) end)
end

test('item_text handles snippets and strings', function()
  eq('x', inline.item_text({ insertText = 'x' }))
  eq('y', inline.item_text({ insertText = { kind = 'snippet', value = 'y' } }))
  eq('', inline.item_text({}))
end)

test('use_native follows the option and the Neovim version', function()
  eq(compat.has_native_inline, inline.use_native({ inline = { native = 'auto' } }))
  eq(false, inline.use_native({ inline = { native = false } }))
  H.match('fallback', inline.describe({ inline = { enabled = true, native = false } }))
  eq('disabled', inline.describe({ inline = { enabled = false } }))
end)

test('Tab falls back to its previous mapping when no suggestion is shown', function()
  local opts = config.resolve({ inline = { native = false } })
  vim.keymap.set('i', '<Tab>', function() return 'PREV' end, { expr = true })
  local with_previous = vim.api.nvim_create_buf(false, true)
  inline.set_keymaps(with_previous, opts)
  local accept = vim.api.nvim_buf_call(with_previous, function() return vim.fn.maparg('<Tab>', 'i', false, true) end)
  eq(1, accept.buffer)
  eq('PREV', accept.callback())
  vim.keymap.del('i', '<Tab>')
  local plain = vim.api.nvim_create_buf(false, true)
  inline.set_keymaps(plain, opts)
  local plain_accept = vim.api.nvim_buf_call(plain, function() return vim.fn.maparg('<Tab>', 'i', false, true) end)
  eq(vim.keycode('<Tab>'), plain_accept.callback())
  -- Mapping twice must not make the plugin its own fallback.
  inline.set_keymaps(plain, opts)
  plain_accept = vim.api.nvim_buf_call(plain, function() return vim.fn.maparg('<Tab>', 'i', false, true) end)
  eq(vim.keycode('<Tab>'), plain_accept.callback())
end)

test('byte_col converts UTF-16 positions', function()
  local line = 'é😀x' -- é: 2 bytes/1 unit, 😀: 4 bytes/2 units
  eq(0, compat.byte_col(line, 0, 'utf-16'))
  eq(2, compat.byte_col(line, 1, 'utf-16'))
  eq(6, compat.byte_col(line, 3, 'utf-16'))
  eq(6, compat.byte_col(line, 2, 'utf-32'))
  eq(3, compat.byte_col(line, 3, 'utf-8'))
end)

-- format_status: { id, status, expected lines (patterns) }
local status_cases = {
  { 'ready with latency', { model = 'gemma', engine = 'ct2', state = 'ready', latencyMs = { p50 = 84.4, p95 = 1234, count = 17 }, cacheHitRate = 0.625 },
    { '^repolsp: ready$', '^model: gemma$', '^engine: ct2$', 'p50 84 ms, p95 1.2 s over 17 completions', 'hit rate: 63%%' } },
  { 'no completions yet', { model = 'm', engine = 'fake', state = 'loading' }, { 'loading', 'model: m', 'engine: fake', 'no completions yet' } },
  { 'error detail', { model = 'm', engine = 'ct2', state = 'error', error = "model 'm' is not installed" },
    { 'error', 'model: m', 'engine: ct2', 'no completions yet', 'not installed' } },
  { 'malformed', { state = 3 }, { 'no status' } },
}
for _, c in ipairs(status_cases) do
  test('format_status: ' .. c[1], function()
    local lines = commands.format_status(c[2])
    eq(#c[3], #lines, vim.inspect(lines))
    for i, pattern in ipairs(c[3]) do H.match(pattern, lines[i]) end
  end)
end

test('train_arguments: none for the server root, a URI otherwise', function()
  eq({}, commands.train_arguments(nil, '/ws'))
  eq({}, commands.train_arguments('', '/ws'))
  eq({}, commands.train_arguments('/ws/', '/ws'))
  eq({ 'file:///other' }, commands.train_arguments('/other', '/ws'))
end)

test('statusline', function()
  commands.last_status = nil
  eq('', commands.statusline())
  commands.last_status = { model = '/m/smollm2/', state = 'ready', latencyMs = { p50 = 40, count = 2 } }
  eq('repolsp smollm2 ready 40 ms', commands.statusline())
  commands.last_status = { model = 'g', state = 'training' }
  eq('repolsp g training', commands.statusline())
end)

test('setup without a server warns, defines commands, never errors', function()
  local messages = {}
  local notify = vim.notify
  vim.notify = function(msg) table.insert(messages, msg) end
  local ok = require('repolsp').setup({ cmd = { '/definitely/not/lsp-serve' }, settings = { bogus = 1 } })
  vim.notify = notify
  eq(false, ok)
  H.match('unknown setting', messages[1])
  H.match('not an executable', messages[2])
  eq(2, vim.fn.exists(':RepolspDocstring'))
  for _, name in ipairs({ 'RepolspTests', 'RepolspTrain', 'RepolspTrainCancel', 'RepolspStatus', 'RepolspModel' }) do
    eq(2, vim.fn.exists(':' .. name), name)
  end
end)

H.run()
