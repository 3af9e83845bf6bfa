-- :checkhealth repolsp: the Neovim features in use, the server command, the running server and
-- its model.
local compat = require('repolsp.compat')

local M = {}

function M.check()
  local health = vim.health
  local repolsp = require('repolsp')
  local inline = require('repolsp.inline')
  local opts = repolsp.opts or require('repolsp.config').resolve({})

  health.start('repolsp: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.error('Neovim ' .. version .. ' is too old', { 'repolsp needs Neovim 0.10 or newer' })
  end
  health.ok('client setup: ' .. ((vim.lsp.config and vim.lsp.enable) and 'vim.lsp.config + vim.lsp.enable' or 'vim.lsp.start'))
  health.ok('inline completion: ' .. inline.describe(opts))

  health.start('repolsp: server')
  if not repolsp.opts then
    health.warn('setup() has not been called', { "add require('repolsp').setup() to your config" })
  end
  for _, problem in ipairs(repolsp.problems or {}) do health.warn(problem) end
  if repolsp.cmd then
    health.ok('server command: ' .. table.concat(repolsp.cmd, ' '))
  elseif repolsp.opts then
    health.error(repolsp.cmd_error or 'no server command', vim.list_extend(
      { 'looked in: ' .. table.concat(repolsp.cmd_tried or {}, ', ') },
      { 'install: pip install repolsp (see :help repolsp-install)' }))
  end

  local client = compat.get_client(nil)
  if not client then
    health.info('no repolsp client is running; open a file of a supported filetype to start one')
    return
  end
  health.ok(('client %d running, root %s'):format(client.id, client.root_dir or '(none)'))
  local caps = client.server_capabilities or {}
  if caps.inlineCompletionProvider then
    health.ok('server offers textDocument/inlineCompletion')
  else
    health.warn('server does not advertise inline completion')
  end

  health.start('repolsp: model')
  local response = compat.request_sync(client, 'workspace/executeCommand',
    { command = 'repolsp.status', arguments = {} }, 5000)
  local status = response and response.result
  if not status or type(status) ~= 'table' then
    local why = response and response.err and response.err.message or 'no answer within 5 s'
    health.warn('repolsp.status: ' .. why)
    return
  end
  require('repolsp.commands').last_status = status
  local line = ('model %s (engine %s): %s'):format(tostring(status.model), tostring(status.engine), tostring(status.state))
  if status.state == 'error' then
    health.error(line, { tostring(status.error or status.message or 'see the server log'), 'try :RepolspModel {name}' })
  elseif status.state == 'loading' or status.state == 'training' then
    health.info(line)
  else
    health.ok(line)
  end
end

return M
