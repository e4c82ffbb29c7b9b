// The image spec users write (YAML, or JSON, which is YAML too): parsed with `yaml`,
// checked against a JSON Schema with ajv (first error named by file, field and what was
// expected), then checked against the disk (files exist, no duplicate paths, arches
// built) and resolved: defaults filled in, the command line's --arch and --outputs
// applied. Nothing is written before a spec passes.
//
//   spec (this file) -> one ResolvedImage per arch (resolve.ts: the entries of rootfs.ts)
//     -> every output's packer (packers/), driven by outputs.ts
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { oneLine, readChecked } from '../src/lib/schema.ts';
import { ARCHES, type Arch } from '../src/lib/platform.ts';
import { BUILTIN_GROUPS, BUILTIN_USERS, resolveOwner } from './accounts.ts';
import { DEFAULT_SERVICES, type ImageSpec } from './rootfs.ts';
import { COMPONENTS, SUITE, VARIANTS, type Component, type Variant } from './debian/mmdebstrap.ts';
import type { DebianRequest } from './debian/lock.ts';

/** Every output a spec can ask for (runit-ts-image build --outputs, make image OUTPUTS=). */
export const OUTPUTS = ['initramfs', 'disk', 'exedisk', 'tar', 'oci', 'docker', 'overlay'] as const;
export type Output = (typeof OUTPUTS)[number];
/** The services (both runlevels) of a container-only image whose spec names none: none (why: resolveSpec). */
export const CONTAINER_SERVICES: readonly string[] = [];
/** The outputs that boot (a kernel beside them): the image gets the default services and modules. */
export const BOOT_OUTPUTS: readonly Output[] = ['initramfs', 'disk', 'exedisk'];
/** The container outputs: the image gets container-init's directories (ImageSpec.containerInit) and SBOMs. */
export const CONTAINER_OUTPUTS: readonly Output[] = ['tar', 'oci', 'docker'];

/** Layer compressions of the OCI outputs a spec can ask for (`compression:`; packers/oci.ts). */
export const LAYER_COMPRESSIONS = ['gzip', 'zstd', 'none'] as const;
export type LayerCompression = (typeof LAYER_COMPRESSIONS)[number];

export interface ContainerDef {
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  workdir?: string;
  ports?: string[];
  labels?: Record<string, string>;
  stopSignal?: string;
}
/** The spec as written: the image fields of ImageSpec (image/rootfs.ts) and the outputs' own. */
export interface Spec extends Omit<ImageSpec, 'arch' | 'containerInit'> {
  name?: string;
  tag?: string;
  arch?: Arch;
  arches?: Arch[];
  outputs?: Output[];
  env?: Record<string, string>;
  container?: ContainerDef;
  /** layer compression of the OCI outputs (default gzip) */
  compression?: LayerCompression;
  /** base debian: Debian packages to install (with their dependencies) */
  packages?: string[];
  /** base debian: mmdebstrap's variant (default minbase) and the archive areas (default main) */
  debian?: { variant?: Variant; components?: Component[]; init?: 'runit-ts' | 'debian' };
}

/** A spec checked and with its defaults filled in. */
export interface ResolvedSpec {
  file: string;
  name: string;
  tag: string;
  arches: Arch[];
  outputs: Output[];
  /** everything an arch's image is resolved from (resolve.ts), the arch aside */
  image: Omit<ImageSpec, 'arch'>;
  env: Record<string, string>;
  container: Required<Pick<ContainerDef, 'entrypoint' | 'cmd' | 'workdir' | 'stopSignal'>> & ContainerDef;
  compression: LayerCompression;
  /** base debian: what the lock (SPEC.lock.json) must have been made for */
  debian?: DebianRequest;
}

/** What the command line puts in place of the spec's own fields (--arch, --outputs). */
export interface SpecOverrides {
  arches?: Arch[];
  outputs?: Output[];
}

const str = { type: 'string' } as const;
const strList = { type: 'array', items: str } as const;
const name = { type: 'string', pattern: '^[a-z_][a-z0-9_.-]*$' } as const;
const id = { type: 'integer', minimum: 0, maximum: 4294967294 } as const;

export const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9]+([._/-][a-z0-9]+)*$' },
    tag: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' },
    arch: { enum: [...ARCHES] },
    base: { enum: ['busybox', 'debian'] },
    packages: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9][a-z0-9+.-]+$' }, uniqueItems: true },
    debian: {
      type: 'object',
      additionalProperties: false,
      properties: {
        variant: { enum: [...VARIANTS] },
        components: { type: 'array', items: { enum: [...COMPONENTS] }, minItems: 1, uniqueItems: true },
        init: { enum: ['runit-ts', 'debian'] },
      },
    },
    trees: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['source'],
        properties: { source: str, path: { type: 'string', pattern: '^/' }, owner: { type: 'string', pattern: '^[^:]+(:[^:]+)?$' } },
      },
    },
    arches: { type: 'array', items: { enum: [...ARCHES] }, minItems: 1, uniqueItems: true },
    outputs: { type: 'array', items: { enum: [...OUTPUTS] }, minItems: 1, uniqueItems: true },
    hostname: str,
    prestart: { type: 'boolean' },
    modules: strList,
    services: strList,
    single: strList,
    login: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: { autologin: name, password: str, passwordHash: { type: 'string', pattern: '^\\$[0-9a-z]+\\$' } },
    },
    cron: { type: 'array', items: { type: 'string', pattern: '^\\s*([#@]|\\S+\\s+\\S+\\s+\\S+\\s+\\S+\\s+\\S+\\s+\\S)' } },
    ntp: { type: 'object', additionalProperties: false, properties: { server: { type: 'string', pattern: '^([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$' } } },
    ssh: {
      type: 'object',
      additionalProperties: false,
      required: ['authorizedKeys'],
      properties: { authorizedKeys: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^(ssh-ed25519|sk-ssh-ed25519@openssh.com) [A-Za-z0-9+/=]+( [^\\n]*)?$' } } },
    },
    inline: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'files'],
        properties: {
          name: { type: 'string', pattern: '^[^/.][^/]*$' },
          files: { type: 'object', additionalProperties: str },
          enabled: { type: 'boolean' },
        },
      },
    },
    cmdline: str,
    disk: {
      type: 'object',
      additionalProperties: false,
      properties: {
        size: { type: ['string', 'integer'], pattern: '^[0-9]+[KMG]?$', minimum: 1 },
        esp: { type: ['string', 'integer'], pattern: '^[0-9]+[KMG]?$', minimum: 1 },
        rootfs: { enum: ['ext4', 'erofs'] },
      },
    },
    users: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'uid'],
        properties: { name, uid: id, gid: id, home: str, shell: str },
      },
    },
    groups: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'gid'],
        properties: { name, gid: id, members: { type: 'array', items: name } },
      },
    },
    files: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          path: { type: 'string', pattern: '^/?[^/]' },
          source: str,
          content: str,
          type: { enum: ['file', 'dir', 'symlink'] },
          target: str,
          mode: { anyOf: [{ type: 'string', pattern: '^0?[0-7]{3,4}$' }, { type: 'integer', minimum: 0, maximum: 0o7777 }] },
          owner: { type: 'string', pattern: '^[^:]+(:[^:]+)?$' },
        },
      },
    },
    env: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] }, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } },
    container: {
      type: 'object',
      additionalProperties: false,
      properties: {
        entrypoint: strList,
        cmd: strList,
        user: str,
        workdir: { type: 'string', pattern: '^/' },
        ports: { type: 'array', items: { type: 'string', pattern: '^[0-9]{1,5}(/(tcp|udp|sctp))?$' } },
        labels: { type: 'object', additionalProperties: str },
        stopSignal: { type: 'string', pattern: '^(SIG[A-Z0-9]+|[0-9]+)$' },
      },
    },
    compression: { enum: [...LAYER_COMPRESSIONS] },
  },
} as const;

export class SpecError extends Error {}

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, verbose: true });
const validate = ajv.compile(SCHEMA);

/** Parse and schema-check a spec text; `file` is only used in messages. */
export function parseSpec(text: string, file: string): Spec {
  return readChecked<Spec>(text, validate, { file, syntax: 'YAML/JSON', empty: 'the spec is empty (expected a mapping of fields)', quoteValue: false, fail: (l) => new SpecError(l) });
}

/** Check a parsed spec against the disk and fill in the defaults (after the command line's overrides). */
export function resolveSpec(spec: Spec, file: string, opts: { repoServices?: string } & SpecOverrides = {}): ResolvedSpec {
  const base = dirname(resolve(file));
  const fail = (field: string, msg: string): never => {
    // (a path or a name from the spec may hold a line break: the problem stays one line)
    throw new SpecError(`${file}: field ${oneLine(field)}: ${oneLine(msg)}`);
  };
  if (spec.arch && spec.arches) fail('/arch', 'give either arch or arches, not both');
  const debianBase = spec.base === 'debian';
  if (!debianBase && spec.packages) fail('/packages', 'packages come from Debian: give base: debian');
  if (!debianBase && spec.debian) fail('/debian', 'settings of a Debian base: give base: debian');
  // on a Debian base an owner may name Debian's accounts (www-data...): checked when the base is built
  const checkOwner = (o: string, field: string) => {
    if (!debianBase) resolveOwner(o, users, groups, (m) => fail(field, m));
  };
  const arches: Arch[] = opts.arches ?? spec.arches ?? (spec.arch ? [spec.arch] : [...ARCHES]);
  const outputs: Output[] = opts.outputs ?? spec.outputs ?? [...CONTAINER_OUTPUTS];
  const boots = outputs.some((o) => BOOT_OUTPUTS.includes(o));
  const container = outputs.some((o) => CONTAINER_OUTPUTS.includes(o));
  const users = spec.users ?? [];
  const groups = spec.groups ?? [];
  const dup = (list: string[], field: (i: number) => string, what: string) => {
    const seen = new Map<string, number>();
    list.forEach((v, i) => {
      if (seen.has(v)) fail(field(i), `duplicate ${what} "${v}" (also at index ${seen.get(v)})`);
      seen.set(v, i);
    });
  };
  dup(users.map((u) => u.name), (i) => `/users/${i}/name`, 'user name');
  dup(users.map((u) => String(u.uid)), (i) => `/users/${i}/uid`, 'uid');
  dup(groups.map((g) => g.name), (i) => `/groups/${i}/name`, 'group name');
  dup(groups.map((g) => String(g.gid)), (i) => `/groups/${i}/gid`, 'gid');
  for (const [i, u] of users.entries()) if (BUILTIN_USERS.some((b) => b.name === u.name)) fail(`/users/${i}/name`, `"${u.name}" is built in`);
  for (const [i, g] of groups.entries()) if (BUILTIN_GROUPS.some((b) => b.name === g.name)) fail(`/groups/${i}/name`, `"${g.name}" is built in`);
  const userNames = new Set([...BUILTIN_USERS, ...users].map((u) => u.name));
  for (const [i, g] of groups.entries())
    for (const [j, m] of (g.members ?? []).entries()) if (!userNames.has(m)) fail(`/groups/${i}/members/${j}`, `unknown user "${m}"`);

  const files = (spec.files ?? []).map((f) => ({ ...f, path: f.path.replace(/^\/+|\/+$/g, '') }));
  dup(files.map((f) => f.path), (i) => `/files/${i}/path`, 'path');
  for (const [i, f] of files.entries()) {
    const type = f.type ?? (f.target !== undefined ? 'symlink' : 'file');
    const given = [f.source !== undefined && 'source', f.content !== undefined && 'content', f.target !== undefined && 'target'].filter(Boolean);
    if (type === 'file' && given.length !== 1) fail(`/files/${i}`, `a file needs exactly one of source or content (got ${given.join(', ') || 'neither'})`);
    if (type === 'file' && f.target !== undefined) fail(`/files/${i}/target`, 'only a symlink has a target');
    if (type === 'symlink' && (f.target === undefined || given.length !== 1)) fail(`/files/${i}`, 'a symlink needs a target (and nothing else)');
    if (type === 'dir' && given.length) fail(`/files/${i}`, 'a directory has no source, content or target');
    if (f.path.split('/').some((p) => p === '..' || p === '.')) fail(`/files/${i}/path`, 'no "." or ".." components');
    if (f.source !== undefined) {
      const src = isAbsolute(f.source) ? f.source : join(base, f.source);
      if (!existsSync(src)) fail(`/files/${i}/source`, `no such file: ${src}`);
      if (!statSync(src).isFile()) fail(`/files/${i}/source`, `not a regular file: ${src}`);
      f.source = src;
    }
    if (f.owner !== undefined) checkOwner(f.owner, `/files/${i}/owner`);
  }
  const trees = (spec.trees ?? []).map((t, i) => {
    const src = isAbsolute(t.source) ? t.source : join(base, t.source);
    if (!existsSync(src) || !statSync(src).isDirectory()) fail(`/trees/${i}/source`, `no such directory: ${src}`);
    const path = (t.path ?? '/').replace(/^\/+|\/+$/g, '');
    if (path.split('/').some((p) => p === '..' || p === '.')) fail(`/trees/${i}/path`, 'no "." or ".." components');
    if (t.owner !== undefined) checkOwner(t.owner, `/trees/${i}/owner`);
    return { source: src, path, ...(t.owner !== undefined ? { owner: t.owner } : {}) };
  });
  const inline = spec.inline ?? [];
  dup(inline.map((s) => s.name), (i) => `/inline/${i}/name`, 'service name');
  // A container-only image gets no catalogue service unless the spec names some: the VM
  // set (a console shell, syslogd, klogd, a DHCP client, crond) has nothing to do in a
  // container (no console or kernel log: klogd crash-loops; the runtime gives the
  // network), and the container's log is container-init's stdout (podman logs).
  // A Debian base's services are its packages' (runit-services and others enable theirs):
  // the catalogue's run busybox applets, so none of them unless the spec names them.
  const services = spec.services ?? (boots && !debianBase ? DEFAULT_SERVICES : [...CONTAINER_SERVICES]);
  const single = spec.single ?? (boots && !debianBase ? undefined : [...CONTAINER_SERVICES]);
  if (opts.repoServices)
    for (const [field, list] of [['services', services], ['single', spec.single ?? []]] as const)
      for (const [i, s] of list.entries()) if (!existsSync(join(opts.repoServices, s))) fail(`/${field}/${i}`, `no service "${s}" in ${opts.repoServices}`);
  if ([...services, ...(single ?? [])].includes('sshd') && !spec.ssh) fail('/services', 'the sshd service needs ssh: {authorizedKeys: [...]} (public-key logins only)');
  if ([...services, ...(single ?? [])].includes('getty') && !spec.login) fail('/services', 'the getty service needs login: {autologin: USER} or {password: ...}');
  if (spec.login?.autologin && !userNames.has(spec.login.autologin)) fail('/login/autologin', `unknown user "${spec.login.autologin}" (define it under users)`);
  const c = spec.container ?? {};
  if (c.user !== undefined) checkOwner(c.user, '/container/user');
  return {
    file,
    name: spec.name ?? 'runit-ts',
    tag: spec.tag ?? 'latest',
    arches,
    outputs,
    image: {
      hostname: spec.hostname,
      ...(spec.prestart !== undefined ? { prestart: spec.prestart } : {}),
      // a container has no kernel: no modules unless a boot output is built too
      modules: spec.modules ?? (boots ? undefined : []),
      services,
      ...(single ? { single } : {}),
      ...(spec.login ? { login: spec.login } : {}),
      ...(spec.cron ? { cron: spec.cron } : {}),
      ...(spec.ssh ? { ssh: spec.ssh } : {}),
      ...(spec.ntp ? { ntp: spec.ntp } : {}),
      inline,
      cmdline: spec.cmdline,
      ...(spec.disk ? { disk: spec.disk } : {}),
      users,
      groups,
      files,
      trees,
      ...(debianBase ? { base: 'debian' as const } : {}),
      ...(container ? { containerInit: c.user !== undefined ? { user: c.user } : {} } : {}),
    },
    env: Object.fromEntries(Object.entries(spec.env ?? {}).map(([k, v]) => [k, String(v)])),
    container: {
      ...c,
      entrypoint: c.entrypoint ?? ['/sbin/container-init'],
      cmd: c.cmd ?? [],
      workdir: c.workdir ?? '/',
      stopSignal: c.stopSignal ?? 'SIGTERM',
    },
    compression: spec.compression ?? 'gzip',
    ...(debianBase
      ? { debian: { suite: SUITE, variant: spec.debian?.variant ?? 'minbase', components: spec.debian?.components ?? ['main'], packages: spec.packages ?? [], init: spec.debian?.init ?? 'runit-ts' } }
      : {}),
  };
}

/** Read, check and resolve a spec file; `opts` as resolveSpec's. */
export function loadSpec(file: string, opts: { repoServices?: string } & SpecOverrides = {}): ResolvedSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SpecError(`${file}: cannot read the spec: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return resolveSpec(parseSpec(text, file), file, opts);
}

/** The spec `make image` and `runit-ts-image build` without a spec use: the default image, as a boot image unless `outputs` say otherwise. */
export function defaultSpec(outputs: Output[] = ['initramfs'], arches?: Arch[]): ResolvedSpec {
  return resolveSpec({}, '(default spec)', { outputs, ...(arches ? { arches } : {}) });
}

/** Binaries an arch needs, in binDir/<arch>; the first one missing, if any (exedisk needs the early stage too). */
export function missingBinary(binDir: string, outputs: readonly Output[] = []): string | undefined {
  const need = ['runit-ts', 'runit-ts.node', 'runit', ...(outputs.includes('exedisk') ? ['early'] : []), ...(outputs.includes('overlay') ? ['launch'] : [])];
  return need.map((f) => join(binDir, f)).find((p) => !existsSync(p));
}
