// Kernel modules for an image: find them in a kernel's lib/modules/VERSION tree, follow their
// "depends=" (read from each .ko's .modinfo ELF section) and write a modules.dep for
// just those, so stage 1 can load them without depmod.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { canonicalModuleName, MODULE_FILE, moduleName } from './platform.ts';

/** The NUL-separated key=value strings of an ELF64 little-endian .ko's .modinfo section. */
export function modinfo(ko: Buffer): Map<string, string> {
  if (ko.readUInt32BE(0) !== 0x7f454c46 || ko[4] !== 2 || ko[5] !== 1) throw new Error('not an ELF64 little-endian module');
  const shoff = Number(ko.readBigUInt64LE(0x28));
  const shentsize = ko.readUInt16LE(0x3a);
  const shnum = ko.readUInt16LE(0x3c);
  const shstrndx = ko.readUInt16LE(0x3e);
  const sec = (i: number) => {
    const o = shoff + i * shentsize;
    return { name: ko.readUInt32LE(o), off: Number(ko.readBigUInt64LE(o + 0x18)), size: Number(ko.readBigUInt64LE(o + 0x20)) };
  };
  const strtab = sec(shstrndx);
  const info = new Map<string, string>();
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const end = ko.indexOf(0, strtab.off + s.name);
    if (ko.toString('latin1', strtab.off + s.name, end) !== '.modinfo') continue;
    for (const kv of ko.toString('utf8', s.off, s.off + s.size).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0 && !info.has(kv.slice(0, eq))) info.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  }
  return info;
}

/** name -> path relative to the modules dir, for every .ko under kernel/ */
export function indexModules(modDir: string): Map<string, string> {
  const idx = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (MODULE_FILE.test(e.name)) idx.set(moduleName(e.name), relative(modDir, p));
    }
  };
  walk(join(modDir, 'kernel'));
  return idx;
}

export interface ModuleSet {
  /** relative paths of every module to ship */
  files: string[];
  /** modules.dep text in depmod's format, for those files */
  dep: string;
}

/** Resolve the named modules and all they depend on. Unknown names are an error. */
export function resolveModules(modDir: string, names: string[]): ModuleSet {
  if (!names.length) return { files: [], dep: '' };
  const idx = indexModules(modDir);
  const direct = new Map<string, string[]>(); // path -> direct dependency paths
  const visit = (name: string): string => {
    const path = idx.get(canonicalModuleName(name));
    if (!path) throw new Error(`kernel module ${name} is not in ${modDir} (built in, or misspelt?)`);
    if (direct.has(path)) return path;
    direct.set(path, []);
    const deps = (modinfo(readFileSync(join(modDir, path))).get('depends') ?? '').split(',').filter(Boolean);
    direct.set(path, deps.map(visit));
    return path;
  };
  for (const n of names) visit(n);
  // depmod lists the full transitive closure, nearest first
  const closure = (p: string, seen = new Set<string>()): string[] => {
    const out: string[] = [];
    for (const d of direct.get(p) ?? []) {
      if (seen.has(d)) continue;
      seen.add(d);
      out.push(d, ...closure(d, seen));
    }
    return out;
  };
  const files = [...direct.keys()].sort();
  const dep = files.map((p) => `${p}:${closure(p).map((d) => ' ' + d).join('')}\n`).join('');
  return { files, dep };
}
