// The config file of `runit-ts-vm test`: YAML (or JSON) listing targets, each one command in
// one VM. Parsed with `yaml`, checked against a JSON Schema with ajv (the first error named
// by file, field and what was expected, on one line), then resolved: paths relative to the
// file's folder, which is also each target's default share and working directory.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ajv } from 'ajv';
import { readChecked } from '../lib/schema.ts';
import { bootSource, DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_S, parseShare, type RunRequest, withCwdShare } from './args.ts';
import { usageError, VmError } from './errors.ts';

/** One target as written in the file. */
export interface TargetSpec {
  name: string;
  arch?: string;
  kernel?: string;
  modules?: string;
  image?: string;
  disk?: string;
  command: string | string[];
  timeout?: number;
  shares?: string[];
  cwdShare?: boolean;
  snapshot?: boolean;
  memory?: number;
}

/** The file: its targets. */
export interface ConfigSpec {
  targets: TargetSpec[];
}

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['targets'],
  properties: {
    targets: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'command'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
          arch: { enum: ['x86_64', 'aarch64', 'amd64', 'arm64'] },
          kernel: { type: 'string', minLength: 1 },
          modules: { type: 'string', minLength: 1 },
          image: { type: 'string', minLength: 1 },
          disk: { type: 'string', minLength: 1 },
          // a command line (run with sh -c) or argv
          command: { type: ['string', 'array'], minLength: 1, minItems: 1, items: { type: 'string' } },
          timeout: { type: 'number', minimum: 0 },
          shares: { type: 'array', items: { type: 'string', minLength: 1 } },
          cwdShare: { type: 'boolean' },
          snapshot: { type: 'boolean' },
          memory: { type: 'integer', minimum: 64 },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, verbose: true });
const validate = ajv.compile(SCHEMA);

/** Parses and checks a config text; `file` names it in errors (usage errors, one line). */
export function parseConfig(text: string, file: string): ConfigSpec {
  const spec = readChecked<ConfigSpec>(text, validate, { file, syntax: 'YAML', empty: 'the config is empty (expected "targets:")', quoteValue: true, fail: usageError });
  const seen = new Set<string>();
  for (const [i, t] of spec.targets.entries()) {
    if (seen.has(t.name)) throw usageError(`${file}: field /targets/${i}/name: ${JSON.stringify(t.name)} is the name of an earlier target`);
    seen.add(t.name);
  }
  return spec;
}

/** A target's command as argv: a string runs through sh -c. */
export function targetArgv(command: string | readonly string[]): string[] {
  return typeof command === 'string' ? ['sh', '-c', command] : [...command];
}

/** Turns a target into a run request: paths resolved against `base` (the config's folder), checked. */
export function resolveTarget(t: TargetSpec, base: string, file: string, index: number): RunRequest {
  try {
    const src = bootSource({ ...t, arch: t.arch }, base);
    const shares = withCwdShare((t.shares ?? []).map((s) => parseShare(s, base)), base, t.cwdShare ?? true);
    return {
      ...src,
      name: t.name,
      shares,
      timeout: t.timeout ?? DEFAULT_TIMEOUT_S,
      snapshot: t.snapshot ?? false,
      command: targetArgv(t.command),
      cwd: shares.some((s) => s.guest === base) ? base : '/',
      memory: t.memory ?? DEFAULT_MEMORY_MIB,
    };
  } catch (e) {
    if (e instanceof VmError) throw usageError(`${file}: target ${index} (${t.name}): ${e.message}`);
    throw e;
  }
}

/** Reads, checks and resolves a config file; `filter` keeps the targets whose name contains it. */
export function loadConfig(file: string, filter?: string): RunRequest[] {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usageError(`config '${file}' cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const spec = parseConfig(text, file);
  const base = dirname(file);
  const targets = spec.targets.filter((t) => filter === undefined || t.name.includes(filter));
  if (!targets.length) throw usageError(`${file}: no target's name contains '${filter}'`);
  return targets.map((t) => resolveTarget(t, base, file, spec.targets.indexOf(t)));
}
