// The service builder: YAML templates in a config directory -> service directories in
// a staging directory -> links in the directory a runsvdir scans.
//
//   ConfigRoot  (/etc/servicebuilder.d)  NAME.yaml files, each a map of services
//   StagingRoot (/var/service-stage)     one service directory per service (runit is not
//                                        watching it: a half-written directory is never run)
//   RunitRoot   (/var/service)           links StagingRoot/NAME, the scan directory
//
// Every file is written atomically (a temporary name, then rename) and only when its
// contents or mode change, so applying the same templates twice changes nothing and a
// running service never sees a half-written script. supervise/ is never touched.
//
// As servicebuilder: every service gets ./log/main (0755), given to the account the
// default logger runs as (nobody, through chpst -u), so a logger never needs root to
// write its log. Unlike it: when the builder is not root, the default logger runs as
// the builder's own user (only root can switch users or give files away); a missing
// account nobody is an error for the services of the default logger only; and where
// the default logger writes, files in ./log/main that are someone else's are given
// back to its account at every run (a logger that ran as root before this, rotating
// on until it restarts). That directory belongs to the account, and the builder writes
// its config there: so it never follows a link in it: files are created exclusively,
// read and chowned through their own descriptor.
import { chmodSync, chownSync, closeSync, constants as C, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { ServiceControl } from '../control/types.ts';
import { lookupAccount, type Account } from './account.ts';
import { DEFAULT_LOG_USER, LOG_MAIN, MANAGED, parseTemplates, renderService, TemplateError, type RestartPolicy, type ServiceTemplate, type Templates } from './template.ts';

/** The three directories of the builder (servicebuilder's -c, -s and -d). */
export interface BuilderRoots {
  /** where the YAML templates are (servicebuilder -c) */
  configRoot: string;
  /** where service directories are made (servicebuilder -s) */
  stagingRoot: string;
  /** the directory runsvdir scans, where services are linked (servicebuilder -d) */
  runitRoot: string;
}

/** servicebuilder's customary directories. */
export const DEFAULT_ROOTS: BuilderRoots = {
  configRoot: '/etc/servicebuilder.d',
  stagingRoot: '/var/service-stage',
  runitRoot: '/var/service',
};

/** How long pruning waits for a retired service to stop before it kills it, in ms. */
export const DEFAULT_PRUNE_TIMEOUT_MS = 7000;

/** The builder's collaborators: how it stops retired services and where it reports. */
export interface BuilderOptions {
  /** used to stop services that prune() retires (required for prune) */
  control?: ServiceControl;
  /** one line per change made (default: none) */
  log?: (line: string) => void;
  /** how long a retired service may take to stop (default 7000 ms, then it is killed) */
  pruneTimeoutMs?: number;
  /**
   * the account the default logger runs as (chpst -u) and ./log/main is given to; null:
   * the builder's own (no chpst -u, no chown). Default: nobody when the builder runs as
   * root (servicebuilder's), else the builder's own user.
   */
  logUser?: string | null;
}

/** A template and the file it came from. */
export interface LoadedTemplate {
  template: ServiceTemplate;
  file: string;
}

/** Every template of the config directory, and the files that could not be read. */
export interface LoadResult {
  templates: Map<string, LoadedTemplate>;
  /** one per file that could not be used (the other files still load) */
  errors: TemplateError[];
}

/** What one run changed, and what could not be applied. */
export interface ApplyResult {
  /** service directories with at least one file changed */
  staged: string[];
  /** services newly linked into the scan directory */
  activated: string[];
  /** services stopped and removed */
  pruned: string[];
  /** files (or services) that could not be applied */
  errors: Error[];
  /** pruning is skipped when a file failed: its services must not be taken for retired */
  pruneSkipped: boolean;
}

const TEMPLATE_FILE = /\.ya?ml$/;

/** The mode of ./log/main (servicebuilder's): its account writes, everyone reads. */
const LOG_MAIN_MODE = 0o755;

/** Opening a file for a look at it: never through a symbolic link, never waiting on a FIFO. */
const OPEN_LOOK = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/** The errors of opening something that is not (or no longer) a plain file to look at. */
const NOT_A_FILE = new Set(['ENOENT', 'ELOOP', 'ENXIO']);

/** The error says the file is not there. */
function isMissing(e: unknown): boolean {
  return (e as { code?: string }).code === 'ENOENT';
}

/** Open `path` with OPEN_LOOK; undefined if it is gone or is not a file that opens so. */
function openLook(path: string): number | undefined {
  try {
    return openSync(path, OPEN_LOOK);
  } catch (e) {
    if (NOT_A_FILE.has((e as { code?: string }).code ?? '')) return undefined;
    throw e;
  }
}

/** `path` is a regular file (not a link) of this mode and contents. */
function sameFile(path: string, data: string, mode: number): boolean {
  const fd = openLook(path);
  if (fd === undefined) return false;
  try {
    const st = fstatSync(fd);
    return st.isFile() && (st.mode & 0o7777) === mode && st.size === Buffer.byteLength(data) && readFileSync(fd, 'utf8') === data;
  } finally {
    closeSync(fd);
  }
}

/** Write `data` to `path` (mode `mode`) only if it differs; atomically. True if written. */
function writeIfChanged(path: string, data: string, mode: number): boolean {
  if (sameFile(path, data, mode)) return false;
  const tmp = join(dirname(path), `.${path.slice(dirname(path).length + 1)}.sb-new`);
  rmSync(tmp, { force: true }); // left by a run that died (unlink: a link itself goes)
  const fd = openSync(tmp, 'wx', mode); // exclusive: never through a link put there
  try {
    writeFileSync(fd, data);
    fchmodSync(fd, mode); // the umask must not decide a script's mode
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return true;
}

/**
 * Give a regular file with one link to `account`, through its own descriptor: a symbolic
 * link, a hard link to a file elsewhere or a file swapped in meanwhile changes nothing.
 * True if it changed owner.
 */
function giveFile(path: string, account: Account): boolean {
  const fd = openLook(path);
  if (fd === undefined) return false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1 || st.uid === account.uid) return false;
    fchownSync(fd, account.uid, account.gid);
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Our own files in ./log/main, which stay the builder's: its config (and the temporary). */
const BUILDER_OWNED = /^(config|\..*)$/;

/**
 * Turns templates into service directories in the staging directory, links them into
 * the scan directory and retires those no template describes (servicebuilder's
 * Activate, Prune and the whole run as apply()).
 */
export class ServiceBuilder {
  readonly roots: BuilderRoots;
  private readonly opts: BuilderOptions;

  constructor(roots: Partial<BuilderRoots> = {}, opts: BuilderOptions = {}) {
    this.roots = {
      configRoot: resolve(roots.configRoot ?? DEFAULT_ROOTS.configRoot),
      stagingRoot: resolve(roots.stagingRoot ?? DEFAULT_ROOTS.stagingRoot),
      runitRoot: resolve(roots.runitRoot ?? DEFAULT_ROOTS.runitRoot),
    };
    this.opts = opts;
  }

  private say(line: string): void {
    this.opts.log?.(line);
  }

  /** Who the default logger runs as (see BuilderOptions.logUser); undefined: the builder's own user. */
  private logUserName(): string | undefined {
    if (this.opts.logUser !== undefined) return this.opts.logUser ?? undefined;
    return process.geteuid?.() === 0 ? DEFAULT_LOG_USER : undefined;
  }

  /**
   * Make ./log/main (0755, `account`'s). For the default logger (which runs as `account`)
   * also give the directory and the logger's files in it back to it where they are
   * someone else's. True if anything changed.
   */
  private logMain(path: string, account: Account | undefined, defaultLogger: boolean): boolean {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) {
      mkdirSync(path, { mode: LOG_MAIN_MODE });
      chmodSync(path, LOG_MAIN_MODE); // not the umask's
      if (account) chownSync(path, account.uid, account.gid);
      return true;
    }
    if (!st.isDirectory()) throw new Error(`${path}: exists and is not a directory`);
    if (!defaultLogger || !account) return false; // a logger of the template's own: left as it is
    let changed = false;
    if (st.uid !== account.uid) {
      chownSync(path, account.uid, account.gid); // log/ is the builder's: the account cannot swap this directory
      changed = true;
    }
    for (const e of readdirSync(path)) {
      if (BUILDER_OWNED.test(e)) continue;
      const f = join(path, e);
      if (lstatSync(f, { throwIfNoEntry: false })?.uid === account.uid) continue;
      if (giveFile(f, account)) changed = true;
    }
    return changed;
  }

  /** Read every *.yaml / *.yml in the config directory; a bad file is an error, not a stop. */
  loadConfigDir(): LoadResult {
    const templates = new Map<string, LoadedTemplate>();
    const errors: TemplateError[] = [];
    for (const name of readdirSync(this.roots.configRoot).filter((n) => TEMPLATE_FILE.test(n) && !n.startsWith('.')).sort()) {
      const file = join(this.roots.configRoot, name);
      let parsed: Templates;
      try {
        parsed = parseTemplates(readFileSync(file, 'utf8'), file);
      } catch (e) {
        errors.push(e instanceof TemplateError ? e : new TemplateError(file, (e as Error).message));
        continue;
      }
      for (const [svc, template] of Object.entries(parsed)) {
        const prev = templates.get(svc);
        if (prev) errors.push(new TemplateError(file, `${svc}: already defined in ${prev.file}`));
        else templates.set(svc, { template, file });
      }
    }
    return { templates, errors };
  }

  /** The service directory of `name` in the staging directory. */
  stageDir(name: string): string {
    return join(this.roots.stagingRoot, name);
  }

  /** Make or update one service directory; returns the files it changed ("log/main/": that directory). */
  stage(name: string, template: ServiceTemplate): string[] {
    const dir = this.stageDir(name);
    const user = this.logUserName();
    const account = user === undefined ? undefined : lookupAccount(user);
    if (user !== undefined && !account && !template.log) {
      throw new Error(`the default logger's user '${user}' does not exist (add the account, or give the service a log: of its own)`);
    }
    const { files, dirs } = renderService(name, template, { logUser: account?.name });
    mkdirSync(dir, { recursive: true });
    const changed: string[] = [];
    for (const d of dirs) {
      if (d !== LOG_MAIN) mkdirSync(join(dir, d), { recursive: true });
      else if (this.logMain(join(dir, d), account, !template.log)) changed.push(`${LOG_MAIN}/`);
    }
    if ([...files.keys()].some((f) => f.startsWith('env/'))) mkdirSync(join(dir, 'env'), { recursive: true });
    for (const [rel, f] of files) if (writeIfChanged(join(dir, rel), f.data, f.mode)) changed.push(rel);
    // what an earlier version of the template wrote and this one does not
    const stale = MANAGED.filter((rel) => !files.has(rel));
    try {
      for (const e of readdirSync(join(dir, 'env'))) if (!files.has(`env/${e}`)) stale.push(`env/${e}`);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    for (const rel of stale) {
      try {
        unlinkSync(join(dir, rel));
        changed.push(`-${rel}`);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    }
    if (changed.length) this.say(`${name}: staged ${changed.join(' ')}`);
    return changed;
  }

  /** Link a staged service into the scan directory (atomically); false if already linked. */
  activate(name: string): boolean {
    const link = join(this.roots.runitRoot, name);
    const target = this.stageDir(name);
    try {
      const st = lstatSync(link);
      if (!st.isSymbolicLink()) throw new Error(`${link}: exists and is not a link to ${target}`);
      const to = readlinkSync(link);
      if (resolve(this.roots.runitRoot, to) !== target) throw new Error(`${link}: links to ${to}, not ${target}`);
      return false;
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    // runsvdir ignores names starting with '.', so the link appears complete or not at all
    const tmp = join(this.roots.runitRoot, `.${name}.sb-new`);
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    renameSync(tmp, link);
    this.say(`${name}: activated`);
    return true;
  }

  /**
   * servicebuilder's Activate: write the templates to CONFIG/<file>.yaml, stage every
   * service and link it. `restart` overrides each template's restart policy when given;
   * it is written into the file with them, so every later apply stages the same.
   */
  activateTemplates(file: string, templates: Templates, restart?: RestartPolicy): ApplyResult {
    const result: ApplyResult = { staged: [], activated: [], pruned: [], errors: [], pruneSkipped: false };
    const path = join(this.roots.configRoot, `${file}.yaml`);
    const stored = restart ? Object.fromEntries(Object.entries(templates).map(([name, t]) => [name, { ...t, restart }])) : templates;
    // validate by parsing what is written, so a template that could not be read back is never stored
    const text = Object.keys(stored).length ? stringify(stored) : '';
    const parsed = parseTemplates(text, path);
    mkdirSync(this.roots.configRoot, { recursive: true });
    if (text) writeIfChanged(path, text, 0o644);
    else rmSync(path, { force: true });
    for (const [name, t] of Object.entries(parsed)) {
      if (this.stage(name, t).length) result.staged.push(name);
      if (this.activate(name)) result.activated.push(name);
    }
    return result;
  }

  /**
   * Stop and remove every staged service no template describes: unlink it from the scan
   * directory, stop it and its runsv (sv exit semantics: TERM, CONT, then KILL after
   * the timeout), then remove its directory. Links that are not into the staging
   * directory are never touched.
   */
  async prune(described: ReadonlySet<string>): Promise<string[]> {
    const control = this.opts.control;
    if (!control) throw new Error('prune needs a ServiceControl to stop retired services');
    const pruned: string[] = [];
    let staged: string[] = [];
    try {
      staged = readdirSync(this.roots.stagingRoot).filter((n) => !n.startsWith('.'));
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    for (const name of staged.sort()) {
      if (described.has(name)) continue;
      const dir = this.stageDir(name);
      if (!statSync(dir).isDirectory()) continue;
      const link = join(this.roots.runitRoot, name);
      try {
        if (lstatSync(link).isSymbolicLink() && resolve(this.roots.runitRoot, readlinkSync(link)) === dir) unlinkSync(link);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
      try {
        await control.exit(dir, { timeoutMs: this.opts.pruneTimeoutMs ?? DEFAULT_PRUNE_TIMEOUT_MS, kill: true });
      } catch (e) {
        const reason = (e as { reason?: string }).reason;
        // never supervised, or its runsv already gone: nothing to stop
        if (reason !== 'not-running' && reason !== 'no-supervise') throw e;
      }
      rmSync(dir, { recursive: true, force: true });
      this.say(`${name}: pruned`);
      pruned.push(name);
    }
    return pruned;
  }

  /** The whole run: load the config directory, stage and activate everything, prune the rest. */
  async apply(opts: { prune?: boolean } = {}): Promise<ApplyResult> {
    const { templates, errors } = this.loadConfigDir();
    const result: ApplyResult = { staged: [], activated: [], pruned: [], errors: [...errors], pruneSkipped: false };
    mkdirSync(this.roots.stagingRoot, { recursive: true });
    for (const [name, { template, file }] of templates) {
      try {
        if (this.stage(name, template).length) result.staged.push(name);
        if (this.activate(name)) result.activated.push(name);
      } catch (e) {
        result.errors.push(new TemplateError(file, `${name}: ${(e as Error).message}`));
      }
    }
    if (opts.prune ?? true) {
      if (errors.length) {
        result.pruneSkipped = true;
        this.say('not pruning: a template file could not be read');
      } else result.pruned = await this.prune(new Set(templates.keys()));
    }
    return result;
  }
}
