// The generated-inputs case of the reliability suite, run with a count: COUNT image
// specs and COUNT service-builder template files (test/lib/fuzz.ts: valid and invalid:
// wrong types, unknown fields, bad patterns, deep nesting, huge values, syntax errors,
// alias bombs, bytes that are no text), seeded so that a failure is made again from its
// seed:
//  - image specs (image/spec.ts parseSpec + resolveSpec, in-process): each is accepted,
//    or refused with one line naming the file (a SpecError), never another exception;
//    a sample through runit-ts-image: `check` passes a valid one, `build` of an invalid
//    spec answers one line and writes nothing;
//  - service-builder template files (src/servicebuilder parseTemplates + renderService):
//    each is accepted, or refused with lines that each name the file (a TemplateError,
//    one line a problem); a sample through the servicebuilder applet: warnings naming
//    the file, no stack trace, nothing staged for an invalid file.
// The seed is FUZZ_SEED, or a fixed default: each figure line prints it.
// test/host/reliability-inputs.test.ts runs a short count (make test),
// test/reliability/inputs.test.ts 10,000 of each (make reliability).
import type { Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, repo } from './host.ts';
import { specInput, templateInput, type InputKind } from './fuzz.ts';
import { parseSpec, resolveSpec, SpecError } from '../../image/spec.ts';
import { parseTemplates, renderService, TemplateError } from '../../src/servicebuilder/template.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const SERVICES = readdirSync(join(repo, 'services'));
const IMAGE_CLI = join(repo, 'scripts', 'runit-ts-image');
/** what a stack trace looks like in a message or on stderr */
const STACK = /\n\s+at |^\s+at .*\(.*:\d+:\d+\)/m;

interface Tally {
  accepted: number;
  refused: number;
  byKind: Record<string, number>;
  /** the slowest input, ms */
  slowest: number;
  /** inputs that threw anything but the tool's own error (index, kind, what) */
  bad: string[];
}

const tally = (): Tally => ({ accepted: 0, refused: 0, byKind: {}, slowest: 0, bad: [] });

/** Check one input in-process: `run` accepts it, or throws the tool's error, checked by `clear`. */
function judge(x: Tally, i: number, kind: InputKind, text: string, run: () => void, clear: (e: unknown) => string | undefined): void {
  x.byKind[kind] = (x.byKind[kind] ?? 0) + 1;
  const t0 = performance.now();
  try {
    run();
    x.accepted++;
  } catch (e) {
    const wrong = clear(e);
    if (wrong) x.bad.push(`#${i} (${kind}): ${wrong}; input starts ${JSON.stringify(text.slice(0, 120))}`);
    else x.refused++;
  }
  x.slowest = Math.max(x.slowest, performance.now() - t0);
}

/** Why an error is not one clear line naming `file` (undefined when it is). */
function specProblem(file: string, e: unknown): string | undefined {
  if (!(e instanceof SpecError)) return `${(e as Error)?.constructor?.name ?? typeof e} thrown: ${String((e as Error)?.stack ?? e).slice(0, 300)}`;
  if (!e.message.startsWith(`${file}: `)) return `the line does not name the file: ${e.message.slice(0, 200)}`;
  if (e.message.includes('\n')) return `more than one line: ${JSON.stringify(e.message.slice(0, 300))}`;
  return undefined;
}

/** Why a template error is not clear lines each naming `file` (undefined when it is). */
function templateProblem(file: string, e: unknown): string | undefined {
  if (!(e instanceof TemplateError)) return `${(e as Error)?.constructor?.name ?? typeof e} thrown: ${String((e as Error)?.stack ?? e).slice(0, 300)}`;
  const lines = e.message.split('\n');
  const unnamed = lines.find((l) => !l.startsWith(`${file}: `) || l.length === file.length + 2);
  if (unnamed !== undefined) return `a line that does not name the file, or says nothing: ${JSON.stringify(unnamed.slice(0, 200))}`;
  if (STACK.test(e.message)) return 'a stack trace in the message';
  return undefined;
}

/** The first `n` generated inputs that the in-process check accepts (ok) or refuses (!ok). */
function firstOf<T extends { text: string }>(gen: (i: number) => T, accepts: (x: T) => boolean, ok: boolean, n: number, count: number): Array<T & { index: number }> {
  const out: Array<T & { index: number }> = [];
  for (let i = 0; out.length < n && i < count; i++) {
    const x = gen(i);
    if (accepts(x) === ok) out.push({ ...x, index: i });
  }
  return out;
}

const specAccepted = (file: string) => (x: { text: string }) => {
  try {
    resolveSpec(parseSpec(x.text, file), file, { repoServices: join(repo, 'services') });
    return true;
  } catch {
    return false;
  }
};

/** The case: `count` inputs of each kind in-process, `sample` of the invalid ones through the commands. */
export function inputsSuite(t: Test, count: number, sample: number): void {
  const COUNT = Number(process.env.FUZZ_COUNT ?? count);
  const SAMPLE = Number(process.env.FUZZ_SAMPLE ?? sample);
  t.test(`${COUNT} generated image specs (seed ${SEED})`, async (t) => {
    const file = '/specs/fuzz.yaml';
    const x = tally();
    const t0 = performance.now();
    for (let i = 0; i < COUNT; i++) {
      const { kind, text } = specInput(SEED, i, SERVICES);
      judge(x, i, kind, text, () => resolveSpec(parseSpec(text, file), file, { repoServices: join(repo, 'services') }), (e) => specProblem(file, e));
    }
    const s = (performance.now() - t0) / 1000;
    t.same(x.bad.slice(0, 10), [], `every spec accepted or refused with one line naming the file (${x.bad.length} not; reproduce: FUZZ_SEED=${SEED})`);
    t.ok(x.accepted > COUNT / 20 && x.refused > COUNT / 2, `both kinds seen: ${x.accepted} accepted, ${x.refused} refused`);
    t.comment(`figure: ${COUNT} generated image specs, seed ${SEED} (${Object.entries(x.byKind).map(([k, n]) => `${n} ${k}`).join(', ')}): ${x.accepted} accepted, ${x.refused} refused with one line, ${x.bad.length} otherwise; ${s.toFixed(1)} s in-process, slowest ${x.slowest.toFixed(0)} ms`);
  });

  t.test(`${COUNT} generated service-builder templates (seed ${SEED})`, async (t) => {
    const file = '/etc/servicebuilder/fuzz.yaml';
    const x = tally();
    const t0 = performance.now();
    for (let i = 0; i < COUNT; i++) {
      const { kind, text } = templateInput(SEED, i);
      judge(x, i, kind, text, () => {
        for (const [name, tmpl] of Object.entries(parseTemplates(text, file))) renderService(name, tmpl);
      }, (e) => templateProblem(file, e));
    }
    const s = (performance.now() - t0) / 1000;
    t.same(x.bad.slice(0, 10), [], `every file accepted or refused with lines naming the file (${x.bad.length} not; reproduce: FUZZ_SEED=${SEED})`);
    t.ok(x.accepted > COUNT / 20 && x.refused > COUNT / 2, `both kinds seen: ${x.accepted} accepted, ${x.refused} refused`);
    t.comment(`figure: ${COUNT} generated service-builder template files, seed ${SEED} (${Object.entries(x.byKind).map(([k, n]) => `${n} ${k}`).join(', ')}): ${x.accepted} accepted, ${x.refused} refused with lines naming the file, ${x.bad.length} otherwise; ${s.toFixed(1)} s in-process, slowest ${x.slowest.toFixed(0)} ms`);
  });

  t.test(`a sample through runit-ts-image (${SAMPLE} invalid, ${SAMPLE / 2} valid)`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runit-ts-fuzz-spec-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'spec.yaml');
    const gen = (i: number) => specInput(SEED, i, SERVICES);
    let lines = 0;
    for (const x of firstOf(gen, specAccepted(file), false, SAMPLE, COUNT)) {
      writeFileSync(file, x.text);
      const out = join(dir, 'out');
      const r = await execa(IMAGE_CLI, ['build', file, '--out', out, '--arch', 'x86_64'], { reject: false });
      t.equal(r.exitCode, 1, `#${x.index} (${x.kind}): build refuses it`);
      const err = r.stderr.trim().split('\n');
      t.equal(err.length, 1, `#${x.index}: one line: ${JSON.stringify(err[0]?.slice(0, 160))}`);
      t.match(err[0] ?? '', new RegExp(`^runit-ts-image: ${file.replace(/[.]/g, '\\.')}: `), `#${x.index}: it names the file`);
      t.notMatch(r.stderr, STACK, `#${x.index}: no stack trace`);
      t.notOk(existsSync(out), `#${x.index}: nothing written`);
      lines += err.length;
    }
    for (const x of firstOf(gen, specAccepted(file), true, SAMPLE / 2, COUNT)) {
      writeFileSync(file, x.text);
      const r = await execa(IMAGE_CLI, ['check', file], { reject: false });
      t.equal(r.exitCode, 0, `#${x.index} (${x.kind}): check passes it: ${r.stdout.trim().slice(0, 120)}${r.stderr.trim().slice(0, 200)}`);
    }
    t.comment(`figure: ${SAMPLE} invalid generated specs through runit-ts-image build: ${lines} lines, nothing written; ${SAMPLE / 2} valid ones pass check`);
  });

  t.test(`a sample through the servicebuilder applet (${SAMPLE} invalid files)`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runit-ts-fuzz-sb-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const accepts = (x: { text: string }) => {
      try {
        parseTemplates(x.text, 'f.yaml');
        return true;
      } catch {
        return false;
      }
    };
    let lines = 0;
    for (const x of firstOf((i) => templateInput(SEED, i), accepts, false, SAMPLE, COUNT)) {
      const conf = join(dir, `c${x.index}`);
      const stage = join(dir, `s${x.index}`);
      const scan = join(dir, `d${x.index}`);
      for (const d of [conf, stage, scan]) mkdirSync(d);
      writeFileSync(join(conf, 'fuzz.yaml'), x.text);
      const r = await execa(BIN, ['servicebuilder', '-n', '-c', conf, '-s', stage, '-d', scan], { reject: false });
      t.equal(r.exitCode, 1, `#${x.index} (${x.kind}): exit 1`);
      const err = r.stderr.trim().split('\n');
      t.ok(err.every((l) => l.startsWith(`servicebuilder: warning: ${join(conf, 'fuzz.yaml')}: `)), `#${x.index}: ${err.length} lines, each naming the file: ${JSON.stringify(err[0]?.slice(0, 160))}`);
      t.notMatch(r.stderr, STACK, `#${x.index}: no stack trace`);
      t.same([readdirSync(stage), readdirSync(scan)], [[], []], `#${x.index}: nothing staged or linked`);
      lines += err.length;
    }
    t.comment(`figure: ${SAMPLE} invalid generated template files through servicebuilder: ${lines} warning lines, each naming the file; nothing staged`);
  });
}
