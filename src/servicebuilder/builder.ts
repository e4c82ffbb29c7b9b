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
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { ServiceControl } from '../control/types.ts';
import { MANAGED, parseTemplates, renderService, TemplateError, type RestartPolicy, type ServiceTemplate, type Templates } from './template.ts';

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

/** Write `data` to `path` (mode `mode`) only if it differs; atomically. True if written. */
function writeIfChanged(path: string, data: string, mode: number): boolean {
  try {
    const st = statSync(path);
    if (st.isFile() && (st.mode & 0o7777) === mode && readFileSync(path, 'utf8') === data) return false;
  } catch {
    /* absent: write it */
  }
  const tmp = join(dirname(path), `.${path.slice(dirname(path).length + 1)}.sb-new`);
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode); // the umask must not decide a script's mode
  renameSync(tmp, path);
  return true;
}

function isMissing(e: unknown): boolean {
  return (e as { code?: string }).code === 'ENOENT';
}

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

  /** Make or update one service directory; returns the files it changed. */
  stage(name: string, template: ServiceTemplate): string[] {
    const dir = this.stageDir(name);
    const { files, dirs } = renderService(name, template);
    mkdirSync(dir, { recursive: true });
    for (const d of dirs) mkdirSync(join(dir, d), { recursive: true });
    const changed: string[] = [];
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
   * service and link it. `restart` overrides each template's restart policy when given.
   */
  activateTemplates(file: string, templates: Templates, restart?: RestartPolicy): ApplyResult {
    const result: ApplyResult = { staged: [], activated: [], pruned: [], errors: [], pruneSkipped: false };
    const path = join(this.roots.configRoot, `${file}.yaml`);
    // validate by parsing what is written, so a template that could not be read back is never stored
    const text = Object.keys(templates).length ? stringify(templates) : '';
    const parsed = parseTemplates(text, path);
    mkdirSync(this.roots.configRoot, { recursive: true });
    if (text) writeIfChanged(path, text, 0o644);
    else rmSync(path, { force: true });
    for (const [name, t] of Object.entries(parsed)) {
      if (this.stage(name, restart ? { ...t, restart } : t).length) result.staged.push(name);
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
