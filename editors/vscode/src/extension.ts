// Entry point: wires the controller to a real vscode-languageclient LanguageClient.

import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';

import { ClientLike, ClientSpec, RepolspController } from './controller';

/** Restarts allowed after crashes before giving up (the user then sees the error). */
const MAX_RESTARTS = 2;

let controller: RepolspController | undefined;

/** Wraps a LanguageClient as the controller's ClientLike. */
export function createLanguageClient(spec: ClientSpec): ClientLike {
  const serverOptions: ServerOptions = {
    command: spec.server.command,
    args: spec.server.args,
    transport: TransportKind.stdio,
    options: { env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' } },
  };
  let crashes = 0;
  const clientOptions: LanguageClientOptions = {
    documentSelector: spec.documentLanguages.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    initializationOptions: spec.initializationOptions,
    outputChannelName: 'repolsp',
    // Our status bar shows failures; the client's own popup on every crash would only repeat them.
    initializationFailedHandler: () => false,
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue }),
      closed: () => {
        crashes += 1;
        if (crashes <= MAX_RESTARTS) return { action: CloseAction.Restart, handled: true };
        spec.onUnexpectedExit();
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
    middleware: {
      workspace: {
        configuration: (params) => params.items.map((item) => spec.configurationFor(item.section)),
      },
    },
  };
  const client = new LanguageClient('repolsp', 'repolsp', serverOptions, clientOptions);
  return {
    start: () => client.start(),
    stop: () => client.stop(),
    isRunning: () => client.isRunning(),
    sendRequest: (method, params) => client.sendRequest(method, params),
    sendNotification: (method, params) => client.sendNotification(method, params),
    applyWorkspaceEdit: async (edit) => {
      const converted = await client.protocol2CodeConverter.asWorkspaceEdit(edit as never);
      return converted ? vscode.workspace.applyEdit(converted) : false;
    },
    showLog: () => client.outputChannel.show(true),
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  controller = new RepolspController(context.extensionUri, createLanguageClient);
  context.subscriptions.push(controller);
  // Not awaited: activation must not wait for the server; commands are registered synchronously.
  void controller.activate();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
