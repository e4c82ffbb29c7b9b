// scripts/inputs.ts: fetch every pinned binary input of image/inputs.json into the cache,
// verify its sha256 and unpack it. Run through scripts/setup (which bundles this file).
//
//   scripts/setup                 fetch what is missing, verify everything (idempotent)
//   scripts/setup --list          show the pins and whether each is cached
//   scripts/setup --repin ID|all  move a pin to what the registry serves now, record it
//
// An input whose sha256 is empty in the manifest is pinned on first fetch.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { ARCHES, cacheDir } from '../src/lib/platform.ts';
import { fileSha256, inputDir, loadManifest, manifestPath, type DebInput, type Input, type Manifest, type NpmInput } from '../image/inputs.ts';

const HELP = `usage: scripts/setup [--list] [--repin ID|all] [--help]

Installs the Debian and npm packages the build needs, then fetches every binary
input pinned in image/inputs.json into ${cacheDir()} ($RUNIT_TS_CACHE),
checks its sha256 and unpacks it.

  --list          show each pinned input and whether it is cached
  --repin ID|all  move the pin of input ID (or all) to the version the registry
                  serves now (Debian replaces kernel packages on security updates)
`;

class PinGone extends Error {}

function log(msg: string): void {
  process.stderr.write(`[setup] ${msg}\n`);
}

function mib(file: string): string {
  return `${(statSync(file).size / 1048576).toFixed(1)} MiB`;
}

const downloads = () => join(cacheDir(), 'downloads');
function downloadPath(inp: Input): string {
  const v = inp.version.replace(/[^A-Za-z0-9.+~-]/g, '_');
  return join(downloads(), inp.kind === 'deb' ? `${inp.id}_${v}.deb` : `${inp.id}_${v}.tgz`);
}

/** Download exactly the pinned version into the downloads folder; returns the file. */
async function download(inp: Input): Promise<string> {
  mkdirSync(downloads(), { recursive: true });
  const tmp = mkdtempSync(join(downloads(), '.tmp-'));
  chmodSync(tmp, 0o777); // apt's _apt user writes there
  try {
    if (inp.kind === 'deb') {
      const spec = `${inp.package}:${inp.arch}=${inp.version}`;
      const r = await execa('apt-get', ['download', spec], { cwd: tmp, reject: false, stdout: 'inherit', stderr: 'pipe' });
      const err = r.stderr.split('\n').filter((l) => l && !l.includes('unsandboxed')).join('\n');
      if (r.exitCode !== 0) {
        const avail = await debVersions(inp);
        if (!avail.includes(inp.version)) {
          throw new PinGone(
            `input ${inp.id}: ${inp.package}:${inp.arch} version ${inp.version} is no longer served by Debian ` +
              `(available: ${avail.join(', ') || 'none'}; Debian replaces kernel packages on security updates).\n` +
              `Move the pin with:  make repin INPUT=${inp.id}   (or: scripts/setup --repin ${inp.id})`,
          );
        }
        throw new Error(`apt-get download ${spec} failed:\n${err}`);
      }
    } else {
      const r = await execa('npm', ['pack', `${inp.package}@${inp.version}`, '--pack-destination', tmp, '--loglevel', 'http'], {
        reject: false, stdout: 'pipe', stderr: 'inherit',
      });
      if (r.exitCode !== 0) throw new Error(`npm pack ${inp.package}@${inp.version} failed (exit ${r.exitCode})`);
    }
    const files = readdirSync(tmp);
    if (files.length !== 1) throw new Error(`expected one downloaded file for ${inp.id}, got: ${files.join(', ')}`);
    const dest = downloadPath(inp);
    renameSync(join(tmp, files[0]!), dest);
    return dest;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function debVersions(inp: DebInput): Promise<string[]> {
  const r = await execa('apt-cache', ['madison', `${inp.package}:${inp.arch}`], { reject: false });
  return r.stdout.split('\n').map((l) => l.split('|')[1]?.trim() ?? '').filter(Boolean);
}

async function unpack(inp: Input, file: string, sum: string): Promise<void> {
  const dir = inputDir(inp.id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (inp.kind === 'deb') await execa('dpkg-deb', ['-x', file, dir]);
  else await execa('tar', ['xzf', file, '-C', dir]);
  writeFileSync(join(dir, '.runit-ts-sha256'), `${sum}\n`);
}

/** Make one input present and verified. Returns the sha256 (so a new pin can be recorded). */
async function ensure(inp: Input, idx: string): Promise<string> {
  const label = `${idx} ${inp.id}: ${inp.package}${inp.kind === 'deb' ? `:${inp.arch}` : ''} ${inp.version}`;
  const stamp = join(inputDir(inp.id), '.runit-ts-sha256');
  if (inp.sha256 && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === inp.sha256) {
    log(`${label}: cached`);
    return inp.sha256;
  }
  let file = downloadPath(inp);
  let sum = existsSync(file) ? await fileSha256(file) : '';
  if (!sum || (inp.sha256 && sum !== inp.sha256)) {
    log(`${label}: downloading`);
    const t0 = Date.now();
    file = await download(inp);
    sum = await fileSha256(file);
    log(`${label}: ${mib(file)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  if (inp.sha256 && sum !== inp.sha256) {
    rmSync(file, { force: true });
    throw new Error(
      `input ${inp.id}: sha256 mismatch for ${inp.package} ${inp.version}: pinned ${inp.sha256}, got ${sum}.\n` +
        `If the registry really rebuilt it, review and move the pin: scripts/setup --repin ${inp.id}`,
    );
  }
  log(`${label}: unpacking`);
  await unpack(inp, file, sum);
  return sum;
}

/** What the registry serves now for this input (new package name for tracked kernels). */
async function resolveCurrent(inp: Input): Promise<Input> {
  if (inp.kind === 'npm') return inp; // Node's version is chosen deliberately, in image/inputs.json
  let pkg = inp.package;
  if (inp.track) {
    const r = await execa('apt-cache', ['depends', `${inp.track}:${inp.arch}`]);
    const dep = /Depends: (\S+)/.exec(r.stdout)?.[1];
    if (!dep) throw new Error(`cannot resolve ${inp.track}:${inp.arch}: ${r.stdout}`);
    pkg = dep.replace(/:.*$/, '');
  }
  const pol = await execa('apt-cache', ['policy', `${pkg}:${inp.arch}`]);
  const version = /Candidate: (\S+)/.exec(pol.stdout)?.[1];
  if (!version || version === '(none)') throw new Error(`Debian serves no candidate for ${pkg}:${inp.arch} (run apt-get update?)`);
  return { ...inp, package: pkg, version };
}

function saveManifest(m: Manifest): void {
  const lines = m.inputs.map((i) => `    ${JSON.stringify(i).replace(/,"/g, ', "').replace(/":/g, '": ').replace(/^\{/, '{ ').replace(/\}$/, ' }')}`);
  writeFileSync(manifestPath, `{\n  "node": ${JSON.stringify(m.node)},\n  "inputs": [\n${lines.join(',\n')}\n  ]\n}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { list: { type: 'boolean' }, repin: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const m = loadManifest();
  for (const arch of ARCHES) {
    const n = m.inputs.find((i) => i.id === `node-${arch}`);
    if (!n || n.version !== m.node) throw new Error(`image/inputs.json: node-${arch} must be Node ${m.node} (one version for both arches)`);
  }
  if (values.list) {
    for (const i of m.inputs) {
      const stamp = join(inputDir(i.id), '.runit-ts-sha256');
      const ok = existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === i.sha256;
      process.stdout.write(`${i.id.padEnd(18)} ${(i.package + (i.kind === 'deb' ? `:${i.arch}` : '')).padEnd(34)} ${i.version.padEnd(24)} ${ok ? 'cached' : 'missing'}\n`);
    }
    return;
  }
  let changed = false;
  if (values.repin) {
    const ids = values.repin === 'all' ? m.inputs.map((i) => i.id) : values.repin.split(',');
    for (const id of ids) {
      const k = m.inputs.findIndex((i) => i.id === id);
      if (k < 0) throw new Error(`no input named ${id}; known: ${m.inputs.map((i) => i.id).join(', ')}`);
      const old = m.inputs[k]!;
      const cur = await resolveCurrent(old);
      if (cur.package !== old.package || cur.version !== old.version) {
        log(`repin ${id}: ${old.package} ${old.version} -> ${cur.package} ${cur.version}`);
        m.inputs[k] = { ...cur, sha256: '' };
        changed = true;
      } else {
        log(`repin ${id}: ${old.package} ${old.version} is still current`);
      }
    }
  }
  const n = m.inputs.length;
  try {
    for (const [k, inp] of m.inputs.entries()) {
      const sum = await ensure(inp, `(${k + 1}/${n})`);
      if (!inp.sha256) {
        inp.sha256 = sum;
        changed = true;
        log(`pinned ${inp.id} sha256 ${sum}`);
      }
    }
  } finally {
    if (changed) {
      saveManifest(m);
      log('image/inputs.json updated: commit it');
    }
  }
}

main().catch((e: unknown) => {
  log(e instanceof PinGone ? e.message : `error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
