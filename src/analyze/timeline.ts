// The boot timeline (`runit-ts analyze`): stage 1's marks (/run/runit-ts/boot.json) and
// the supervisor's per-service marks (SCANDIR/.timeline.json, src/runsv/deps.ts), all
// in seconds on the monotonic clock, which on Linux starts at boot. Everything here is
// computed from those two files: time, blame, critical-chain and the SVG plot.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { processStartTicks } from '../lib/proc.ts';
import { TIMELINE_FILE, type Timeline, type TimelineEntry } from '../runsv/deps.ts';

/** Where stage 1 writes its marks. */
export const BOOT_MARKS_FILE = '/run/runit-ts/boot.json';
/** Clock ticks per second of /proc/PID/stat's start time (USER_HZ, 100 on every Linux arch we build). */
export const USER_HZ = 100;

export interface BootMarks {
  /** when the kernel handed over: stage 1 was forked by PID 1 (monotonic seconds) */
  kernel: number;
  /** stage 1's own code started (after its Node start) */
  stage1Start: number;
  stage1End: number;
  /** set when stage 2 went on in stage 1's process (PID 1's handoff): that process */
  stage2Pid?: number;
}

/** When this process was started, seconds after boot: for stage 1, the end of the kernel's part. */
export function kernelDone(pid = process.pid): number {
  const t = processStartTicks(pid);
  return t === undefined ? 0 : t / USER_HZ;
}

export function writeBootMarks(path: string, m: BootMarks): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.new`, JSON.stringify(m) + '\n');
  renameSync(`${path}.new`, path);
}

export function readBootMarks(path: string): BootMarks | undefined {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as BootMarks;
    return typeof m.kernel === 'number' && typeof m.stage1End === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

export function readTimeline(scandir: string): Timeline {
  const path = join(scandir, TIMELINE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`no timeline in ${scandir} (${(e as NodeJS.ErrnoException).code ?? e}): is our supervisor running on it?`);
  }
  const t = JSON.parse(text) as Timeline;
  if (t.version !== 1 || typeof t.services !== 'object') throw new Error(`${path}: not a timeline this version knows`);
  return t;
}

/** One service's part of the boot, in seconds from the origin (boot, or the supervisor's start). */
export interface ServiceSpan extends TimelineEntry {
  name: string;
  /** spawned -> ready (or -> failed): what blame sorts by */
  activation?: number;
  /** wanted -> dependencies met */
  waited?: number;
}

export interface Analysis {
  /** 'boot': times count from boot (stage 1's marks were found); 'supervisor': from the supervisor's start */
  origin: 'boot' | 'supervisor';
  kernel?: number;
  stage1?: { start: number; end: number };
  supervisorStart: number;
  /** when the last service became ready (or failed); undefined when none did */
  allUp?: number;
  /** the service that was last */
  last?: string;
  /** services wanted up that never got ready (still waiting, starting or failed) */
  notReady: string[];
  services: ServiceSpan[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

export function analyse(t: Timeline, boot: BootMarks | undefined): Analysis {
  const o = boot ? 0 : t.supervisorStart;
  const at = (x: number | undefined) => (x === undefined ? undefined : r3(x - o));
  const services: ServiceSpan[] = Object.entries(t.services).map(([name, e]) => {
    const s: ServiceSpan = {
      name,
      type: e.type,
      readiness: e.readiness,
      dependencies: e.dependencies,
      waitsFor: e.waitsFor,
      wanted: at(e.wanted),
      depsMet: at(e.depsMet),
      spawned: at(e.spawned),
      ready: at(e.ready),
      stopAsked: at(e.stopAsked),
      exited: at(e.exited),
      ...(e.failed !== undefined ? { failed: e.failed, failedAt: at(e.failedAt) } : {}),
    };
    const end = s.ready ?? s.failedAt;
    if (s.spawned !== undefined && end !== undefined) s.activation = r3(end - s.spawned);
    if (s.wanted !== undefined && s.depsMet !== undefined) s.waited = r3(s.depsMet - s.wanted);
    return s;
  });
  services.sort((a, b) => (a.wanted ?? Infinity) - (b.wanted ?? Infinity) || a.name.localeCompare(b.name));
  let allUp: number | undefined;
  let last: string | undefined;
  const notReady: string[] = [];
  for (const s of services) {
    const end = s.ready ?? s.failedAt;
    if (end === undefined) {
      if (s.wanted !== undefined) notReady.push(s.name);
      continue;
    }
    if (allUp === undefined || end > allUp) {
      allUp = end;
      last = s.name;
    }
  }
  return {
    origin: boot ? 'boot' : 'supervisor',
    ...(boot ? { kernel: r3(boot.kernel), stage1: { start: r3(boot.kernel), end: r3(boot.stage1End) } } : {}),
    supervisorStart: r3(t.supervisorStart - o),
    allUp,
    last,
    notReady,
    services,
  };
}

const sec = (x: number) => `${x.toFixed(3)}s`;

/** `analyze time`: kernel + stage 1 + services = total. */
export function formatTime(a: Analysis): string {
  const lines: string[] = [];
  if (a.origin === 'boot' && a.kernel !== undefined && a.stage1) {
    const parts = [`${sec(a.kernel)} (kernel)`, `${sec(a.stage1.end - a.stage1.start)} (stage 1)`];
    if (a.allUp !== undefined) parts.push(`${sec(a.allUp - a.stage1.end)} (services)`);
    lines.push(`Startup finished in ${parts.join(' + ')}${a.allUp !== undefined ? ` = ${sec(a.allUp)}` : ''}`);
  } else {
    lines.push(`No boot marks (stage 1 of this runit-ts writes ${BOOT_MARKS_FILE}): times count from the supervisor's start.`);
    if (a.allUp !== undefined) lines.push(`Services up ${sec(a.allUp)} after the supervisor started`);
  }
  if (a.allUp !== undefined) lines.push(`All ${a.services.length - a.notReady.length} services up at ${sec(a.allUp)} (last: ${a.last})`);
  if (a.notReady.length) lines.push(`Not ready: ${a.notReady.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** `analyze blame`: services by how long they took from spawn to ready, longest first. */
export function formatBlame(a: Analysis): string {
  const rows = a.services.filter((s) => s.activation !== undefined).sort((x, y) => y.activation! - x.activation! || x.name.localeCompare(y.name));
  const w = Math.max(8, ...rows.map((s) => sec(s.activation!).length));
  return rows
    .map((s) => {
      const declared = s.dependencies.length + s.waitsFor.length > 0;
      const notes = [s.readiness, ...(declared && s.waited !== undefined ? [`waited ${sec(s.waited)} for dependencies`] : []), ...(s.failed ? [`failed: ${s.failed}`] : [])];
      return `${sec(s.activation!).padStart(w)} ${s.name} (${notes.join(', ')})`;
    })
    .join('\n') + (rows.length ? '\n' : '');
}

export interface ChainLink {
  name: string;
  /** ready (or failed) at */
  at?: number;
  /** spawned -> ready */
  took?: number;
  /** the dependency it waited for last, if any */
  after?: ChainLink;
}

/** The chain of dependencies that made `name` (default: the last service up) as late as it was. */
export function criticalChain(a: Analysis, name = a.last): ChainLink | undefined {
  if (!name) return undefined;
  const by = new Map(a.services.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const link = (n: string): ChainLink | undefined => {
    const s = by.get(n);
    if (!s || seen.has(n)) return undefined;
    seen.add(n);
    const l: ChainLink = { name: n, at: s.ready ?? s.failedAt, took: s.activation };
    // the dependency that became ready last, before this one could start
    let best: ServiceSpan | undefined;
    for (const d of [...s.dependencies, ...s.waitsFor]) {
      const ds = by.get(d);
      const end = ds?.ready ?? ds?.failedAt;
      if (ds && end !== undefined && (s.depsMet === undefined || end <= s.depsMet + 0.001)) {
        if (!best || end > (best.ready ?? best.failedAt)!) best = ds;
      }
    }
    if (best) l.after = link(best.name);
    return l;
  };
  return link(name);
}

export function formatChain(c: ChainLink | undefined): string {
  if (!c) return 'no service became ready\n';
  const out: string[] = [];
  let depth = 0;
  for (let l: ChainLink | undefined = c; l; l = l.after, depth++) {
    const at = l.at === undefined ? 'not ready' : `@${sec(l.at)}`;
    const took = l.took === undefined ? '' : ` +${sec(l.took)}`;
    out.push(`${depth ? `${' '.repeat((depth - 1) * 2)}└─` : ''}${l.name} ${at}${took}`);
  }
  return out.join('\n') + '\n';
}

// ---- the plot ----

/** Pixels per second of the plot's time axis (narrower for long boots, see PLOT_MAX_WIDTH_PX). */
export const PLOT_PX_PER_S = 120;
/** The widest the time axis gets (px). */
export const PLOT_MAX_WIDTH_PX = 1600;
/** Height of one row (px). */
export const PLOT_ROW_PX = 22;
/** Room for the names on the left (px). */
export const PLOT_LABEL_PX = 170;
/** The least width: room for the legend (px). */
export const PLOT_LEGEND_PX = 1060;

const COLOURS = {
  kernel: '#9db4d6',
  stage1: '#c9a0dc',
  waiting: '#f3e3a3',
  starting: '#f0a35e',
  running: '#7cc47f',
  task: '#5fa8d3',
  failed: '#e0605a',
  ready: '#1d1d1d',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * An SVG a person can open in a browser: one row per service (waiting for dependencies,
 * starting, running; a one-shot's task; failures in red), readiness as a black tick,
 * kernel and stage 1 on top when known, a grid line each second.
 */
export function plotSvg(a: Analysis, title = 'runit-ts boot'): string {
  const ends = a.services.flatMap((s) => [s.ready, s.failedAt, s.exited, s.stopAsked, s.spawned].filter((x): x is number => x !== undefined));
  const end = Math.max(a.allUp ?? 0, a.stage1?.end ?? 0, ...ends) + 0.5;
  const pxs = Math.min(PLOT_PX_PER_S, PLOT_MAX_WIDTH_PX / end);
  const x = (t: number) => PLOT_LABEL_PX + t * pxs;
  const head = 70;
  const rows: string[] = [];
  const bar = (y: number, t0: number, t1: number, fill: string, tip: string) =>
    rows.push(`<rect x="${x(t0).toFixed(1)}" y="${y + 3}" width="${Math.max(1, (t1 - t0) * pxs).toFixed(1)}" height="${PLOT_ROW_PX - 6}" fill="${fill}"><title>${esc(tip)}</title></rect>`);
  const label = (y: number, text: string) => rows.push(`<text x="${PLOT_LABEL_PX - 6}" y="${y + PLOT_ROW_PX - 7}" text-anchor="end">${esc(text)}</text>`);
  let y = head;
  if (a.kernel !== undefined && a.stage1) {
    label(y, 'kernel');
    bar(y, 0, a.kernel, COLOURS.kernel, `kernel: ${sec(a.kernel)}`);
    y += PLOT_ROW_PX;
    label(y, 'stage 1');
    bar(y, a.stage1.start, a.stage1.end, COLOURS.stage1, `stage 1: ${sec(a.stage1.end - a.stage1.start)}`);
    y += PLOT_ROW_PX;
  }
  for (const s of a.services) {
    label(y, s.name);
    const stop = s.stopAsked ?? s.exited ?? end;
    if (s.wanted !== undefined && s.dependencies.length + s.waitsFor.length > 0) bar(y, s.wanted, s.depsMet ?? end, COLOURS.waiting, `${s.name}: waiting for ${[...s.dependencies, ...s.waitsFor].join(', ') || 'nothing'}`);
    if (s.spawned !== undefined) {
      if (s.type === 'oneshot') {
        bar(y, s.spawned, s.exited ?? end, s.failed ? COLOURS.failed : COLOURS.task, `${s.name}: task ${s.failed ? `failed (${s.failed})` : 'ran'}`);
      } else {
        const ready = s.ready ?? s.failedAt ?? end;
        bar(y, s.spawned, ready, s.failed && s.ready === undefined ? COLOURS.failed : COLOURS.starting, `${s.name}: starting (${s.readiness})`);
        if (s.ready !== undefined && stop > s.ready) bar(y, s.ready, stop, COLOURS.running, `${s.name}: running`);
      }
    }
    if (s.ready !== undefined) {
      rows.push(`<rect x="${(x(s.ready) - 1).toFixed(1)}" y="${y + 1}" width="2" height="${PLOT_ROW_PX - 2}" fill="${COLOURS.ready}"><title>${esc(`${s.name}: ready at ${sec(s.ready)}`)}</title></rect>`);
    }
    const note = s.ready !== undefined ? `${sec(s.ready)}${s.activation ? ` (+${sec(s.activation)})` : ''}` : s.failed ? `failed: ${s.failed}` : 'not ready';
    rows.push(`<text x="${(x(s.ready ?? s.failedAt ?? s.spawned ?? s.wanted ?? 0) + 6).toFixed(1)}" y="${y + PLOT_ROW_PX - 7}" class="n">${esc(note)}</text>`);
    y += PLOT_ROW_PX;
  }
  const width = Math.max(Math.ceil(x(end) + 150), PLOT_LEGEND_PX);
  const height = y + 30;
  const grid: string[] = [];
  for (let t = 0; t <= end; t++) {
    grid.push(`<line x1="${x(t).toFixed(1)}" y1="${head - 8}" x2="${x(t).toFixed(1)}" y2="${y}" class="g"/>`);
    grid.push(`<text x="${x(t).toFixed(1)}" y="${y + 16}" text-anchor="middle" class="n">${t}s</text>`);
  }
  const legend = (
    [
      ['waiting for dependencies', COLOURS.waiting],
      ['starting (not ready)', COLOURS.starting],
      ['running (ready)', COLOURS.running],
      ['one-shot task', COLOURS.task],
      ['failed', COLOURS.failed],
      ['ready', COLOURS.ready],
    ] as const
  )
    .map(([t, c], i) => `<rect x="${10 + i * 175}" y="36" width="14" height="14" fill="${c}"/><text x="${28 + i * 175}" y="48">${esc(t)}</text>`)
    .join('');
  const summary = a.allUp !== undefined ? `all up at ${sec(a.allUp)}${a.origin === 'boot' ? ' after boot' : ' after the supervisor started'} (last: ${a.last})` : 'not all up';
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<style>.g{stroke:#ddd;stroke-width:1}.n{fill:#555;font-size:11px}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}: ${esc(summary)}</text>
${legend}
${grid.join('\n')}
${rows.join('\n')}
</svg>
`;
}
