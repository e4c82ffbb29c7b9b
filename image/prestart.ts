// The boot's prestart plan, /etc/runit-ts/prestart: what PID 1's stage 1 child does
// before it executes stage 1 (image/prestart.c carries it out, src/lib/prestart.ts hands
// the services to the supervisor). Decided here, at build time, from the image's entries:
// stage 1's work when none of it needs a decision at boot (no fstab, not a Debian system,
// no runlevel file), in stage 1's order, and the services of the default runlevel whose
// directory needs nothing of the supervisor to start. The checks at its top make the
// prestart stand down on a system that is no longer what the plan was made for.
import { entryData, resolveParents, sortEntries, type Entry } from '../src/lib/entry.ts';
import { loadOrder, MOUNTS, parseModulesDep, SEED_FILE } from '../stages/stage1.ts';
import { PATH } from '../stages/stage2.ts';
import { sourceDateEpoch } from './epoch.ts';

export const PRESTART_PLAN = 'etc/runit-ts/prestart';

/**
 * What a service directory may hold to be started before the supervisor: ./run, and
 * what the supervisor only reads after the start (./finish, ./log, supervise/). Any
 * other file may change how or whether it starts (down, dependencies.d, waits-for.d,
 * notification-fd, check, control/, ...): such a service is started by the supervisor.
 */
export const PRESTART_ONLY = ['run', 'finish', 'log', 'supervise'];

const SCAN_LINK = 'etc/service';
const RUNLEVEL_FILE = 'etc/runit/default.runsvdir';

/** The image's tree as the kernel would see it: the entries as packed (sortEntries: the last of a path, parents implied), links followed. */
class Tree {
  private readonly byPath = new Map<string, Entry>();
  private readonly links = new Map<string, string>();
  constructor(entries: Entry[]) {
    for (const e of sortEntries(entries)) {
      this.byPath.set(e.path, e);
      if (e.type === 'symlink') this.links.set(e.path, e.target!);
    }
  }
  get(path: string): Entry | undefined {
    return this.byPath.get(path);
  }
  /** The path with every symlink followed, the last component's too. */
  resolve(path: string): string {
    return resolveParents(`${path}/.`, this.links).replace(/\/?\.$/, '');
  }
  /** The names directly in a directory. */
  names(dir: string): string[] {
    const out = new Set<string>();
    for (const k of this.byPath.keys()) if (k.startsWith(dir + '/')) out.add(k.slice(dir.length + 1).split('/')[0]!);
    return [...out].sort();
  }
  isDir(path: string): boolean {
    return this.byPath.get(path)?.type === 'dir';
  }
}

/** A word the plan can carry: no space, no newline, not empty. */
const word = (s: string) => s.length > 0 && !/\s/.test(s);

/**
 * The plan for an image of busybox and our executable (entries: the whole tree, the
 * spec's own files included), or undefined when its boot has nothing to prestart or
 * stage 1 has work that must come first (an fstab, a runlevel chosen by file).
 * `kernelRelease`: the release whose modules stage 1 loads.
 */
export function prestartPlan(entries: Entry[], kernelRelease: string, epoch = sourceDateEpoch()): string | undefined {
  const tree = new Tree(entries);
  if (tree.get('etc/fstab') || tree.get(RUNLEVEL_FILE) || tree.get('etc/debian_version')) return undefined;
  const scanDir = tree.resolve(SCAN_LINK);
  if (!tree.isDir(scanDir)) return undefined;
  const lines = ['# made by the image builder (image/prestart.ts); carried out by PID 1 (image/prestart.c)'];
  lines.push('unless-env runitdir', `absent /etc/fstab`, `absent /${RUNLEVEL_FILE}`, 'absent /etc/debian_version');
  lines.push(`scan /${SCAN_LINK} /${scanDir}`);
  // the modules stage 1 loads, in its order (stages/stage1.ts)
  const modulesFile = tree.get('etc/modules');
  let modules: string[] = [];
  if (modulesFile) {
    lines.push(`same /etc/modules ${epoch}`);
    const names = entryData(modulesFile).toString('utf8').split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((l) => l && !l.startsWith('#'));
    if (names.length) {
      const base = `lib/modules/${kernelRelease}`;
      const dep = tree.get(`${base}/modules.dep`);
      if (!dep) return undefined;
      const { order, missing } = loadOrder(names, parseModulesDep(entryData(dep).toString('utf8')));
      if (missing.length) return undefined;
      modules = order.map((p) => `/${base}/${p}`);
    }
  }
  lines.push(`only ${PRESTART_ONLY.join(' ')}`);
  for (const m of MOUNTS) lines.push(`mount ${m.src} ${m.target} ${m.type} ${m.flags} ${m.data || '-'}`);
  lines.push('hostname /etc/hostname runit-ts');
  for (const m of modules) lines.push(`module ${m}`);
  lines.push('ifup lo', `seed ${SEED_FILE}`, `path ${PATH}`);
  let services = 0;
  for (const name of tree.names(scanDir)) {
    if (name.startsWith('.')) continue;
    const dir = tree.resolve(`${scanDir}/${name}`);
    if (!tree.isDir(dir) || !word(dir) || !word(name)) continue;
    if (!tree.names(dir).every((n) => PRESTART_ONLY.includes(n))) continue;
    const run = tree.get(`${dir}/run`);
    if (!run || run.type !== 'file' || !(run.mode & 0o100)) continue;
    lines.push(`service /${SCAN_LINK}/${name} ${tree.isDir(`${dir}/log`) ? 1 : 0}`);
    services++;
  }
  if (!services || lines.some((l) => l.split(' ').some((w) => !word(w)) && !l.startsWith('#'))) return undefined;
  return lines.join('\n') + '\n';
}
