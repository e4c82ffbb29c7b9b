// /etc/fstab for stage 1 on a root file system that has one (a Debian system's disk; the
// busybox images have none, and nothing changes there): / is remounted as its line says
// (read-write unless it says ro), the other file systems are mounted (`mount -a`) and swap
// is enabled (`swapon -a`). util-linux's mount(8) and swapon(8) do the work, not a parser
// of ours: they resolve UUID=/LABEL=/PARTUUID= without udev, know every option (noauto,
// nofail, x-*, user-space helpers such as mount.nfs), skip what is mounted already, and merge
// the fstab line's options into the remount of /. Stage 1 reads the file only to know
// what to ask for.
import { existsSync, readFileSync } from 'node:fs';
import { errLine, withCause } from '../src/lib/diag.ts';

export const FSTAB = '/etc/fstab';
/** util-linux's tools, where Debian has them (/bin and /sbin are /usr's on a merged system). */
export const MOUNT = '/bin/mount';
export const SWAPON = '/sbin/swapon';

/** One line of fstab(5); `file` with its octal escapes (\040) decoded. */
export interface FstabEntry {
  spec: string;
  file: string;
  type: string;
  options: string[];
}

/** fstab's \NNN escapes (a space is \040). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The entries of an fstab: blank lines and comments skipped, options "defaults" when left out. */
export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (fields.length < 3) continue;
    const [spec, file, type, options = 'defaults'] = fields as [string, string, string, string?];
    out.push({ spec: unescape(spec), file: unescape(file), type, options: options.split(',') });
  }
  return out;
}

/** ro or rw as mount(8) reads the options: the last of the two wins, rw by default. */
export function readOnly(options: string[]): boolean {
  const last = options.filter((o) => o === 'ro' || o === 'rw').pop();
  return last === 'ro';
}

/** The commands (argv) that carry out an fstab, in order: remount /, mount -a, swapon -a. */
export function fstabCommands(entries: FstabEntry[], tools = { mount: MOUNT, swapon: SWAPON }): string[][] {
  const cmds: string[][] = [];
  const auto = entries.filter((e) => !e.options.includes('noauto'));
  const root = entries.filter((e) => e.file === '/').pop();
  if (root) cmds.push([tools.mount, '-o', `remount,${readOnly(root.options) ? 'ro' : 'rw'}`, '/']);
  if (auto.some((e) => e.file !== '/' && e.type !== 'swap')) cmds.push([tools.mount, '-a']);
  if (auto.some((e) => e.type === 'swap')) cmds.push([tools.swapon, '-a']);
  return cmds;
}

/**
 * Carry out the fstab at `path`, if there is one with entries: each command on the console,
 * its failure reported as "stage 1: ..." (the boot goes on). Returns the commands run.
 */
export function mountFstab(path = FSTAB): string[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') errLine(`stage 1: ${withCause(`unable to read ${path}`, e)}`);
    return [];
  }
  const cmds = fstabCommands(parseFstab(text));
  // loaded only here: a root without fstab entries (every busybox image) never pays for it
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  for (const [tool, ...args] of cmds) {
    if (!existsSync(tool!)) {
      errLine(`stage 1: ${path} asks for ${tool} ${args.join(' ')}, but ${tool} is missing`);
      continue;
    }
    const r = spawnSync(tool!, args, { stdio: 'inherit' });
    if (r.error) errLine(`stage 1: ${withCause(`unable to run ${tool}`, r.error)}`);
    else if (r.status !== 0) errLine(`stage 1: ${tool} ${args.join(' ')}: ${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}`);
  }
  return cmds;
}
