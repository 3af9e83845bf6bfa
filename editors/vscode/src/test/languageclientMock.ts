// A stand-in for `vscode-languageclient/node`: records what the extension constructs.

export enum TransportKind {
  stdio = 0,
}
export enum ErrorAction {
  Continue = 1,
  Shutdown = 2,
}
export enum CloseAction {
  DoNotRestart = 1,
  Restart = 2,
}

export class LanguageClient {
  static created: LanguageClient[] = [];
  running = false;
  outputChannel = { shown: false, show: () => { this.outputChannel.shown = true; } };
  protocol2CodeConverter = { asWorkspaceEdit: async (edit: unknown) => ({ converted: edit }) };
  constructor(
    readonly id: string,
    readonly name: string,
    readonly serverOptions: any,
    readonly clientOptions: any,
  ) {
    LanguageClient.created.push(this);
  }
  async start() {
    this.running = true;
  }
  async stop() {
    this.running = false;
  }
  isRunning() {
    return this.running;
  }
  async sendRequest(method: string, params: unknown) {
    return { method, params };
  }
  async sendNotification() {}
}
