// The multi-call executable: every tool and stage is an applet chosen by the name it
// was called by (symlinks), or by the first argument when called as runit-ts.
import { resolveCall, SELF, type Applet } from './lib/applet.ts';

export { SELF, type Applet };

/** Applets are loaded lazily, so a short-lived `sv` does not pay for the supervisor. */
export const APPLETS: Record<string, () => Promise<Applet>> = {
  runsvdir: async () => (await import('./runsvdir/main.ts')).main,
  runsv: async () => (await import('./runsv/main.ts')).main,
  // (in V8's interpreter only: src/sv/main.ts's applet)
  sv: async () => (await import('./sv/main.ts')).applet,
  runsvchdir: async () => (await import('./runsvchdir/main.ts')).main,
  'runit-init': async () => (await import('./init/main.ts')).main,
  init: async () => (await import('./init/main.ts')).main,
  '1': async () => (await import('../stages/stage1.ts')).main,
  '2': async () => (await import('../stages/stage2.ts')).main,
  '3': async () => (await import('../stages/stage3.ts')).main,
  ctrlaltdel: async () => (await import('../stages/ctrlaltdel.ts')).main,
  svlogd: async () => (await import('./svlogd/main.ts')).main,
  chpst: async () => (await import('./chpst/main.ts')).main,
  envdir: async () => (await import('./chpst/main.ts')).main,
  envuidgid: async () => (await import('./chpst/main.ts')).main,
  pgrphack: async () => (await import('./chpst/main.ts')).main,
  setlock: async () => (await import('./chpst/main.ts')).main,
  setuidgid: async () => (await import('./chpst/main.ts')).main,
  softlimit: async () => (await import('./chpst/main.ts')).main,
  utmpset: async () => (await import('./utmpset/main.ts')).main,
  'container-init': async () => (await import('./container/init.ts')).main,
  'container-probe': async () => (await import('./container/probe.ts')).main,
  servicebuilder: async () => (await import('./servicebuilder/main.ts')).main,
};

/** Commands of `runit-ts NAME` only (no link of their own: their names are too general). */
export const COMMANDS: Record<string, () => Promise<Applet>> = {
  status: async () => (await import('./control/cli.ts')).status,
  events: async () => (await import('./control/cli.ts')).events,
  wait: async () => (await import('./control/cli.ts')).wait,
  analyze: async () => (await import('./analyze/main.ts')).main,
  sntp: async () => (await import('./sntp/main.ts')).main,
  agent: async () => (await import('./agent/main.ts')).main,
};

/** (a function: made at every start, its regular expression cost a start under emulation ~15 ms) */
export const help = (): string => `usage: runit-ts APPLET [ARGS...]   (or call it through a symlink named APPLET)

A runit-compatible init and supervision suite in one executable.
Applets: ${Object.keys(APPLETS).filter((a) => !/^\d$/.test(a)).join(', ')},
and the runit stages 1, 2, 3 (as /etc/runit/1, /etc/runit/2, /etc/runit/3).
Any other name under an init.d directory acts as 'sv' in LSB mode.
Commands: runit-ts status --json, runit-ts events, runit-ts wait (JSON status,
the supervisor's event stream, waiting for up/ready/down from scripts),
runit-ts analyze (the boot timeline: time, blame, critical-chain, plot).
runit-ts sntp (set the clock from an NTP server).
runit-ts agent (the QEMU harness's guest agent, on a virtio-serial port).
'APPLET --help' describes each.
`;

/** Which applet a command line asks for: [applet, its argv, the argv0 it sees]. */
export function resolveApplet(argv0: string, args: string[]): { name: string; argv: string[]; argv0: string; self?: true } {
  return resolveCall(argv0, args, (name) => Object.hasOwn(APPLETS, name));
}

export async function run(argv0: string, args: string[]): Promise<number> {
  const { name, argv, argv0: a0, self } = resolveApplet(argv0, args);
  if (name === '' || name === '--help' || name === '-h') {
    process.stdout.write(help());
    return name === '' ? 100 : 0;
  }
  const load = APPLETS[name] ?? (self ? COMMANDS[name] : undefined);
  if (!load) {
    process.stderr.write(`${SELF}: unknown applet '${name}' (try: ${SELF} --help)\n`);
    return 100;
  }
  return (await load())(argv, a0);
}
