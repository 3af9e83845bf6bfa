// A small stand-in for the `vscode` module: just what the controller uses, with every UI call
// recorded so tests can assert what the user would have seen.

type Listener<T> = (value: T) => unknown;

export class Disposable {
  constructor(private readonly onDispose: () => void = () => undefined) {}
  dispose(): void {
    this.onDispose();
  }
}

class Emitter<T> {
  private listeners: Listener<T>[] = [];
  event = (listener: Listener<T>): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  };
  async fire(value: T): Promise<void> {
    for (const listener of this.listeners) await listener(value);
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
    readonly fragment = '',
  ) {}
  static file(path: string): Uri {
    return new Uri('file', path);
  }
  static parse(value: string): Uri {
    const match = /^(\w+):\/\/([^#]*)(?:#(.*))?$/.exec(value);
    return match ? new Uri(match[1], match[2], match[3] ?? '') : new Uri('file', value);
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return new Uri(base.scheme, [base.path.replace(/\/$/, ''), ...parts].join('/'), base.fragment);
  }
  get fsPath(): string {
    return this.path;
  }
  with(change: { fragment?: string }): Uri {
    return new Uri(this.scheme, this.path, change.fragment ?? this.fragment);
  }
  toString(): string {
    return `${this.scheme}://${this.path}${this.fragment ? `#${this.fragment}` : ''}`;
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export interface MockStatusBarItem {
  text: string;
  tooltip: string | undefined;
  name: string | undefined;
  command: string | undefined;
  backgroundColor: ThemeColor | undefined;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

/** Everything the tests inspect or script. */
export const state = {
  /** Settings by full key, e.g. "repolsp.debounceMs". */
  settings: new Map<string, unknown>(),
  /** Defaults (package.json) by full key: returned by get(), not by inspect().globalValue. */
  defaults: new Map<string, unknown>(),
  messages: [] as { level: 'info' | 'warning' | 'error'; text: string; items: string[] }[],
  /** Answers for the next show*Message calls (undefined = dismissed). */
  messageAnswers: [] as (string | undefined)[],
  quickPickAnswers: [] as (string | undefined)[],
  inputBoxAnswers: [] as (string | undefined)[],
  executed: [] as { command: string; args: unknown[] }[],
  registered: new Map<string, (...args: unknown[]) => unknown>(),
  statusItems: [] as MockStatusBarItem[],
  configurationEmitter: new Emitter<{ affectsConfiguration(section: string): boolean }>(),
  workspaceFolders: [] as { uri: Uri; name: string; index: number }[],
  activeTextEditor: undefined as unknown,
  appliedEdits: [] as unknown[],
  /** withProgress calls: their options, a way to press Cancel, and whether the task finished. */
  progress: [] as { options: { location?: number; title?: string; cancellable?: boolean }; cancel(): void; done: boolean }[],
};

/** Forgets all recorded calls and settings between tests. */
export function reset(): void {
  state.settings.clear();
  state.defaults.clear();
  state.messages = [];
  state.messageAnswers = [];
  state.quickPickAnswers = [];
  state.inputBoxAnswers = [];
  state.executed = [];
  state.registered.clear();
  state.statusItems = [];
  state.configurationEmitter = new Emitter();
  state.workspaceFolders = [];
  state.activeTextEditor = undefined;
  state.appliedEdits = [];
  state.progress = [];
}

/** Sets settings, then fires onDidChangeConfiguration for the changed keys. */
export async function changeSettings(values: Record<string, unknown>): Promise<void> {
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) state.settings.delete(key);
    else state.settings.set(key, value);
  }
  const keys = Object.keys(values);
  await state.configurationEmitter.fire({
    affectsConfiguration: (section: string) =>
      keys.some((k) => k === section || k.startsWith(`${section}.`)),
  });
}

function message(level: 'info' | 'warning' | 'error') {
  return async (text: string, ...items: unknown[]) => {
    state.messages.push({ level, text, items: items.filter((i): i is string => typeof i === 'string') });
    return state.messageAnswers.shift();
  };
}

export const window = {
  createStatusBarItem(): MockStatusBarItem {
    const item: MockStatusBarItem = {
      text: '',
      tooltip: undefined,
      name: undefined,
      command: undefined,
      backgroundColor: undefined,
      visible: false,
      show() {
        item.visible = true;
      },
      hide() {
        item.visible = false;
      },
      dispose() {
        item.visible = false;
      },
    };
    state.statusItems.push(item);
    return item;
  },
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  async showQuickPick<T extends { label: string }>(items: T[]): Promise<T | undefined> {
    const answer = state.quickPickAnswers.shift();
    return items.find((i) => i.label === answer);
  },
  async showInputBox(): Promise<string | undefined> {
    return state.inputBoxAnswers.shift();
  },
  async withProgress<R>(
    options: { location?: number; title?: string; cancellable?: boolean },
    task: (progress: { report(value: unknown): void }, token: { onCancellationRequested: (l: () => void) => Disposable }) => Promise<R>,
  ): Promise<R> {
    const cancelled = new Emitter<void>();
    const entry = { options, cancel: () => void cancelled.fire(), done: false };
    state.progress.push(entry);
    const result = await task({ report: () => undefined }, { onCancellationRequested: (l) => cancelled.event(l) });
    entry.done = true;
    return result;
  },
  get activeTextEditor(): unknown {
    return state.activeTextEditor;
  },
};

export const workspace = {
  getConfiguration(section: string) {
    return {
      get<T>(key: string, fallback?: T): T | undefined {
        const full = `${section}.${key}`;
        if (state.settings.has(full)) return state.settings.get(full) as T;
        return state.defaults.has(full) ? (state.defaults.get(full) as T) : fallback;
      },
      /** Settings in the mock are user settings; package.json defaults are not modelled. */
      inspect(key: string) {
        const full = `${section}.${key}`;
        return { key: full, globalValue: state.settings.get(full) };
      },
    };
  },
  onDidChangeConfiguration: (listener: Listener<{ affectsConfiguration(section: string): boolean }>) =>
    state.configurationEmitter.event(listener),
  get workspaceFolders() {
    return state.workspaceFolders;
  },
  getWorkspaceFolder(uri: Uri) {
    return state.workspaceFolders.find((f) => uri.path.startsWith(`${f.uri.path}/`));
  },
  async applyEdit(edit: unknown): Promise<boolean> {
    state.appliedEdits.push(edit);
    return true;
  },
};

export const commands = {
  registerCommand(command: string, run: (...args: unknown[]) => unknown): Disposable {
    if (state.registered.has(command)) throw new Error(`command '${command}' already exists`);
    state.registered.set(command, run);
    return new Disposable(() => state.registered.delete(command));
  },
  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    state.executed.push({ command, args });
    const run = state.registered.get(command);
    return run ? run(...args) : undefined;
  },
};
