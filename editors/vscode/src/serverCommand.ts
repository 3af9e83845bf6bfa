// Server command resolution: which `lsp-serve` to start. Pure (file checks are injected), so every
// branch is unit-tested without touching the disk.

import * as path from 'node:path';

/** Where the extension looks; file checks are injected for tests. */
export interface ResolveEnv {
  platform: NodeJS.Platform;
  /** The PATH environment variable. */
  pathEnv: string;
  /** Absolute paths of the open workspace folders. */
  workspaceFolders: string[];
  /** True when `file` exists and is a file. */
  isFile(file: string): boolean;
}

/** The `repolsp.server.*` settings plus the Python extension's interpreter, if any. */
export interface ServerLaunchSettings {
  /** `repolsp.server.path`: an explicit `lsp-serve` executable. */
  path?: string;
  /** `repolsp.server.pythonPath`: a Python interpreter that has repolsp installed. */
  pythonPath?: string;
  /** `python.defaultInterpreterPath`, used only when `lsp-serve` sits next to it. */
  pythonExtensionInterpreter?: string;
  /** `repolsp.server.extraArgs`: appended to the command line. */
  extraArgs?: string[];
}

export type CommandSource = 'setting' | 'interpreter' | 'workspace-venv' | 'python-extension' | 'path';

/** A command line that starts the server over stdio. */
export interface ServerCommand {
  command: string;
  args: string[];
  source: CommandSource;
}

export type Resolution =
  | { ok: true; server: ServerCommand }
  | { ok: false; message: string; tried: string[] };

const VENV_DIRS = ['.venv', 'venv', 'env'];

function scriptDir(platform: NodeJS.Platform): string {
  return platform === 'win32' ? 'Scripts' : 'bin';
}

function executableNames(base: string, platform: NodeJS.Platform): string[] {
  return platform === 'win32' ? [`${base}.exe`, `${base}.cmd`, base] : [base];
}

function pathApi(platform: NodeJS.Platform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

/** The `lsp-serve` that a virtualenv's interpreter installs next to itself, if present. */
function serveNextTo(interpreter: string, env: ResolveEnv): string | undefined {
  const p = pathApi(env.platform);
  const dir = p.dirname(interpreter);
  return executableNames('lsp-serve', env.platform)
    .map((name) => p.join(dir, name))
    .find((candidate) => env.isFile(candidate));
}

/** Finds `name` on PATH the way a shell would. */
export function findOnPath(name: string, env: ResolveEnv): string | undefined {
  const p = pathApi(env.platform);
  const separator = env.platform === 'win32' ? ';' : ':';
  for (const dir of env.pathEnv.split(separator).filter(Boolean)) {
    for (const file of executableNames(name, env.platform)) {
      const candidate = p.join(dir, file);
      if (env.isFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/**
 * Resolves the server command, first match wins:
 * 1. `repolsp.server.path`; 2. `repolsp.server.pythonPath` (its `lsp-serve`, else
 * `python -m repolsp.server`); 3. a workspace virtualenv (`.venv`, `venv`, `env`);
 * 4. the Python extension's interpreter, when `lsp-serve` is installed next to it; 5. PATH.
 * A setting that points nowhere is an error rather than a silent fall-through, so the user
 * learns their setting is wrong.
 */
export function resolveServerCommand(settings: ServerLaunchSettings, env: ResolveEnv): Resolution {
  const extra = settings.extraArgs ?? [];
  const p = pathApi(env.platform);
  const tried: string[] = [];

  const explicit = settings.path?.trim();
  if (explicit) {
    const found = p.isAbsolute(explicit) ? (env.isFile(explicit) ? explicit : undefined)
      : findOnPath(explicit, env);
    if (found) return { ok: true, server: { command: found, args: extra, source: 'setting' } };
    return {
      ok: false,
      message: `repolsp.server.path is set to "${explicit}", but no such executable exists.`,
      tried: [explicit],
    };
  }

  const python = settings.pythonPath?.trim();
  if (python) {
    const interpreter = p.isAbsolute(python) ? (env.isFile(python) ? python : undefined)
      : findOnPath(python, env);
    if (!interpreter) {
      return {
        ok: false,
        message: `repolsp.server.pythonPath is set to "${python}", but no such interpreter exists.`,
        tried: [python],
      };
    }
    const serve = serveNextTo(interpreter, env);
    if (serve) return { ok: true, server: { command: serve, args: extra, source: 'interpreter' } };
    return {
      ok: true,
      server: { command: interpreter, args: ['-m', 'repolsp.server', ...extra], source: 'interpreter' },
    };
  }

  for (const folder of env.workspaceFolders) {
    for (const venv of VENV_DIRS) {
      for (const name of executableNames('lsp-serve', env.platform)) {
        const candidate = p.join(folder, venv, scriptDir(env.platform), name);
        tried.push(candidate);
        if (env.isFile(candidate)) {
          return { ok: true, server: { command: candidate, args: extra, source: 'workspace-venv' } };
        }
      }
    }
  }

  const fromExtension = settings.pythonExtensionInterpreter?.trim();
  if (fromExtension && p.isAbsolute(fromExtension)) {
    const serve = serveNextTo(fromExtension, env);
    tried.push(p.join(p.dirname(fromExtension), 'lsp-serve'));
    if (serve) {
      return { ok: true, server: { command: serve, args: extra, source: 'python-extension' } };
    }
  }

  const onPath = findOnPath('lsp-serve', env);
  tried.push('lsp-serve on PATH');
  if (onPath) return { ok: true, server: { command: onPath, args: extra, source: 'path' } };

  return {
    ok: false,
    message:
      'repolsp: the language server `lsp-serve` was not found. Install it with ' +
      '`pip install repolsp` (or `pip install -e .` in a checkout), into the workspace\'s .venv ' +
      'or onto PATH, or set repolsp.server.path / repolsp.server.pythonPath.',
    tried,
  };
}

/** The command line as one string, for logs and messages. */
export function describeCommand(server: ServerCommand): string {
  return [server.command, ...server.args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ');
}
