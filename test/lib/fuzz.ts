// Seeded input generators for the reliability suite's fuzzing (test/host/reliability-inputs.test.ts):
// image specs (image/spec.ts) and service-builder templates (src/servicebuilder), valid
// and invalid: wrong types, unknown fields, bad patterns, deep nesting, huge values,
// YAML syntax errors, alias bombs, bytes that are no text. Deterministic for a seed
// (mulberry32), so a failing input is made again from its seed and index.
import { stringify } from 'yaml';

/** A deterministic random source: mulberry32 of a 32-bit seed. */
export class Rng {
  private s: number;
  /** seed: any integer (taken modulo 2^32) */
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** an integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

/** The generator of input `index` of the run seeded `seed`: the same input every time. */
export function rngFor(seed: number, index: number): Rng {
  return new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const NASTY = ['', ' ', '\t', '\n', '"', "'", ':', '- ', '#', '&a', '*a', '!!', '%', '@', '`', '{', '}', '[', ']', ',', '|', '>', '\\', '\0', '\x7f', 'é', '日本', '😀', '\u202e', '..', '/', '$(id)', '${X}', '~', 'null', 'true', '0x1F', '1e999', '-0', '.nan'];

/** A short identifier-like word. */
function word(r: Rng, max = 12): string {
  let s = r.pick([...'abcdefghijklmnopqrstuvwxyz']);
  for (let i = r.int(0, max - 1); i > 0; i--) s += r.pick([...ALNUM]);
  return s;
}

/** A string of any kind: a word, a path, nasty characters, long (a few kB), or with `big` up to 1 MB. */
function anyString(r: Rng, big = false): string {
  const k = r.int(0, 9);
  if (k <= 3) return word(r);
  if (k === 4) return '/' + Array.from({ length: r.int(1, 4) }, () => word(r, 6)).join('/');
  if (k === 5) return Array.from({ length: r.int(1, 6) }, () => r.pick(NASTY)).join('');
  if (k === 6) return 'x'.repeat(big ? r.int(100_000, 1_000_000) : r.int(100, 4000));
  if (k === 7) return String.fromCharCode(...Array.from({ length: r.int(1, 20) }, () => r.int(0, 0xffff)).filter((c) => c < 0xd800 || c > 0xdfff));
  if (k === 8) return String(r.int(-1e9, 1e9));
  return word(r) + r.pick(NASTY) + word(r);
}

/** A value of any JSON type, nested up to `depth`. */
export function anyValue(r: Rng, depth = 3): unknown {
  const k = r.int(0, depth > 0 ? 9 : 6);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1, 0.5, 1e300, -1e300, 2 ** 53, 4294967295, 4294967296, Number.MAX_SAFE_INTEGER]);
    case 3:
    case 4:
    case 5:
    case 6:
      return anyString(r);
    case 7:
    case 8:
      return Array.from({ length: r.int(0, 4) }, () => anyValue(r, depth - 1));
    default:
      return Object.fromEntries(Array.from({ length: r.int(0, 4) }, () => [r.chance(0.8) ? word(r) : anyString(r), anyValue(r, depth - 1)]));
  }
}

/** The deepest nesting made (levels): far past what a recursive parser survives (YAML: under 1,000), within what JSON.stringify writes */
const MAX_DEPTH = 2500;

/** Nested lists or mappings `depth` deep around a value: what recursive parsers and checkers choke on. */
function nested(r: Rng, depth: number): unknown {
  let v: unknown = word(r);
  const maps = r.chance(0.5);
  for (let i = 0; i < depth; i++) v = maps ? { [word(r, 3)]: v } : [v];
  return v;
}

/** Text that is not a document of the right shape at all. */
function garbage(r: Rng, valid: string): string {
  switch (r.int(0, 9)) {
    case 0:
      return Buffer.from(Array.from({ length: r.int(1, 400) }, () => r.int(0, 255))).toString('latin1');
    case 1:
      return valid.slice(0, r.int(0, valid.length)); // cut anywhere
    case 2: {
      // a character dropped, doubled or swapped in
      const at = r.int(0, Math.max(0, valid.length - 1));
      return valid.slice(0, at) + r.pick(['', '"', "'", '\t', ':', '[', '{', '&', '*', '!', '|', '\n  ', '\0']) + valid.slice(at + 1);
    }
    case 3: {
      // an alias bomb ("billion laughs")
      let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
      for (let i = 1; i < r.int(3, 9); i++) s += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]\n`;
      return s;
    }
    case 4:
      return `${word(r)}: *${word(r)}\n`; // an alias with no anchor
    case 5: {
      const d = r.int(500, 20_000); // flow nesting
      return `${word(r)}: ${'['.repeat(d)}${']'.repeat(d)}\n`;
    }
    case 6:
      return Array.from({ length: r.int(200, 3000) }, (_, i) => `${' '.repeat(i)}${word(r, 3)}:`).join('\n') + ' x\n'; // block nesting
    case 7:
      return r.pick(['', '\n', '---\n', '--- |\n  x\n', '~\n', 'null\n', '42\n', '"str"\n', '[1, 2]\n', '- a\n- b\n', '---\na: 1\n---\nb: 2\n', '%YAML 9.9\n---\na: 1\n', '? [a]\n: 1\n', 'a: 1\na: 2\n', '!!binary abc\n', '{"a": 1,}\n']);
    case 8:
      return JSON.stringify(anyValue(r, 4));
    default:
      return `${word(r)}: ${'x'.repeat(r.int(100_000, 1_000_000))}\n`;
  }
}

/** Serialise a document as a user might: YAML (flow or block) or JSON. */
function write(r: Rng, doc: unknown, deep = false): string {
  const k = deep ? r.int(0, 1) : r.int(0, 3);
  // (indented, a document thousands of levels deep would be hundreds of megabytes)
  const json = () => JSON.stringify(doc, null, !deep && r.chance(0.5) ? 2 : undefined);
  if (k === 0) return json();
  try {
    return stringify(doc, { flowCollectionPadding: r.chance(0.5), lineWidth: 0, ...(k === 3 ? { defaultCollectionType: 'flow' as const } : {}) });
  } catch {
    return json(); // too deep for the YAML writer: JSON is YAML too
  }
}

/** What kind of input a generated one is, for the figures. */
export type InputKind = 'valid-shape' | 'mutated' | 'garbage' | 'deep' | 'huge';

/** Replace, add or remove a field somewhere in a document (in place): the mutations. */
function mutate(r: Rng, doc: Record<string, unknown>, fields: readonly string[]): void {
  const target: Record<string, unknown> = (() => {
    // a nested mapping sometimes, else the top
    const objs: Array<Record<string, unknown>> = [doc];
    const walk = (v: unknown, d: number) => {
      if (d > 4 || v === null || typeof v !== 'object') return;
      if (!Array.isArray(v)) objs.push(v as Record<string, unknown>);
      for (const x of Object.values(v as object)) walk(x, d + 1);
    };
    walk(doc, 0);
    return r.pick(objs);
  })();
  const keys = Object.keys(target);
  switch (r.int(0, 5)) {
    case 0: // a field of the wrong type or value
      target[keys.length && r.chance(0.7) ? r.pick(keys) : r.pick(fields)] = anyValue(r, 2);
      break;
    case 1: // a field of the wrong type, or a string up to 1 MB
      target[keys.length && r.chance(0.7) ? r.pick(keys) : r.pick(fields)] = r.chance(0.8) ? anyValue(r, 1) : anyString(r, true);
      break;
    case 2: // an unknown field
      target[r.chance(0.5) ? word(r) : anyString(r)] = anyValue(r, 1);
      break;
    case 3: // a field gone
      if (keys.length) delete target[r.pick(keys)];
      break;
    case 4: // deep nesting in a field
      target[keys.length ? r.pick(keys) : r.pick(fields)] = nested(r, r.int(10, MAX_DEPTH));
      break;
    default: // a huge list in a field
      target[keys.length ? r.pick(keys) : r.pick(fields)] = Array.from({ length: r.int(1000, 5000) }, () => (r.chance(0.5) ? word(r) : anyValue(r, 0)));
  }
}

// ------------------------------------------------------------------ image specs

const SPEC_FIELDS = ['name', 'tag', 'arch', 'arches', 'outputs', 'hostname', 'modules', 'services', 'single', 'login', 'cron', 'ntp', 'ssh', 'inline', 'cmdline', 'disk', 'users', 'groups', 'files', 'env', 'container', 'compression'] as const;

/** A spec of the right shape, its fields drawn at random (most pass the checks; some names clash or are unknown). */
function specShape(r: Rng, services: readonly string[]): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  const users = Array.from({ length: r.int(0, 3) }, (_, i) => ({ name: `u${word(r, 5)}${i}`, uid: r.int(1000, 60000) }));
  const f: Record<(typeof SPEC_FIELDS)[number], () => unknown> = {
    name: () => `${word(r, 6)}/${word(r, 6)}`,
    tag: () => r.pick(['latest', '1.0', `v${r.int(0, 99)}`]),
    arch: () => r.pick(['x86_64', 'aarch64']),
    arches: () => (r.chance(0.5) ? ['x86_64'] : ['x86_64', 'aarch64']),
    outputs: () => [...new Set(Array.from({ length: r.int(1, 3) }, () => r.pick(['initramfs', 'disk', 'exedisk', 'tar', 'oci', 'docker', 'overlay'])))],
    hostname: () => word(r),
    modules: () => Array.from({ length: r.int(0, 3) }, () => word(r, 8)),
    services: () => [...new Set(Array.from({ length: r.int(0, 4) }, () => r.pick(services.filter((x) => x !== 'sshd' && x !== 'getty'))))],
    single: () => ['shell'],
    login: () => (r.chance(0.5) ? { password: word(r) } : { passwordHash: '$6$' + word(r, 20) }),
    cron: () => ['* * * * * root true', '@reboot root true'],
    ntp: () => ({ server: r.pick(['pool.ntp.org', '192.0.2.1:123', '[2001:db8::1]']) }),
    ssh: () => ({ authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI' + word(r, 20) + ' me@host'] }),
    inline: () => [{ name: word(r), files: { run: '#!/bin/sh\nexec sleep 1\n' }, enabled: r.chance(0.5) }],
    cmdline: () => 'quiet',
    disk: () => ({ size: r.pick(['512M', 64 * 1024 * 1024, '1G']), rootfs: r.pick(['ext4', 'erofs']) }),
    users: () => users,
    groups: () => [{ name: `g${word(r, 5)}`, gid: r.int(1000, 60000), members: users.map((u) => u.name) }],
    files: () => Array.from({ length: r.int(1, 3) }, (_, i) => r.pick([{ path: `/etc/${word(r)}${i}`, content: anyString(r).slice(0, 200), mode: r.pick(['0644', 0o600, '755']) }, { path: `/srv/${word(r)}${i}`, type: 'dir' }, { path: `/usr/bin/${word(r)}${i}`, target: '/bin/true' }])),
    env: () => ({ [word(r).toUpperCase()]: r.pick([word(r), 1, true]) }),
    container: () => ({ cmd: [word(r)], workdir: '/', ports: ['80/tcp'], labels: { a: 'b' }, stopSignal: 'SIGTERM' }),
    compression: () => r.pick(['gzip', 'zstd', 'none']),
  };
  for (const k of SPEC_FIELDS) if (r.chance(0.35)) s[k] = f[k]();
  if (s.arch && s.arches && r.chance(0.8)) delete s.arch;
  return s;
}

/** Image spec number `index` of a run seeded `seed`: its kind and text. */
export function specInput(seed: number, index: number, services: readonly string[]): { kind: InputKind; text: string } {
  const r = rngFor(seed, index);
  const k = r.int(0, 19);
  const base = specShape(r, services);
  if (k < 6) return { kind: 'valid-shape', text: write(r, base) };
  if (k < 14) {
    for (let i = r.int(1, 3); i > 0; i--) mutate(r, base, SPEC_FIELDS);
    return { kind: 'mutated', text: write(r, base, true) };
  }
  if (k < 17) return { kind: 'garbage', text: garbage(r, write(r, base)) };
  if (k < 19) return { kind: 'deep', text: write(r, { ...base, [r.pick(SPEC_FIELDS)]: nested(r, r.int(100, MAX_DEPTH)) }, true) };
  return { kind: 'huge', text: write(r, { ...base, files: Array.from({ length: r.int(2000, 8000) }, (_, i) => ({ path: `/f/${i}`, content: 'x' })) }) };
}

// ------------------------------------------------------------------ service-builder templates

const TEMPLATE_FIELDS = ['run', 'log', 'finish', 'sleep', 'logsleep', 'env', 'user', 'cwd', 'restart', 'log_config'] as const;

/** A template file of the right shape: one to four services. */
function templateShape(r: Rng): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (let i = r.int(1, 4); i > 0; i--) {
    const t: Record<string, unknown> = { run: [r.pick(['/usr/bin/daemon', 'python3', 'sleep']), ...Array.from({ length: r.int(0, 3) }, () => anyString(r).slice(0, 100))] };
    const f: Record<Exclude<(typeof TEMPLATE_FIELDS)[number], 'run'>, () => unknown> = {
      log: () => ['svlogd', '-tt', './main'],
      finish: () => ['/bin/true'],
      sleep: () => r.int(0, 10),
      logsleep: () => r.int(0, 3),
      env: () => ({ [word(r).toUpperCase()]: word(r) }),
      user: () => r.pick(['nobody', 'www-data:www-data', word(r)]),
      cwd: () => '/' + word(r),
      restart: () => r.pick(['always', 'never']),
      log_config: () => ['s1000000', 'n5'],
    };
    for (const k of Object.keys(f) as Array<keyof typeof f>) if (r.chance(0.3)) t[k] = f[k]();
    doc[word(r)] = t;
  }
  return doc;
}

/** Template file number `index` of a run seeded `seed`: its kind and text. */
export function templateInput(seed: number, index: number): { kind: InputKind; text: string } {
  const r = rngFor(seed, index);
  const k = r.int(0, 19);
  const base = templateShape(r);
  if (k < 6) return { kind: 'valid-shape', text: write(r, base) };
  if (k < 14) {
    for (let i = r.int(1, 3); i > 0; i--) mutate(r, base, TEMPLATE_FIELDS);
    return { kind: 'mutated', text: write(r, base, true) };
  }
  if (k < 17) return { kind: 'garbage', text: garbage(r, write(r, base)) };
  if (k < 19) {
    const svc = r.pick(Object.keys(base));
    return { kind: 'deep', text: write(r, { ...base, [svc]: { ...(base[svc] as object), [r.pick(TEMPLATE_FIELDS)]: nested(r, r.int(100, MAX_DEPTH)) } }, true) };
  }
  return { kind: 'huge', text: write(r, Object.fromEntries(Array.from({ length: r.int(1000, 3000) }, (_, i) => [`s${i}`, { run: ['sleep', String(i)] }]))) };
}
