-- repolsp for Neovim: require('repolsp').setup({ ... })
-- Starts `lsp-serve` for the supported filetypes (vim.lsp.config + vim.lsp.enable on 0.11+,
-- vim.lsp.start on 0.10), turns on inline completion and adds the :Repolsp* commands.
local commands = require('repolsp.commands')
local compat = require('repolsp.compat')
local config = require('repolsp.config')
local inline = require('repolsp.inline')
local server = require('repolsp.server')

local M = {}

--- Resolved options (nil until setup) and what setup found.
M.opts = nil
M.problems = {}
M.cmd, M.cmd_error, M.cmd_tried = nil, nil, {}

M.statusline = commands.statusline

local function warn(msg)
  vim.notify(msg, vim.log.levels.WARN, { title = 'repolsp' })
end

--- Client capabilities, plus inlineCompletion for Neovim versions that do not declare it.
function M.capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  return caps
end

--- The client configuration shared by vim.lsp.config and vim.lsp.start.
function M.client_config(opts, cmd)
  return {
    name = 'repolsp',
    cmd = cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = config.as_object(vim.deepcopy(opts.server_settings)),
    -- Answers workspace/configuration and is sent as didChangeConfiguration after initialize.
    settings = { repolsp = config.as_object(vim.deepcopy(opts.server_settings)) },
    capabilities = M.capabilities(),
  }
end

local function start_legacy(opts, cfg)
  -- Neovim 0.10: one vim.lsp.start per buffer; it reuses the client for the same root.
  local function start(bufnr)
    local root = vim.fs.root(bufnr, opts.root_markers) or vim.fn.getcwd()
    vim.lsp.start(vim.tbl_extend('force', cfg, { root_dir = root }), { bufnr = bufnr })
  end
  vim.api.nvim_create_autocmd('FileType', {
    group = vim.api.nvim_create_augroup('repolsp.start', { clear = true }),
    pattern = opts.filetypes,
    callback = function(ev) start(ev.buf) end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(opts.filetypes, vim.bo[bufnr].filetype) then
      start(bufnr)
    end
  end
end

--- Sets up the plugin. Returns true when the server command was found.
function M.setup(user_opts)
  local opts, problems = config.resolve(user_opts)
  M.opts, M.problems = opts, problems
  for _, problem in ipairs(problems) do warn('repolsp: ' .. problem) end
  commands.register(opts)

  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('repolsp.attach', { clear = true }),
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == 'repolsp' then inline.attach(ev.buf, client, opts) end
    end,
  })

  local root = vim.fs.root(0, opts.root_markers) or vim.fn.getcwd()
  local cmd, err, tried = server.resolve(opts, server.env(root))
  M.cmd, M.cmd_error, M.cmd_tried = cmd, err, tried
  if not cmd then
    warn(err)
    return false
  end

  local cfg = M.client_config(opts, cmd)
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config('repolsp', cfg)
    vim.lsp.enable('repolsp')
  else
    start_legacy(opts, cfg)
  end
  return true
end

--- Changes server settings at run time (no restart): require('repolsp').configure({ model = 'x' }).
function M.configure(settings)
  if not M.opts then return false end
  M.opts.settings = vim.tbl_deep_extend('force', M.opts.settings or {}, settings or {})
  local mapped, problems = config.to_server_settings(M.opts.settings)
  for _, problem in ipairs(problems) do warn('repolsp: ' .. problem) end
  M.opts.server_settings = mapped
  for _, client in ipairs(vim.lsp.get_clients({ name = 'repolsp' })) do
    client.settings = { repolsp = config.as_object(vim.deepcopy(mapped)) }
    compat.notify(client, 'workspace/didChangeConfiguration', { settings = client.settings })
  end
  return true
end

return M
