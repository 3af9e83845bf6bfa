-- User commands (:RepolspDocstring, :RepolspTests, :RepolspTrain, :RepolspStatus, :RepolspModel,
-- :RepolspReport) and training progress. Each command is one workspace/executeCommand request.
local compat = require('repolsp.compat')

local M = {}

--- Active $/progress tokens of the repolsp server (for :RepolspTrainCancel).
M.progress_tokens = {}
--- The last status the server reported (for statusline()).
M.last_status = nil

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = 'repolsp' })
end

local function client_or_warn(bufnr)
  local client = compat.get_client(bufnr) or compat.get_client(nil)
  if not client then
    notify('repolsp: the language server is not running here. See :checkhealth repolsp', vim.log.levels.WARN)
  end
  return client
end

--- Runs a server command; `on_result(result)` on success, a message on error.
function M.execute(command, arguments, on_result, bufnr)
  local client = client_or_warn(bufnr)
  if not client then return false end
  compat.request(client, 'workspace/executeCommand', { command = command, arguments = arguments },
    function(err, result)
      if err then
        notify(('repolsp: %s failed: %s'):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
        return
      end
      if on_result then on_result(result, client) end
    end, bufnr)
  return true
end

--- Milliseconds as "84 ms" / "1.2 s".
function M.format_ms(ms)
  if type(ms) ~= 'number' then return '–' end
  if ms < 1000 then return ('%d ms'):format(math.floor(ms + 0.5)) end
  return ('%.1f s'):format(ms / 1000)
end

--- The `repolsp.status` result as report lines; { 'repolsp: no status' } when it is malformed.
function M.format_status(status)
  if type(status) ~= 'table' or type(status.state) ~= 'string' then return { 'repolsp: no status' } end
  local lines = {
    'repolsp: ' .. status.state,
    'model: ' .. (status.model ~= nil and status.model ~= '' and tostring(status.model) or '(none)'),
    'engine: ' .. tostring(status.engine or '(unknown)'),
  }
  local latency = type(status.latencyMs) == 'table' and status.latencyMs or {}
  local count = type(latency.count) == 'number' and latency.count or 0
  if count > 0 then
    table.insert(lines, ('latency: p50 %s, p95 %s over %d completion%s'):format(
      M.format_ms(latency.p50), M.format_ms(latency.p95), count, count == 1 and '' or 's'))
  else
    table.insert(lines, 'latency: no completions yet')
  end
  if type(status.cacheHitRate) == 'number' then
    table.insert(lines, ('prompt cache hit rate: %d%%'):format(math.floor(status.cacheHitRate * 100 + 0.5)))
  end
  -- The server reports a failure in `error`; `message` is free text.
  local served = type(status.servedModel) == 'table' and status.servedModel or {}
  if type(served.summary) == 'string' and served.summary ~= '' then
    table.insert(lines, 'measured gain: ' .. served.summary)
  end
  local detail = type(status.error) == 'string' and status.error ~= '' and status.error or status.message
  if type(detail) == 'string' and detail ~= '' then table.insert(lines, detail) end
  return lines
end

--- A short statusline string from the last known status: "repolsp gemma ready 84 ms".
function M.statusline()
  local s = M.last_status
  if type(s) ~= 'table' or type(s.state) ~= 'string' then return '' end
  local model = tostring(s.model or ''):gsub('[/\\]+$', ''):match('([^/\\]*)$')
  local text = ('repolsp %s %s'):format(model ~= '' and model or '?', s.state)
  local latency = type(s.latencyMs) == 'table' and s.latencyMs or {}
  if s.state == 'ready' and type(latency.count) == 'number' and latency.count > 0 then
    text = text .. ' ' .. M.format_ms(latency.p50)
  end
  return text
end

local function cursor_args(bufnr)
  local client = compat.get_client(bufnr)
  local params = vim.lsp.util.make_position_params(0, client and client.offset_encoding or 'utf-16')
  return { params.textDocument.uri, params.position }
end

local function apply_result(result, client)
  -- The server may answer with a WorkspaceEdit, or apply it itself via workspace/applyEdit.
  if type(result) == 'table' and (result.changes or result.documentChanges) then
    vim.lsp.util.apply_workspace_edit(result, client.offset_encoding)
  end
end

function M.docstring()
  local bufnr = vim.api.nvim_get_current_buf()
  return M.execute('repolsp.generateDocstring', cursor_args(bufnr), apply_result, bufnr)
end

function M.tests()
  local bufnr = vim.api.nvim_get_current_buf()
  return M.execute('repolsp.generateTests', cursor_args(bufnr), apply_result, bufnr)
end

--- Arguments of `repolsp.train`: none for the server's own root, else the folder's URI.
function M.train_arguments(folder, root_dir)
  if not folder or folder == '' then return {} end
  local path = vim.fs.normalize(vim.fn.fnamemodify(folder, ':p'))
  if root_dir and path == vim.fs.normalize(root_dir) then return {} end
  return { vim.uri_from_fname(path) }
end

--- Starts training; the server reports progress with $/progress and ends it when done.
function M.train(folder)
  local client = client_or_warn(vim.api.nvim_get_current_buf())
  if not client then return false end
  local args = M.train_arguments(folder, client.root_dir)
  return M.execute('repolsp.train', args, function(result)
    if type(result) == 'table' and result.started == false then return end -- the server said why
    if type(result) == 'table' and result.started then
      notify('repolsp: training started on ' .. (args[1] or client.root_dir or 'the workspace')
        .. ' (:RepolspTrainCancel to stop)')
      return
    end
    local detail = type(result) == 'table' and result.message or (type(result) == 'string' and result or nil)
    notify('repolsp: training finished' .. (detail and (': ' .. detail) or '.'))
  end)
end

--- Cancels running work the server reported with $/progress (training).
function M.train_cancel()
  local client = client_or_warn(nil)
  if not client then return false end
  local any = false
  for token in pairs(M.progress_tokens) do
    compat.notify(client, 'window/workDoneProgress/cancel', { token = token })
    any = true
  end
  if not any then notify('repolsp: nothing to cancel') end
  return any
end

function M.status(on_status)
  return M.execute('repolsp.status', {}, function(result)
    M.last_status = result
    if on_status then on_status(result) else notify(table.concat(M.format_status(result), '\n')) end
  end)
end

--- The chart beside a report: the served model's own, else report.png next to the markdown.
local function chart_of(status, report)
  local served = type(status.servedModel) == 'table' and status.servedModel or {}
  if served.report == report and type(served.chart) == 'string' then return served.chart end
  return vim.fn.fnamemodify(report, ':r') .. '.png'
end

--- Opens the newest training report (markdown) in a split and says where its PNG chart is.
function M.report()
  return M.execute('repolsp.status', {}, function(result)
    M.last_status = result
    local report = type(result) == 'table' and result.trainingReport or nil
    if type(report) ~= 'string' or vim.fn.filereadable(report) == 0 then
      notify('repolsp: no training report yet. Run :RepolspTrain (lsp-train) first.', vim.log.levels.WARN)
      return
    end
    vim.schedule(function()
      vim.cmd('split ' .. vim.fn.fnameescape(report))
      local chart = chart_of(result, report)
      local where = vim.fn.filereadable(chart) == 1 and ('chart: ' .. chart) or 'no chart beside it'
      local served = type(result.servedModel) == 'table' and result.servedModel or {}
      local gain = type(served.summary) == 'string' and served.summary ~= ''
        and ('\n' .. tostring(served.name) .. ': ' .. served.summary) or ''
      notify(('repolsp: training report %s (%s)%s'):format(report, where, gain))
    end)
  end)
end

function M.use_model(name)
  if not name or vim.trim(name) == '' then
    notify('repolsp: usage: :RepolspModel {name}', vim.log.levels.WARN)
    return false
  end
  return M.execute('repolsp.useModel', { vim.trim(name) }, function()
    notify('repolsp: now serving ' .. vim.trim(name))
    M.status(function(s) M.last_status = s end)
  end)
end

--- Echoes $/progress of the repolsp server and remembers tokens for cancellation.
function M.on_progress(ev, show)
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  if not client or client.name ~= 'repolsp' then return end
  local params = ev.data.params or {}
  local value = params.value or {}
  if value.kind == 'end' then
    M.progress_tokens[params.token] = nil
  else
    M.progress_tokens[params.token] = true
  end
  if show then
    local pct = value.percentage and (' %d%%'):format(value.percentage) or ''
    local title = (value.title or ''):gsub('^repolsp: ', '')
    local text = ('repolsp: %s%s %s'):format(title, pct, value.message or ''):gsub('%s+$', '')
    vim.api.nvim_echo({ { text } }, false, {})
  end
end

function M.register(opts)
  local function cmd(name, fn, def)
    vim.api.nvim_create_user_command(name, fn, def)
  end
  cmd('RepolspDocstring', function() M.docstring() end, { desc = 'repolsp: generate a docstring for the function at the cursor' })
  cmd('RepolspTests', function() M.tests() end, { desc = 'repolsp: generate tests for the function at the cursor' })
  cmd('RepolspTrain', function(a) M.train(a.args) end, { nargs = '?', complete = 'dir', desc = 'repolsp: fine-tune on this repository' })
  cmd('RepolspTrainCancel', function() M.train_cancel() end, { desc = 'repolsp: cancel training' })
  cmd('RepolspStatus', function() M.status() end, { desc = 'repolsp: model, state and latency' })
  cmd('RepolspReport', function() M.report() end, { desc = 'repolsp: show training report (markdown + chart)' })
  cmd('RepolspModel', function(a) M.use_model(a.args) end, {
    nargs = 1,
    desc = 'repolsp: switch the served model',
    complete = function()
      local models = type(M.last_status) == 'table' and M.last_status.models
      return type(models) == 'table' and models or {}
    end,
  })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = vim.api.nvim_create_augroup('repolsp.progress', { clear = true }),
    callback = function(ev) M.on_progress(ev, opts.progress) end,
  })
end

return M
