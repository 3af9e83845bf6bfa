// Status formatting: the `repolsp.status` command's result -> status bar text, tooltip and the
// "Show status" report. Pure, so it is unit-tested without an editor.

export type ServerState = 'loading' | 'ready' | 'training' | 'error';

/** What `repolsp.status` returns, after validation. */
export interface ServerStatus {
  model: string;
  engine: string;
  state: ServerState;
  latencyMs: { p50: number | null; p95: number | null; count: number };
  cacheHitRate: number | null;
  /** Optional free-text detail (an error message, a training step). */
  message?: string;
  /** Optional list of models the server can switch to. */
  models?: string[];
  /** The gain `lsp-train` measured for the served model, one line (servedModel.summary). */
  gain?: string;
  /** Path of the newest training report (markdown, its chart beside it). */
  trainingReport?: string;
}

/** The client's own view of the connection, shown when no server status is available. */
export type ClientPhase = 'starting' | 'running' | 'stopped' | 'missing' | 'failed';

const STATES: readonly ServerState[] = ['loading', 'ready', 'training', 'error'];

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Validates the raw `repolsp.status` result; undefined when it is not a status object. */
export function parseStatus(raw: unknown): ServerStatus | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const state = typeof r.state === 'string' && (STATES as readonly string[]).includes(r.state)
    ? (r.state as ServerState) : undefined;
  if (!state) return undefined;
  const latency = (typeof r.latencyMs === 'object' && r.latencyMs !== null
    ? r.latencyMs : {}) as Record<string, unknown>;
  const status: ServerStatus = {
    model: typeof r.model === 'string' ? r.model : '',
    engine: typeof r.engine === 'string' ? r.engine : '',
    state,
    latencyMs: {
      p50: numberOrNull(latency.p50),
      p95: numberOrNull(latency.p95),
      count: numberOrNull(latency.count) ?? 0,
    },
    cacheHitRate: numberOrNull(r.cacheHitRate),
  };
  // The server reports a failure in `error`; `message` is free text (a training step).
  if (typeof r.error === 'string' && r.error) status.message = r.error;
  else if (typeof r.message === 'string' && r.message) status.message = r.message;
  if (Array.isArray(r.models)) status.models = r.models.filter((m): m is string => typeof m === 'string');
  const served = (typeof r.servedModel === 'object' && r.servedModel !== null
    ? r.servedModel : {}) as Record<string, unknown>;
  if (typeof served.summary === 'string' && served.summary) status.gain = served.summary;
  if (typeof r.trainingReport === 'string' && r.trainingReport) status.trainingReport = r.trainingReport;
  return status;
}

/** A model path or id shortened to its last component and at most `maxChars` characters. */
export function shortModelName(model: string, maxChars = 28): string {
  const trimmed = model.replace(/[\\/]+$/, '');
  const last = trimmed.split(/[\\/]/).pop() || trimmed || 'no model';
  return last.length <= maxChars ? last : `${last.slice(0, maxChars - 1)}…`;
}

/** Milliseconds as a short human string: "84 ms", "1.2 s". */
export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Text and tooltip of the status bar item. */
export interface StatusBarView {
  text: string;
  tooltip: string;
  /** True when the item should use the warning/error background. */
  alert: boolean;
}

/** The status bar item for a server status, or for the client's phase when there is none. */
export function formatStatusBar(status: ServerStatus | undefined, phase: ClientPhase): StatusBarView {
  if (!status || phase !== 'running') {
    switch (phase) {
      case 'starting':
        return { text: '$(loading~spin) repolsp', tooltip: 'repolsp: starting the language server…', alert: false };
      case 'missing':
        return { text: '$(warning) repolsp: no server', tooltip: 'repolsp: `lsp-serve` was not found. Click for details.', alert: true };
      case 'failed':
        return { text: '$(error) repolsp', tooltip: 'repolsp: the language server stopped. Click for details.', alert: true };
      case 'stopped':
        return { text: '$(circle-slash) repolsp', tooltip: 'repolsp: the language server is stopped.', alert: false };
      default:
        return { text: '$(loading~spin) repolsp', tooltip: 'repolsp: waiting for the server status…', alert: false };
    }
  }
  const model = shortModelName(status.model);
  const tooltip = formatStatusReport(status);
  switch (status.state) {
    case 'loading':
      return { text: `$(loading~spin) ${model}: loading`, tooltip, alert: false };
    case 'training':
      return { text: `$(sync~spin) ${model}: training`, tooltip, alert: false };
    case 'error':
      return { text: `$(error) ${model}: error`, tooltip, alert: true };
    default: {
      const latency = status.latencyMs.count > 0 ? ` ${formatMs(status.latencyMs.p50)}` : '';
      return { text: `$(sparkle) ${model}${latency}`, tooltip, alert: false };
    }
  }
}

/** A multi-line report for "repolsp: Show status" and the status bar tooltip. */
export function formatStatusReport(status: ServerStatus): string {
  const lines = [
    `repolsp: ${status.state}`,
    `model: ${status.model || '(none)'}`,
    `engine: ${status.engine || '(unknown)'}`,
  ];
  const { p50, p95, count } = status.latencyMs;
  lines.push(
    count > 0
      ? `latency: p50 ${formatMs(p50)}, p95 ${formatMs(p95)} over ${count} completion${count === 1 ? '' : 's'}`
      : 'latency: no completions yet',
  );
  if (status.cacheHitRate !== null) lines.push(`prompt cache hit rate: ${Math.round(status.cacheHitRate * 100)}%`);
  if (status.gain) lines.push(`measured gain: ${status.gain}`);
  if (status.message) lines.push(status.message);
  return lines.join('\n');
}
