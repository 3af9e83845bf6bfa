// Settings mapping: VS Code `repolsp.*` settings -> the server's configuration object
// (camelCase, the shape of initializationOptions and of didChangeConfiguration's `repolsp` key).
// Pure: no `vscode` import, so the mapping is unit-tested without an editor.
// Ranges mirror the server's (server/config.py) so a bad value is caught where the user typed it.

/** The server's configuration, exactly as it goes on the wire. Absent keys mean "server default". */
export interface ServerSettings {
  model?: string;
  engine?: 'ct2' | 'fake' | 'openai';
  endpoint?: string;
  remoteModel?: string;
  fimTemplate?: string;
  apiKeyEnv?: string;
  fallbackToLocal?: boolean;
  maxNewTokens?: { singleLine?: number; multiLine?: number };
  temperature?: number;
  debounceMs?: number;
  contextBudgetTokens?: number;
  enabledLanguages?: string[];
  logLevel?: string;
  logFile?: string;
  completionItems?: 'auto' | 'always' | 'never';
  trainWhenIdle?: boolean;
  idleTrainAfterS?: number;
  history?: boolean;
  historyMaxCommits?: number;
  rerank?: boolean;
}

/** Reads one setting below `repolsp.` (e.g. "maxNewTokens.singleLine"); undefined when unset. */
export type SettingGetter = (key: string) => unknown;

/** The mapped settings plus one human-readable line per setting that was ignored. */
export interface MappedSettings {
  settings: ServerSettings;
  problems: string[];
}

/** Language ids the server has grammars for; the default of `repolsp.enabledLanguages`. */
export const SUPPORTED_LANGUAGES: readonly string[] = [
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'rust',
  'java',
  'c',
  'cpp',
];

const ENGINES = ['ct2', 'fake', 'openai'] as const;
/** The `openai` engine's string settings: sent when set, the server checks them. */
const REMOTE_STRINGS = ['endpoint', 'remoteModel', 'fimTemplate', 'apiKeyEnv'] as const;
const LOG_LEVELS = ['debug', 'info', 'warning', 'error'];
/** Whether the completion list also carries the model's suggestion (VS Code shows it as ghost text). */
const COMPLETION_ITEMS = ['auto', 'always', 'never'] as const;

/** Integer settings: name below `repolsp.`, where it goes in ServerSettings, inclusive bounds. */
const INTEGER_SETTINGS: ReadonlyArray<{ key: string; min: number; max: number }> = [
  { key: 'maxNewTokens.singleLine', min: 1, max: 512 },
  { key: 'maxNewTokens.multiLine', min: 1, max: 2048 },
  { key: 'debounceMs', min: 0, max: 5000 },
  { key: 'contextBudgetTokens', min: 64, max: 32_768 },
  { key: 'idleTrainAfterS', min: 30, max: 86_400 },
  { key: 'historyMaxCommits', min: 1, max: 100_000 },
];

/** Sets `target[a][b]` for the dotted key `a.b`, creating objects on the way. */
export function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/** Expands a leading `~` so a log path typed as in a shell works. */
export function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return home.replace(/\/$/, '') + path.slice(1);
  return path;
}

/**
 * Maps `repolsp.*` settings onto the server's configuration.
 *
 * Empty strings and unset values are left out so the server keeps its own default; a value of the
 * wrong type or out of range is left out too and named in `problems` (never thrown: a typo in
 * settings.json must not stop completions).
 */
export function toServerSettings(get: SettingGetter, home = ''): MappedSettings {
  const settings: Record<string, unknown> = {};
  const problems: string[] = [];
  const bad = (key: string, why: string) =>
    problems.push(`repolsp.${key}: ${why}; using the server's default`);

  const model = get('model');
  if (typeof model === 'string') {
    if (model.trim()) settings.model = model.trim();
  } else if (model !== undefined && model !== null) bad('model', 'expected a model name (string)');

  const engine = get('engine');
  if (typeof engine === 'string' && (ENGINES as readonly string[]).includes(engine)) {
    settings.engine = engine;
  } else if (engine !== undefined && engine !== null && engine !== '') {
    bad('engine', `expected one of ${ENGINES.join(', ')}, got ${JSON.stringify(engine)}`);
  }

  for (const key of REMOTE_STRINGS) {
    const value = get(key);
    if (typeof value === 'string') {
      if (value.trim()) settings[key] = value.trim();
    } else if (value !== undefined && value !== null) bad(key, `expected a string, got ${JSON.stringify(value)}`);
  }
  for (const key of ['fallbackToLocal', 'trainWhenIdle', 'history', 'rerank']) {
    const value = get(key);
    if (typeof value === 'boolean') settings[key] = value;
    else if (value !== undefined && value !== null) bad(key, 'expected true or false');
  }

  const completionItems = get('completionItems');
  if (typeof completionItems === 'string' && (COMPLETION_ITEMS as readonly string[]).includes(completionItems)) {
    settings.completionItems = completionItems;
  } else if (completionItems !== undefined && completionItems !== null && completionItems !== '') {
    bad('completionItems', `expected one of ${COMPLETION_ITEMS.join(', ')}, got ${JSON.stringify(completionItems)}`);
  }

  for (const { key, min, max } of INTEGER_SETTINGS) {
    const value = get(key);
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      bad(key, `expected a whole number, got ${JSON.stringify(value)}`);
    } else if (value < min || value > max) {
      bad(key, `${value} is outside ${min}..${max}`);
    } else {
      setPath(settings, key, value);
    }
  }

  const temperature = get('temperature');
  if (typeof temperature === 'number' && temperature >= 0 && temperature <= 2) {
    settings.temperature = temperature;
  } else if (temperature !== undefined && temperature !== null) {
    bad('temperature', `expected a number in 0..2, got ${JSON.stringify(temperature)}`);
  }

  const languages = get('enabledLanguages');
  if (Array.isArray(languages) && languages.every((l) => typeof l === 'string')) {
    settings.enabledLanguages = languages.map((l: string) => l.trim()).filter(Boolean);
  } else if (languages !== undefined && languages !== null) {
    bad('enabledLanguages', 'expected a list of language ids');
  }

  const logLevel = get('logLevel');
  if (typeof logLevel === 'string' && LOG_LEVELS.includes(logLevel.toLowerCase())) {
    settings.logLevel = logLevel.toLowerCase();
  } else if (logLevel !== undefined && logLevel !== null && logLevel !== '') {
    bad('logLevel', `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }

  const logFile = get('logFile');
  if (typeof logFile === 'string') {
    if (logFile.trim()) settings.logFile = expandHome(logFile.trim(), home);
  } else if (logFile !== undefined && logFile !== null) bad('logFile', 'expected a file path');

  return { settings: settings as ServerSettings, problems };
}

/** True when a configuration change needs the server process restarted, not just re-configured. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects('repolsp.server');
}

/**
 * Settings the user had set and has now removed: the server merges each change into its current
 * configuration, so a removed setting must be sent back at its default, or the old value stays.
 */
export function withResetDefaults(
  settings: ServerSettings,
  previouslySet: ReadonlySet<string>,
  nowSet: ReadonlySet<string>,
  defaultOf: (key: string) => unknown,
): ServerSettings {
  const out = JSON.parse(JSON.stringify(settings)) as Record<string, unknown>;
  for (const key of previouslySet) {
    if (!nowSet.has(key)) setPath(out, key, defaultOf(key));
  }
  return out as ServerSettings;
}
