//! Zed dev extension: starts the repolsp language server (`lsp-serve`) for the languages it
//! supports. Zed only runs language servers that an extension declares; this is that declaration.
//!
//! `lsp.repolsp.binary.path` / `.arguments` in Zed's settings override the command;
//! `lsp.repolsp.initialization_options` are sent at `initialize` and `lsp.repolsp.settings`
//! answer `workspace/configuration` (both use the server's camelCase keys).

use zed_extension_api::{self as zed, serde_json, settings::LspSettings, LanguageServerId, Result};

struct RepolspExtension;

impl zed::Extension for RepolspExtension {
    fn new() -> Self {
        RepolspExtension
    }

    fn language_server_command(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree(language_server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let configured_path = binary.as_ref().and_then(|b| b.path.clone());
        let args = binary.and_then(|b| b.arguments).unwrap_or_default();
        let command = match configured_path {
            Some(path) => path,
            None => worktree.which("lsp-serve").ok_or_else(|| {
                "repolsp: `lsp-serve` is not on PATH. Install it with `pip install repolsp`, \
                 or set lsp.repolsp.binary.path in Zed's settings."
                    .to_string()
            })?,
        };
        Ok(zed::Command {
            command,
            args,
            env: worktree.shell_env(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(LspSettings::for_worktree(language_server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        let settings = LspSettings::for_worktree(language_server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.settings);
        Ok(settings.map(|s| serde_json::json!({ "repolsp": s })))
    }
}

zed::register_extension!(RepolspExtension);
