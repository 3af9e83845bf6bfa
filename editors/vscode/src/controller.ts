// The extension's behaviour: starting the server, settings, commands and the status bar.
// It talks to `vscode` (mocked in unit tests) and to a language client made by an injected
// factory, so tests never load vscode-languageclient or start a process.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as vscode from 'vscode';

import { MappedSettings, ServerSettings, SUPPORTED_LANGUAGES, needsRestart, toServerSettings, withResetDefaults } from './config';
import { ResolveEnv, ServerCommand, ServerLaunchSettings, describeCommand, resolveServerCommand } from './serverCommand';
import { ClientPhase, ServerStatus, formatStatusBar, formatStatusReport, parseStatus } from './status';

/** The server-side command ids (workspace/executeCommand). */
export const SERVER_COMMANDS = {
  generateDocstring: 'repolsp.generateDocstring',
  generateTests: 'repolsp.generateTests',
  train: 'repolsp.train',
  status: 'repolsp.status',
  reloadModel: 'repolsp.reloadModel',
  useModel: 'repolsp.useModel',
} as const;

/**
 * The extension's own command ids. They differ from the server's ids on purpose:
 * vscode-languageclient registers every command the server advertises under the server's id,
 * and registering the same id twice throws.
 */
export const CLIENT_COMMANDS = {
  docstring: 'repolsp.docstring',
  tests: 'repolsp.tests',
  train: 'repolsp.trainRepository',
  switchModel: 'repolsp.switchModel',
  showStatus: 'repolsp.showStatus',
  showReport: 'repolsp.showTrainingReport',
  restart: 'repolsp.restartServer',
  showLog: 'repolsp.showLog',
} as const;

/** How often the training notification checks whether the server still trains. */
const TRAINING_CHECK_MS = 1000;

/** The README section that explains how to install the server. */
export const INSTALL_HELP_ANCHOR = 'installing-the-server';

/** What the controller needs from a language client (vscode-languageclient's LanguageClient fits). */
export interface ClientLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  sendRequest(method: string, params?: unknown): Promise<unknown>;
  sendNotification(method: string, params?: unknown): Promise<void>;
  isRunning(): boolean;
  /** Applies a protocol WorkspaceEdit returned by a command; true when applied. */
  applyWorkspaceEdit?(edit: unknown): Promise<boolean>;
  showLog?(): void;
}

/** Options the controller passes to the client factory. */
export interface ClientSpec {
  server: ServerCommand;
  initializationOptions: ServerSettings;
  documentLanguages: readonly string[];
  /** Answers the server's workspace/configuration pull for the `repolsp` section. */
  configurationFor(section: string | undefined): unknown;
  /** Called when the server process exits without being asked to. */
  onUnexpectedExit(): void;
}

export type ClientFactory = (spec: ClientSpec) => ClientLike;

export interface ControllerDeps {
  resolveEnv(): ResolveEnv;
  statusIntervalMs: number;
  home: string;
}

/** The real environment: PATH, open folders, the file system. */
export function defaultResolveEnv(): ResolveEnv {
  return {
    platform: process.platform,
    pathEnv: process.env.PATH ?? '',
    workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    isFile: (file) => {
      try {
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
  };
}

/** An LSP ResponseError-like object -> a message for the user. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}

function isCancellation(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === -32800 || /cancel/i.test(errorMessage(error));
}

/** The most specific value the user set (folder > workspace > user); undefined when only defaulted. */
export function explicitValue(
  inspected: { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown } | undefined,
): unknown {
  if (!inspected) return undefined;
  return inspected.workspaceFolderValue ?? inspected.workspaceValue ?? inspected.globalValue;
}

/**
 * Arguments of `repolsp.train`: none for the server's own workspace root (the first folder);
 * the folder's URI only when the user picked another folder of a multi-root workspace.
 */
export function trainArguments(folderUri: string, firstFolderUri: string): string[] {
  return folderUri === firstFolderUri ? [] : [folderUri];
}

function looksLikeWorkspaceEdit(value: unknown): boolean {
  return typeof value === 'object' && value !== null && ('changes' in value || 'documentChanges' in value);
}

export class RepolspController implements vscode.Disposable {
  phase: ClientPhase = 'stopped';
  status: ServerStatus | undefined;
  client: ClientLike | undefined;
  /** The last resolution failure, shown again when the status bar item is clicked. */
  lastProblem: string | undefined;
  readonly statusItem: vscode.StatusBarItem;
  private timer: ReturnType<typeof setInterval> | undefined;
  private disposables: vscode.Disposable[] = [];
  private training = false;
  /** Settings keys the user had set when the server last got its settings. */
  private sentKeys = new Set<string>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly createClient: ClientFactory,
    private readonly deps: ControllerDeps = {
      resolveEnv: defaultResolveEnv,
      statusIntervalMs: 5000,
      home: os.homedir(),
    },
  ) {
    this.statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'repolsp';
    this.statusItem.command = CLIENT_COMMANDS.showStatus;
    this.render();
    this.statusItem.show();
  }

  /** Registers commands and listeners, then starts the server. */
  async activate(): Promise<void> {
    const register = (id: string, run: () => Promise<unknown>) =>
      this.disposables.push(vscode.commands.registerCommand(id, run));
    register(CLIENT_COMMANDS.docstring, () => this.generate(SERVER_COMMANDS.generateDocstring, 'docstring'));
    register(CLIENT_COMMANDS.tests, () => this.generate(SERVER_COMMANDS.generateTests, 'tests'));
    register(CLIENT_COMMANDS.train, () => this.train());
    register(CLIENT_COMMANDS.switchModel, () => this.switchModel());
    register(CLIENT_COMMANDS.showStatus, () => this.showStatus());
    register(CLIENT_COMMANDS.showReport, () => this.showTrainingReport());
    register(CLIENT_COMMANDS.restart, () => this.restart());
    register(CLIENT_COMMANDS.showLog, async () => this.client?.showLog?.());
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
    );
    await this.start();
  }

  /**
   * `repolsp.*` settings mapped for the server. Only values the user set are sent: the server
   * owns the defaults, and flags in repolsp.server.extraArgs (e.g. `--engine fake`) stay in force.
   */
  readServerSettings(): MappedSettings & { setKeys: Set<string> } {
    const config = vscode.workspace.getConfiguration('repolsp');
    const setKeys = new Set<string>();
    const mapped = toServerSettings((key) => {
      const value = explicitValue(config.inspect(key));
      if (value !== undefined) setKeys.add(key);
      return value;
    }, this.deps.home);
    return { ...mapped, setKeys };
  }

  readLaunchSettings(): ServerLaunchSettings {
    const config = vscode.workspace.getConfiguration('repolsp');
    const python = vscode.workspace.getConfiguration('python');
    return {
      path: config.get<string>('server.path') ?? '',
      pythonPath: config.get<string>('server.pythonPath') ?? '',
      pythonExtensionInterpreter: python.get<string>('defaultInterpreterPath') ?? '',
      extraArgs: config.get<string[]>('server.extraArgs') ?? [],
    };
  }

  /** Resolves and starts the server; false (with a message to the user) when it cannot. */
  async start(): Promise<boolean> {
    const resolution = resolveServerCommand(this.readLaunchSettings(), this.deps.resolveEnv());
    if (!resolution.ok) {
      this.phase = 'missing';
      this.lastProblem = resolution.message;
      this.render();
      void this.showMissingServer(resolution.message);
      return false;
    }
    const mapped = this.readServerSettings();
    this.reportProblems(mapped.problems);
    this.sentKeys = mapped.setKeys;
    const client = this.createClient({
      server: resolution.server,
      initializationOptions: mapped.settings,
      documentLanguages: SUPPORTED_LANGUAGES,
      configurationFor: (section) => {
        const settings = this.readServerSettings().settings;
        return section === undefined ? { repolsp: settings } : section === 'repolsp' ? settings : null;
      },
      onUnexpectedExit: () => this.onUnexpectedExit(resolution.server),
    });
    this.client = client;
    this.phase = 'starting';
    this.render();
    try {
      await client.start();
    } catch (error) {
      this.phase = 'failed';
      this.lastProblem =
        `repolsp: the language server \`${describeCommand(resolution.server)}\` failed to start: ` +
        errorMessage(error);
      this.render();
      void this.showMissingServer(this.lastProblem);
      return false;
    }
    this.phase = 'running';
    this.lastProblem = undefined;
    await this.refreshStatus();
    this.startPolling();
    return true;
  }

  async stop(): Promise<void> {
    this.stopPolling();
    const client = this.client;
    this.client = undefined;
    this.status = undefined;
    this.phase = 'stopped';
    if (client?.isRunning()) {
      try {
        await client.stop();
      } catch {
        // A server that died already cannot be stopped; nothing is left to clean up.
      }
    }
    this.render();
  }

  async restart(): Promise<boolean> {
    await this.stop();
    return this.start();
  }

  /** Settings reach the running server without a restart; launch settings restart it. */
  async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration('repolsp') && !e.affectsConfiguration('python.defaultInterpreterPath')) return;
    if (needsRestart((s) => e.affectsConfiguration(s)) || this.phase === 'missing' || this.phase === 'failed') {
      await this.restart();
      return;
    }
    if (!this.client?.isRunning()) return;
    const mapped = this.readServerSettings();
    this.reportProblems(mapped.problems);
    const config = vscode.workspace.getConfiguration('repolsp');
    const settings = withResetDefaults(mapped.settings, this.sentKeys, mapped.setKeys, (key) => config.get(key));
    this.sentKeys = mapped.setKeys;
    await this.client.sendNotification('workspace/didChangeConfiguration', { settings: { repolsp: settings } });
    await this.refreshStatus();
  }

  /** Asks the server for its status and updates the status bar. */
  async refreshStatus(): Promise<ServerStatus | undefined> {
    if (!this.client?.isRunning()) {
      this.render();
      return undefined;
    }
    try {
      const raw = await this.client.sendRequest('workspace/executeCommand', {
        command: SERVER_COMMANDS.status,
        arguments: [],
      });
      this.status = parseStatus(raw);
    } catch {
      // A busy or restarting server: keep the last status rather than flicker.
    }
    this.render();
    return this.status;
  }

  render(): void {
    const status = this.training && this.status ? { ...this.status, state: 'training' as const } : this.status;
    const view = formatStatusBar(status, this.phase);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor = view.alert
      ? new vscode.ThemeColor('statusBarItem.warningBackground')
      : undefined;
  }

  /** Generate docstring / tests at the cursor of the active editor. */
  async generate(command: string, what: 'docstring' | 'tests'): Promise<unknown> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showWarningMessage(`repolsp: open a file and put the cursor in a function to generate ${what}.`);
      return undefined;
    }
    const client = this.requireClient();
    if (!client) return undefined;
    const position = editor.selection.active;
    const args = [editor.document.uri.toString(), { line: position.line, character: position.character }];
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `repolsp: generating ${what}…` },
        () => client.sendRequest('workspace/executeCommand', { command, arguments: args }),
      );
      if (looksLikeWorkspaceEdit(result) && client.applyWorkspaceEdit) {
        await client.applyWorkspaceEdit(result);
      }
      return result;
    } catch (error) {
      void vscode.window.showErrorMessage(`repolsp: could not generate ${what}: ${errorMessage(error)}`);
      return undefined;
    }
  }

  /** The workspace folder to train on: the active file's folder, else the only one, else ask. */
  async pickTrainingFolder(): Promise<vscode.WorkspaceFolder | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const active = vscode.window.activeTextEditor?.document.uri;
    const fromActive = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
    if (fromActive) return fromActive;
    if (folders.length <= 1) return folders[0];
    const picked = await vscode.window.showQuickPick(
      folders.map((f) => ({ label: f.name, description: f.uri.fsPath, folder: f })),
      { placeHolder: 'repolsp: train on which repository?' },
    );
    return picked?.folder;
  }

  /**
   * Train on this repository. The server starts `lsp-train` in the background and reports
   * progress with $/progress; the request itself returns at once with `{started, token}`.
   * vscode-languageclient shows that progress in the status bar, where VS Code offers no Cancel
   * (seen in the real VS Code), so a notification of our own carries the Cancel button.
   */
  async train(): Promise<unknown> {
    const client = this.requireClient();
    if (!client) return undefined;
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length === 0) {
      void vscode.window.showWarningMessage('repolsp: open a folder (a git repository) to train on its history.');
      return undefined;
    }
    const folder = await this.pickTrainingFolder();
    if (!folder) return undefined;
    this.training = true;
    this.render();
    try {
      const result = await client.sendRequest('workspace/executeCommand', {
        command: SERVER_COMMANDS.train,
        arguments: trainArguments(folder.uri.toString(), folders[0].uri.toString()),
      });
      const { started, token } = (result ?? {}) as { started?: unknown; token?: unknown };
      if (started === true && typeof token === 'string') {
        void this.showTrainingProgress(client, token);
      } else if (started === false) {
        // The server says why in its own window/showMessage (already training, no workspace...).
        this.training = false;
      } else if (started !== true) {
        // An older server that trains inside the request: it has finished by now.
        this.training = false;
        const detail = typeof result === 'string' ? result : (result as { message?: unknown } | null)?.message;
        void vscode.window.showInformationMessage(
          `repolsp: training finished${typeof detail === 'string' && detail ? `: ${detail}` : '.'}`,
        );
      }
      return result;
    } catch (error) {
      this.training = false;
      if (isCancellation(error)) {
        void vscode.window.showInformationMessage('repolsp: training cancelled.');
      } else {
        void vscode.window.showErrorMessage(`repolsp: training failed: ${errorMessage(error)}`);
      }
      return undefined;
    } finally {
      // While the server trains, its status says so; the local flag only bridges the request.
      this.training = false;
      await this.refreshStatus();
    }
  }

  /** A cancellable notification until the server stops training; Cancel cancels its progress token. */
  showTrainingProgress(client: ClientLike, token: string): Thenable<void> {
    const options = {
      location: vscode.ProgressLocation.Notification,
      title: 'repolsp: training on this repository',
      cancellable: true,
    };
    return vscode.window.withProgress(options, (_progress, cancellation) => new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (this.client !== client || this.status?.state !== 'training') finish();
      }, TRAINING_CHECK_MS);
      const finish = () => {
        clearInterval(timer);
        resolve();
      };
      cancellation.onCancellationRequested(() => {
        void client.sendNotification('window/workDoneProgress/cancel', { token });
        finish();
      });
    }));
  }

  /** Switch model: pick from the server's list when it offers one, else type a name. */
  async switchModel(): Promise<string | undefined> {
    const client = this.requireClient();
    if (!client) return undefined;
    const status = await this.refreshStatus();
    let name: string | undefined;
    const other = 'Other model…';
    if (status?.models?.length) {
      const picked = await vscode.window.showQuickPick(
        [...status.models.map((m) => ({ label: m, description: m === status.model ? 'current' : '' })), { label: other, description: 'a name, a local folder or a GGUF file' }],
        { placeHolder: 'repolsp: switch to which model?' },
      );
      if (!picked) return undefined;
      name = picked.label === other ? undefined : picked.label;
    }
    if (name === undefined) {
      name = await vscode.window.showInputBox({
        prompt: 'repolsp: model to serve (a name from `lsp-models list`, a local folder or a GGUF file)',
        value: status?.model ?? '',
      });
    }
    name = name?.trim();
    if (!name) return undefined;
    try {
      await client.sendRequest('workspace/executeCommand', { command: SERVER_COMMANDS.useModel, arguments: [name] });
      void vscode.window.showInformationMessage(`repolsp: now serving ${name}.`);
    } catch (error) {
      void vscode.window.showErrorMessage(`repolsp: could not switch to ${name}: ${errorMessage(error)}`);
      return undefined;
    }
    await this.refreshStatus();
    return name;
  }

  /** Show status: a modal-free report of model, state and latency. */
  async showStatus(): Promise<string> {
    if (this.phase === 'missing' || this.phase === 'failed') {
      const message = this.lastProblem ?? 'repolsp: the language server is not running.';
      void this.showMissingServer(message);
      return message;
    }
    const status = await this.refreshStatus();
    const report = status ? formatStatusReport(status) : 'repolsp: the server did not report a status yet.';
    const choice = await vscode.window.showInformationMessage(report, 'Switch model', 'Show log');
    if (choice === 'Switch model') await this.switchModel();
    if (choice === 'Show log') this.client?.showLog?.();
    return report;
  }

  /**
   * Show training report: the newest `lsp-train` report (markdown with its chart) in VS Code's
   * markdown preview; the server's status says where it is. Returns the path, if any.
   */
  async showTrainingReport(): Promise<string | undefined> {
    if (!this.requireClient()) return undefined;
    const status = await this.refreshStatus();
    const report = status?.trainingReport;
    if (!report || !fs.existsSync(report)) {
      void vscode.window.showInformationMessage(
        'repolsp: no training report yet. Run "repolsp: Train on this repository" (lsp-train) first.',
      );
      return undefined;
    }
    await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(report));
    if (status?.gain) void vscode.window.showInformationMessage(`repolsp: ${status.model}: ${status.gain}`);
    return report;
  }

  private requireClient(): ClientLike | undefined {
    if (this.client?.isRunning()) return this.client;
    void this.showMissingServer(this.lastProblem ?? 'repolsp: the language server is not running.');
    return undefined;
  }

  private reportProblems(problems: string[]): void {
    if (problems.length) void vscode.window.showWarningMessage(problems.join('\n'));
  }

  private onUnexpectedExit(server: ServerCommand): void {
    this.stopPolling();
    this.phase = 'failed';
    this.lastProblem =
      `repolsp: the language server \`${describeCommand(server)}\` exited. ` +
      'If it is not installed in that environment, see "How to install".';
    this.render();
  }

  /** The error for a missing or broken server, with a way to the install instructions. */
  async showMissingServer(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, 'How to install', 'Open settings', 'Show log');
    if (choice === 'How to install') {
      const readme = vscode.Uri.joinPath(this.extensionUri, 'README.md');
      await vscode.commands.executeCommand('markdown.showPreview', readme.with({ fragment: INSTALL_HELP_ANCHOR }));
    } else if (choice === 'Open settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'repolsp.server');
    } else if (choice === 'Show log') {
      this.client?.showLog?.();
    }
  }

  private startPolling(): void {
    this.stopPolling();
    if (this.deps.statusIntervalMs > 0) {
      this.timer = setInterval(() => void this.refreshStatus(), this.deps.statusIntervalMs);
    }
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stopPolling();
    for (const d of this.disposables) d.dispose();
    this.disposables = [];
    this.statusItem.dispose();
  }
}
