-- Nothing starts until require('repolsp').setup() is called (lazy.nvim does that with `opts`).
if vim.g.loaded_repolsp then return end
vim.g.loaded_repolsp = true
if vim.fn.has('nvim-0.10') == 0 then
  vim.api.nvim_echo({ { 'repolsp needs Neovim 0.10 or newer', 'WarningMsg' } }, true, {})
end
