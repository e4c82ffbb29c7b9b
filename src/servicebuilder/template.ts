// Service templates in servicebuilder's YAML format, and the service directory each
// one becomes.
//
// A file maps service names to templates:
//
//   web:
//     run: [python3, -m, http.server, "8080"]
//     log: [svlogd, -tt, ./main]        # optional; default: chpst -u nobody svlogd -tt ./main
//     finish: [logger, web stopped]     # optional
//     sleep: 2                          # seconds before run execs (default 2)
//     logsleep: 0                       # the same for log/run (default 0, see below)
//     # fields of our own, all optional:
//     env: { PORT: "8080" }             # an envdir read by chpst -e
//     user: www-data                    # chpst -u (user[:group])
//     cwd: /srv/web                     # working directory of run
//     restart: always                   # or never: a down file, started only by hand
//     log_config: [s1000000, n5]        # svlogd's config file in the default log dir
//
// The scripts are /bin/sh scripts whose argument vectors are quoted for the shell, so
// an argument reaches the program exactly as written in the YAML. Every service gets the
// log directory ./log/main, whatever its logger (as servicebuilder makes it); who owns it
// and who the default logger runs as is the builder's to decide (builder.ts).
import { Ajv, type ErrorObject } from 'ajv';
import { oneLine, parseYaml } from '../lib/schema.ts';

/** always: runit restarts the service when it exits; never: a down file, started only by hand. */
export type RestartPolicy = 'always' | 'never';

/** One service as the YAML describes it. */
export interface ServiceTemplate {
  /** argv of the service; run by ./run through exec */
  run: string[];
  /** argv of the logger (run in ./log with the service's output on stdin); default `chpst -u nobody svlogd -tt ./main` */
  log?: string[];
  /** argv of ./finish, run each time the service exits */
  finish?: string[];
  /** seconds ./run sleeps before it execs the service (servicebuilder's default: 2) */
  sleep?: number;
  /**
   * seconds ./log/run sleeps before it execs the logger (default 0, where servicebuilder
   * slept 2: a log/run that is only `exec svlogd ...` (a logger of the template's own
   * run as root) runs inside our supervisor, costing no process, and runsv's own
   * one-second throttle already stops a crash loop)
   */
  logsleep?: number;
  /** environment for the service: written as an envdir (./env), applied by chpst -e */
  env?: Record<string, string>;
  /** account the service runs as (chpst -u user[:group]) */
  user?: string;
  /** working directory of the service */
  cwd?: string;
  /** always (default): runit restarts the service; never: a down file, so it is only started by hand */
  restart?: RestartPolicy;
  /** lines of svlogd's config file ./log/main/config (written for the default logger only) */
  log_config?: string[];
}

/** Templates by service name, as one file holds them. */
export type Templates = Record<string, ServiceTemplate>;

/** The default servicebuilder sleep before exec, in seconds. */
export const DEFAULT_SLEEP_S = 2;
/** The default sleep before the logger execs, in seconds (see ServiceTemplate.logsleep). */
export const DEFAULT_LOGSLEEP_S = 0;
/** The default logger: svlogd with human-readable stamps into ./main (run in ./log). */
export const DEFAULT_LOG = ['svlogd', '-tt', './main'];
/** Where the default logger writes, relative to ./log. */
export const DEFAULT_LOG_DIR = 'main';
/** The log directory every service gets, relative to the service directory. */
export const LOG_MAIN = `log/${DEFAULT_LOG_DIR}`;
/** The account servicebuilder runs its default logger as, and gives ./log/main to. */
export const DEFAULT_LOG_USER = 'nobody';

/** The default logger's argv: as `logUser` (chpst -u) when given, else as whoever runs ./log/run. */
export function defaultLog(logUser?: string): string[] {
  return logUser === undefined ? DEFAULT_LOG : ['chpst', '-u', logUser, ...DEFAULT_LOG];
}

const argv = { type: 'array', minItems: 1, items: { type: 'string' } } as const;
const seconds = { type: 'integer', minimum: 0, maximum: 86400 } as const;
const SCHEMA = {
  type: 'object',
  propertyNames: { pattern: '^[^/\\x00.][^/\\x00]*$' },
  additionalProperties: {
    type: 'object',
    required: ['run'],
    additionalProperties: false,
    properties: {
      run: argv,
      log: argv,
      finish: argv,
      sleep: seconds,
      logsleep: seconds,
      env: { type: 'object', propertyNames: { pattern: '^[^=.\\x00/][^=\\x00/]*$' }, additionalProperties: { type: 'string' } },
      user: { type: 'string', pattern: '^[^\\s:][^\\s]*$' },
      cwd: { type: 'string', pattern: '^/' },
      restart: { enum: ['always', 'never'] },
      log_config: { type: 'array', items: { type: 'string', pattern: '^[^\\n]*$' } },
    },
  },
} as const;

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(v: unknown): ErrorObject[] {
  validator ??= new Ajv({ allErrors: true, strict: true }).compile(SCHEMA);
  return validator(v) ? [] : (validator.errors ?? []);
}

/** Problems with a template file, one line each: `file: where: what`. */
export class TemplateError extends Error {
  readonly file: string;
  /** problems: one, or several (a line each); a line break or control character in one is escaped (oneLine) */
  constructor(file: string, problems: string | string[]) {
    super((Array.isArray(problems) ? problems : [problems]).map((p) => `${file}: ${oneLine(p)}`).join('\n'));
    this.name = 'TemplateError';
    this.file = file;
  }
}

// "/web/run/0" -> "web.run[0]": the path a user reads in the YAML
function where(path: string): string {
  const parts = path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let s = '';
  for (const p of parts) s += /^\d+$/.test(p) && s ? `[${p}]` : (s ? '.' : '') + p;
  return s;
}

function describe(e: ErrorObject): string {
  const at = where(e.instancePath);
  const prefix = at ? `${at}: ` : '';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${prefix}unknown key '${String(e.params.additionalProperty)}'`;
    case 'required':
      return `${prefix}missing '${String(e.params.missingProperty)}'`;
    case 'propertyNames':
      return `${prefix}bad name '${String(e.params.propertyName)}' (no '/', NUL or leading '.')`;
    case 'type':
      return `${prefix}must be ${e.params.type === 'array' ? 'a list' : e.params.type === 'object' ? 'a mapping' : `a ${String(e.params.type)}`}`;
    case 'minItems':
      return `${prefix}must not be empty`;
    case 'enum':
      return `${prefix}must be one of ${(e.params.allowedValues as string[]).join(', ')}`;
    case 'minimum':
    case 'maximum':
      return `${prefix}must be a number of seconds from 0 to 86400`;
    case 'pattern':
      return `${prefix}${at.endsWith('cwd') ? 'must be an absolute path' : at.endsWith('user') ? 'must be user[:group]' : 'must be a single line'}`;
    default:
      return `${prefix}${e.message ?? 'invalid'}`;
  }
}

/**
 * Problems named for one file at most, then one line says how many more: a list of
 * thousands of wrong items would otherwise be thousands of lines.
 */
export const MAX_PROBLEMS = 10;

/**
 * Parse and validate one file's text. Throws TemplateError naming the file, the
 * field and what was expected (every problem of the file, one per line, up to
 * MAX_PROBLEMS and a line for the rest).
 */
export function parseTemplates(text: string, file: string): Templates {
  const parsed = parseYaml(text);
  if ('problem' in parsed) {
    const { line, message } = parsed.problem;
    throw new TemplateError(file, `${line ? `line ${line}: ` : ''}${message.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const value: unknown = parsed.data ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new TemplateError(file, 'must be a mapping of service names to templates');
  const errors = validate(value);
  // a bad name also fails the name's own sub-schema: report it once, as a name
  const own = errors.filter((e) => (e as { propertyName?: string }).propertyName === undefined);
  const problems = [...new Set(own.map(describe))];
  if (problems.length > MAX_PROBLEMS) problems.splice(MAX_PROBLEMS, Infinity, `and ${problems.length - MAX_PROBLEMS} more problems`);
  if (problems.length) throw new TemplateError(file, problems);
  return value as Templates;
}

/** Quote a word for /bin/sh: exactly this string, one argument. */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const HEADER = (name: string) => `# made by servicebuilder from the template of ${name}; edits are overwritten\n`;

/** The files of a service directory: relative path -> contents (scripts get 0755). */
export interface ServiceFiles {
  files: Map<string, { data: string; mode: number }>;
  /** directories to create (log, then log/main) */
  dirs: string[];
}

/** How a template is rendered beyond what it says itself. */
export interface RenderOptions {
  /** the account the default logger runs as (chpst -u); default: whoever runs ./log/run */
  logUser?: string;
}

/** What the template of `name` turns into on disk. */
export function renderService(name: string, t: ServiceTemplate, opts: RenderOptions = {}): ServiceFiles {
  const files = new Map<string, { data: string; mode: number }>();
  const sleep = t.sleep ?? DEFAULT_SLEEP_S;
  const chpst: string[] = [];
  if (t.env && Object.keys(t.env).length) chpst.push('-e', '"$envdir"');
  if (t.user) chpst.push('-u', shellQuote(t.user));
  let run = `#!/bin/sh\n${HEADER(name)}exec 2>&1\n`;
  if (sleep > 0) run += `sleep ${sleep}\n`;
  if (chpst.length) run += 'envdir="$PWD/env"\n';
  if (t.cwd) run += `cd ${shellQuote(t.cwd)} || exit 111\n`;
  run += `exec ${chpst.length ? `chpst ${chpst.join(' ')} ` : ''}${t.run.map(shellQuote).join(' ')}\n`;
  files.set('run', { data: run, mode: 0o755 });
  for (const [k, v] of Object.entries(t.env ?? {})) files.set(`env/${k}`, { data: v + '\n', mode: 0o644 });

  const logsleep = t.logsleep ?? DEFAULT_LOGSLEEP_S;
  // "exec svlogd ..." with nothing else is the form our supervisor runs in-process (the
  // default logger switches user first, through chpst: a process of its own)
  let log = `#!/bin/sh\n${HEADER(name)}`;
  if (logsleep > 0) log += `sleep ${logsleep}\n`;
  log += `exec ${(t.log ?? defaultLog(opts.logUser)).map(shellQuote).join(' ')}\n`;
  files.set('log/run', { data: log, mode: 0o755 });
  // servicebuilder makes ./log/main for every service: a logger of the usual shape
  // (svlogd ./main) of the template's own finds its directory too
  const dirs = ['log', LOG_MAIN];
  if (!t.log && t.log_config?.length) files.set(`${LOG_MAIN}/config`, { data: t.log_config.join('\n') + '\n', mode: 0o644 });
  if (t.finish) files.set('finish', { data: `#!/bin/sh\n${HEADER(name)}exec ${t.finish.map(shellQuote).join(' ')}\n`, mode: 0o755 });
  if ((t.restart ?? 'always') === 'never') files.set('down', { data: '', mode: 0o644 });
  return { files, dirs };
}

/** The files a template may have written that this one does not (removed on restage). */
export const MANAGED = ['run', 'finish', 'down', 'log/run', `${LOG_MAIN}/config`];
