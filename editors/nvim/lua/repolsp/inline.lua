-- Inline (ghost-text) completion. Neovim 0.12+: the native vim.lsp.inline_completion.
-- Earlier: a small fallback with extmarks that sends the same textDocument/inlineCompletion
-- request, shows the first item, and accepts/dismisses it with keys.
local compat = require('repolsp.compat')

local M = {}

M.ns = vim.api.nvim_create_namespace('repolsp.ghost')

--- Per-buffer fallback state: { timer, items, index, request_id, tick, row, col }
local buffers = {}

--- The text of an InlineCompletionItem (string, or a StringValue snippet shown as plain text).
function M.item_text(item)
  local text = item.insertText
  if type(text) == 'table' then text = text.value or '' end
  return text or ''
end

--- What to show as ghost text for `item_text` replacing [range_start_col, cursor) on the
--- cursor line; `typed` is the line text from the range start to the cursor, which the item
--- repeats. Returns the lines to show after the cursor, or nil when the item does not match what
--- was typed (it is stale). Columns are byte offsets, 0-based.
---@return string[]|nil
function M.ghost_lines(item_text, typed)
  if item_text:sub(1, #typed) ~= typed then return nil end
  local rest = item_text:sub(#typed + 1)
  if rest == '' then return nil end
  return vim.split(rest, '\n', { plain = true })
end

--- The native feature is used when asked for, or on 'auto' when this Neovim has it.
function M.use_native(opts)
  if opts.inline.native == 'auto' then return compat.has_native_inline end
  return opts.inline.native == true and compat.has_native_inline
end

local function cursor()
  local pos = vim.api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function clear(bufnr)
  local state = buffers[bufnr]
  if vim.api.nvim_buf_is_valid(bufnr) then vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1) end
  if not state then return end
  state.items, state.shown = nil, nil
  if state.request_id and state.client then pcall(compat.cancel_request, state.client, state.request_id) end
  state.request_id = nil
end

--- True while the fallback shows a suggestion in `bufnr`.
function M.fallback_visible(bufnr)
  local state = buffers[bufnr or vim.api.nvim_get_current_buf()]
  return state ~= nil and state.shown ~= nil
end

local function show(bufnr, state)
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  state.shown = nil
  local item = state.items and state.items[state.index]
  if not item then return end
  local row, col = cursor()
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local start_col = col
  if item.range and item.range.start.line == row then
    start_col = compat.byte_col(line, item.range.start.character, state.client.offset_encoding)
  end
  local lines = M.ghost_lines(M.item_text(item), line:sub(start_col + 1, col))
  if not lines then return end
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], 'Comment' } })
  end
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, row, col, {
    virt_text = { { lines[1], 'Comment' } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
  state.shown = { item = item, row = row, col = col, start_col = start_col }
end

local function request(bufnr)
  local state = buffers[bufnr]
  local client = compat.get_client(bufnr)
  if not state or not client or not vim.api.nvim_buf_is_valid(bufnr) then return end
  if vim.api.nvim_get_current_buf() ~= bufnr then return end
  state.client = client
  if state.request_id then pcall(compat.cancel_request, client, state.request_id) end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 2 } -- Automatic
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local row, col = cursor()
  local _, id = compat.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    state.request_id = nil
    if err or not result then return end
    -- Stale: the user typed or moved while the server was generating.
    local now_row, now_col = cursor()
    if vim.api.nvim_get_current_buf() ~= bufnr or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      or now_row ~= row or now_col ~= col then
      return
    end
    state.items = result.items or result
    state.index = 1
    show(bufnr, state)
  end, bufnr)
  state.request_id = id
end

local function schedule_request(bufnr, delay_ms)
  local state = buffers[bufnr]
  if not state then return end
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  state.shown = nil
  state.timer:stop()
  state.timer:start(delay_ms, 0, vim.schedule_wrap(function() request(bufnr) end))
end

--- Inserts the shown fallback suggestion; runs the item's command (acceptance telemetry).
function M.fallback_accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = buffers[bufnr]
  local shown = state and state.shown
  if not shown then return false end
  local text = M.item_text(shown.item)
  local lines = vim.split(text, '\n', { plain = true })
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  state.shown, state.items = nil, nil
  vim.api.nvim_buf_set_text(bufnr, shown.row, shown.start_col, shown.row, shown.col, lines)
  local end_row = shown.row + #lines - 1
  local end_col = (#lines == 1 and shown.start_col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { end_row + 1, end_col })
  local command = shown.item.command
  if command and state.client then
    compat.request(state.client, 'workspace/executeCommand',
      { command = command.command, arguments = command.arguments }, function() end, bufnr)
  end
  return true
end

function M.fallback_cycle(bufnr, delta)
  local state = buffers[bufnr or vim.api.nvim_get_current_buf()]
  if not state or not state.items or #state.items == 0 then return end
  state.index = (state.index - 1 + delta) % #state.items + 1
  show(bufnr or vim.api.nvim_get_current_buf(), state)
end

function M.dismiss(bufnr)
  clear(bufnr or vim.api.nvim_get_current_buf())
end

local function attach_fallback(bufnr, opts)
  if buffers[bufnr] then return end
  buffers[bufnr] = { timer = vim.uv.new_timer(), index = 1 }
  local group = vim.api.nvim_create_augroup('repolsp.ghost.' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function() schedule_request(bufnr, opts.inline.debounce_ms) end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function() clear(bufnr) end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      local state = buffers[bufnr]
      if state then state.timer:stop(); state.timer:close() end
      buffers[bufnr] = nil
    end,
  })
end

--- Accepts the shown suggestion (native or fallback); false when none is shown.
function M.accept()
  if M.native_enabled and vim.lsp.inline_completion.get() then return true end
  if M.fallback_visible() then
    -- Buffer text cannot change inside an <expr> mapping: defer the edit.
    vim.schedule(function() M.fallback_accept() end)
    return true
  end
  return false
end

--- What `lhs` did before this plugin mapped it in insert mode, as keys for an <expr> mapping
--- (so Tab still indents, or drives a completion plugin, when no suggestion is shown).
function M.previous_keys(previous, lhs)
  if previous and previous.lhs and previous.lhs ~= '' then
    if previous.callback then
      local keys = previous.callback()
      if previous.expr == 1 then
        return type(keys) == 'string' and (previous.replace_keycodes == 1 and vim.keycode(keys) or keys) or ''
      end
      return ''
    end
    if previous.expr == 1 then return vim.api.nvim_eval(previous.rhs) end
    return vim.api.nvim_replace_termcodes(previous.rhs, true, false, true)
  end
  return vim.api.nvim_replace_termcodes(lhs, true, false, true)
end

--- Buffer-local insert-mode keys: accept (falling back to the key's previous meaning),
--- dismiss, next/previous suggestion.
function M.set_keymaps(bufnr, opts)
  local inline = opts.inline
  local function map(lhs, rhs, desc, expr)
    if lhs and lhs ~= '' then
      vim.keymap.set('i', lhs, rhs, { buffer = bufnr, expr = expr, desc = desc, silent = true })
    end
  end
  local accept_key = inline.accept_key
  local previous = accept_key and accept_key ~= '' and vim.api.nvim_buf_call(bufnr, function()
    return vim.fn.maparg(accept_key, 'i', false, true)
  end) or nil
  if previous and previous.desc == 'repolsp: accept the inline suggestion' then previous = nil end
  map(accept_key, function()
    if M.accept() then return '' end
    return M.previous_keys(previous, accept_key)
  end, 'repolsp: accept the inline suggestion', true)
  map(inline.dismiss_key, function()
    M.dismiss(bufnr)
    if M.native_enabled then
      -- The native feature has no public dismiss; re-enabling drops the current suggestion.
      local filter = { bufnr = bufnr }
      pcall(vim.lsp.inline_completion.enable, false, filter)
      pcall(vim.lsp.inline_completion.enable, true, filter)
    end
  end, 'repolsp: dismiss the inline suggestion', false)
  map(inline.next_key, function()
    if M.native_enabled then vim.lsp.inline_completion.select({ count = 1 }) else M.fallback_cycle(bufnr, 1) end
  end, 'repolsp: next suggestion', false)
  map(inline.prev_key, function()
    if M.native_enabled then vim.lsp.inline_completion.select({ count = -1 }) else M.fallback_cycle(bufnr, -1) end
  end, 'repolsp: previous suggestion', false)
end

--- Turns inline completion on for a buffer the repolsp client attached to.
function M.attach(bufnr, client, opts)
  if not opts.inline.enabled then return end
  if M.use_native(opts) then
    M.native_enabled = true
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    attach_fallback(bufnr, opts)
  end
  M.set_keymaps(bufnr, opts)
end

--- Which implementation is in use, for :checkhealth.
function M.describe(opts)
  if not opts.inline.enabled then return 'disabled' end
  return M.use_native(opts) and 'native vim.lsp.inline_completion' or 'ghost-text fallback (extmarks)'
end

return M
