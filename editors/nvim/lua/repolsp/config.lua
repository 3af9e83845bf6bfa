-- Options: defaults, validation, and the mapping of `settings` onto the server's configuration
-- (camelCase on the wire, the shape of initializationOptions and of didChangeConfiguration's
-- `repolsp` key). Pure: tested headless without a server.
local M = {}

--- Languages the server has grammars for (Neovim filetypes).
M.filetypes = {
  'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
  'go', 'rust', 'java', 'c', 'cpp',
}

M.defaults = {
  -- Server command as a list, e.g. { '/path/to/lsp-serve', '--engine', 'fake' }.
  -- nil: `python` below, then the project's .venv/venv/env, then `lsp-serve` on PATH.
  cmd = nil,
  -- An interpreter that has repolsp installed (its lsp-serve, or `python -m repolsp.server`).
  python = nil,
  -- Extra arguments appended to the resolved command.
  cmd_args = {},
  filetypes = M.filetypes,
  root_markers = { '.git', 'pyproject.toml', 'setup.py', 'package.json', 'go.mod', 'Cargo.toml', 'pom.xml' },
  -- Server settings; snake_case or the server's camelCase. nil = the server's default.
  settings = {},
  inline = {
    enabled = true,
    -- 'auto': vim.lsp.inline_completion on Neovim 0.12+, the ghost-text fallback before that.
    native = 'auto',
    accept_key = '<Tab>', -- accepts when a suggestion is shown, otherwise types a Tab as usual
    dismiss_key = '<C-]>',
    next_key = '<M-]>',
    prev_key = '<M-[>',
    debounce_ms = 120, -- the fallback's own wait after a keystroke (the server debounces too)
  },
  -- Echo training progress ($/progress) in the message area.
  progress = true,
}

--- setting name (either spelling) -> { wire path, kind, bounds or choices }
local SPECS = {
  model = { path = { 'model' }, kind = 'string' },
  engine = { path = { 'engine' }, kind = 'choice', choices = { 'ct2', 'fake', 'openai' } },
  -- engine 'openai': a team's OpenAI-compatible server (the server checks the values).
  endpoint = { path = { 'endpoint' }, kind = 'string' },
  remote_model = { path = { 'remoteModel' }, kind = 'string' },
  fim_template = { path = { 'fimTemplate' }, kind = 'string' },
  api_key_env = { path = { 'apiKeyEnv' }, kind = 'string' },
  fallback_to_local = { path = { 'fallbackToLocal' }, kind = 'boolean' },
  -- Prompts show lines from the git history; re-ranking of repository lines (off by default).
  history = { path = { 'history' }, kind = 'boolean' },
  history_max_commits = { path = { 'historyMaxCommits' }, kind = 'integer', min = 1, max = 100000 },
  rerank = { path = { 'rerank' }, kind = 'boolean' },
  -- Opt-in: lsp-train --incremental after this many idle seconds.
  train_when_idle = { path = { 'trainWhenIdle' }, kind = 'boolean' },
  idle_train_after_s = { path = { 'idleTrainAfterS' }, kind = 'integer', min = 30, max = 86400 },
  temperature = { path = { 'temperature' }, kind = 'number', min = 0, max = 2 },
  debounce_ms = { path = { 'debounceMs' }, kind = 'integer', min = 0, max = 10000 },
  context_budget_tokens = { path = { 'contextBudgetTokens' }, kind = 'integer', min = 64, max = 131072 },
  enabled_languages = { path = { 'enabledLanguages' }, kind = 'list' },
  log_level = { path = { 'logLevel' }, kind = 'choice', choices = { 'debug', 'info', 'warning', 'error' } },
  log_file = { path = { 'logFile' }, kind = 'path' },
  ['max_new_tokens.single_line'] = { path = { 'maxNewTokens', 'singleLine' }, kind = 'integer', min = 1, max = 4096 },
  ['max_new_tokens.multi_line'] = { path = { 'maxNewTokens', 'multiLine' }, kind = 'integer', min = 1, max = 4096 },
}

local CAMEL = {
  debounceMs = 'debounce_ms',
  contextBudgetTokens = 'context_budget_tokens',
  enabledLanguages = 'enabled_languages',
  logLevel = 'log_level',
  logFile = 'log_file',
  maxNewTokens = 'max_new_tokens',
  singleLine = 'single_line',
  multiLine = 'multi_line',
  remoteModel = 'remote_model',
  fimTemplate = 'fim_template',
  apiKeyEnv = 'api_key_env',
  fallbackToLocal = 'fallback_to_local',
  historyMaxCommits = 'history_max_commits',
  trainWhenIdle = 'train_when_idle',
  idleTrainAfterS = 'idle_train_after_s',
}

--- Flattens { max_new_tokens = { single_line = 1 } } to { ['max_new_tokens.single_line'] = 1 }.
local function flatten(tbl, prefix, out)
  for key, value in pairs(tbl) do
    local name = (prefix and (prefix .. '.') or '') .. (CAMEL[key] or key)
    if type(value) == 'table' and not vim.islist(value) and next(value) ~= nil then
      flatten(value, name, out)
    else
      out[name] = value
    end
  end
  return out
end

local function check(spec, value)
  local kind = spec.kind
  if kind == 'string' or kind == 'path' then
    if type(value) ~= 'string' then return nil, 'expected a string' end
    value = vim.trim(value)
    if value == '' then return vim.NIL end -- empty: server default
    return kind == 'path' and vim.fs.normalize(value) or value
  elseif kind == 'boolean' then
    if type(value) ~= 'boolean' then return nil, ('expected true or false, got %s'):format(vim.inspect(value)) end
    return value
  elseif kind == 'choice' then
    local v = type(value) == 'string' and value:lower() or nil
    if not v or not vim.tbl_contains(spec.choices, v) then
      return nil, ('expected one of %s, got %s'):format(table.concat(spec.choices, ', '), vim.inspect(value))
    end
    return v
  elseif kind == 'integer' or kind == 'number' then
    if type(value) ~= 'number' or (kind == 'integer' and value ~= math.floor(value)) then
      return nil, ('expected a %s, got %s'):format(kind == 'integer' and 'whole number' or 'number', vim.inspect(value))
    end
    if value < spec.min or value > spec.max then
      return nil, ('%s is outside %s..%s'):format(value, spec.min, spec.max)
    end
    return value
  elseif kind == 'list' then
    if type(value) ~= 'table' or not vim.islist(value) then return nil, 'expected a list of language ids' end
    local out = {}
    for _, v in ipairs(value) do
      if type(v) ~= 'string' then return nil, 'expected a list of language ids' end
      if vim.trim(v) ~= '' then table.insert(out, vim.trim(v)) end
    end
    return out
  end
end

--- Maps user `settings` to the server's camelCase configuration.
--- Bad or unknown entries are left out and named in `problems` (a typo never stops completion).
---@param settings table|nil
---@return table server_settings, string[] problems
function M.to_server_settings(settings)
  local out, problems = {}, {}
  local flat = flatten(settings or {}, nil, {})
  local names = vim.tbl_keys(flat)
  table.sort(names)
  for _, name in ipairs(names) do
    local spec = SPECS[name]
    if not spec then
      table.insert(problems, ('settings.%s: unknown setting, ignored'):format(name))
    else
      local value, why = check(spec, flat[name])
      if value == nil then
        table.insert(problems, ("settings.%s: %s; using the server's default"):format(name, why))
      elseif value ~= vim.NIL then
        local node = out
        for i = 1, #spec.path - 1 do
          node[spec.path[i]] = node[spec.path[i]] or {}
          node = node[spec.path[i]]
        end
        node[spec.path[#spec.path]] = value
      end
    end
  end
  return out, problems
end

--- The JSON-safe form: an empty table must go out as {} rather than [].
function M.as_object(tbl)
  return next(tbl) == nil and vim.empty_dict() or tbl
end

--- Merges user options over the defaults; returns options and problems (never errors).
---@return table opts, string[] problems
function M.resolve(user)
  local problems = {}
  if user ~= nil and type(user) ~= 'table' then
    table.insert(problems, 'setup() expects a table of options; using the defaults')
    user = {}
  end
  local opts = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user or {})
  -- Lists replace, never merge index-wise with the defaults.
  for _, key in ipairs({ 'filetypes', 'root_markers', 'cmd_args' }) do
    if user and user[key] ~= nil then opts[key] = user[key] end
  end
  if opts.cmd ~= nil and type(opts.cmd) == 'string' then opts.cmd = { opts.cmd } end
  if opts.cmd ~= nil and (type(opts.cmd) ~= 'table' or #opts.cmd == 0) then
    table.insert(problems, 'cmd must be a list like { "lsp-serve" }; searching for the server instead')
    opts.cmd = nil
  end
  local mapped, setting_problems = M.to_server_settings(opts.settings)
  vim.list_extend(problems, setting_problems)
  opts.server_settings = mapped
  return opts, problems
end

return M
