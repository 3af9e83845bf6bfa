-- Which `lsp-serve` to start. Pure (file checks injected), tested headless.
local M = {}

local VENV_DIRS = { '.venv', 'venv', 'env' }

local function join(...)
  return table.concat({ ... }, '/')
end

--- The real environment for resolve(): project root, files, PATH.
function M.env(root)
  local is_windows = vim.fn.has('win32') == 1
  return {
    root = root,
    is_windows = is_windows,
    is_file = function(path)
      local stat = vim.uv.fs_stat(path)
      return stat ~= nil and stat.type == 'file'
    end,
    executable = function(name)
      local path = vim.fn.exepath(name)
      return path ~= '' and path or nil
    end,
  }
end

local function serve_next_to(interpreter, env)
  local dir = vim.fs.dirname(interpreter)
  for _, name in ipairs(env.is_windows and { 'lsp-serve.exe', 'lsp-serve' } or { 'lsp-serve' }) do
    local candidate = join(dir, name)
    if env.is_file(candidate) then return candidate end
  end
end

--- Resolves the server command, first match wins: `cmd`, `python`, the project's virtualenv
--- (.venv, venv, env), `lsp-serve` on PATH. A setting that points nowhere is an error, not a
--- silent fall-through, so the user learns the setting is wrong.
---@return string[]|nil cmd, string|nil error, string[] tried
function M.resolve(opts, env)
  local extra = opts.cmd_args or {}
  local tried = {}
  local function with_extra(cmd)
    return vim.list_extend(vim.deepcopy(cmd), extra)
  end

  if opts.cmd then
    local program = opts.cmd[1]
    local found = env.is_file(program) and program or env.executable(program)
    if not found then
      return nil, ('repolsp: cmd[1] = %q is not an executable'):format(program), { program }
    end
    return with_extra(opts.cmd), nil, tried
  end

  if opts.python then
    local interpreter = env.is_file(opts.python) and opts.python or env.executable(opts.python)
    if not interpreter then
      return nil, ('repolsp: python = %q is not an interpreter'):format(opts.python), { opts.python }
    end
    local serve = serve_next_to(interpreter, env)
    if serve then return with_extra({ serve }), nil, tried end
    return with_extra({ interpreter, '-m', 'repolsp.server' }), nil, tried
  end

  if env.root then
    for _, venv in ipairs(VENV_DIRS) do
      local candidate = env.is_windows and join(env.root, venv, 'Scripts', 'lsp-serve.exe')
        or join(env.root, venv, 'bin', 'lsp-serve')
      table.insert(tried, candidate)
      if env.is_file(candidate) then return with_extra({ candidate }), nil, tried end
    end
  end

  table.insert(tried, 'lsp-serve on PATH')
  local on_path = env.executable('lsp-serve')
  if on_path then return with_extra({ on_path }), nil, tried end

  return nil,
    'repolsp: the language server `lsp-serve` was not found. Install it with `pip install repolsp` '
      .. "into the project's .venv or onto PATH, or pass `cmd`/`python` to setup(). "
      .. 'See :help repolsp-install',
    tried
end

return M
