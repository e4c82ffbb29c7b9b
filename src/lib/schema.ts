// A YAML (or JSON) document read and checked against a JSON Schema, with one line for the
// first problem: the image spec (image/spec.ts) and runit-ts-vm's config (src/vm/config.ts)
// both read their files through this. The parser is the `yaml` package and the checker
// ajv (compiled by the caller); only the wording of the line is ours.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';

/** ajv's first error as the parts of one line: the field (a JSON pointer), the bad value, what was expected. */
export interface SchemaProblem {
  field: string;
  /** the value found, as JSON (none for a missing or unknown field) */
  value?: string;
  expected: string;
}

/** Name the field and what it must be, for ajv's error e (compiled with verbose: true). */
export function schemaProblem(e: ErrorObject): SchemaProblem {
  const field = e.instancePath || '/';
  const value = JSON.stringify(e.data);
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      return { field: `${field === '/' ? '' : field}/${extra}`, expected: `unknown field${known.length ? ` (expected one of: ${known.join(', ')})` : ''}` };
    }
    case 'required':
      return { field, expected: `missing required field "${(e.params as { missingProperty: string }).missingProperty}"` };
    case 'enum':
      return { field, value, expected: `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
    case 'pattern':
      return { field, value, expected: `must match ${(e.params as { pattern: string }).pattern}` };
    case 'type': {
      const type = (e.params as { type: string | string[] }).type;
      return { field, value, expected: `must be of type ${Array.isArray(type) ? type.join(' or ') : type}` };
    }
    default:
      return { field, value, expected: e.message ?? e.keyword };
  }
}

export interface ReadChecked {
  /** the file's name in messages */
  file: string;
  /** what the syntax must be, in the message for a parse error ("YAML", "YAML/JSON") */
  syntax: string;
  /** the message for an empty document */
  empty: string;
  /** quote the bad value in the line (`field F: "x" must ...`) */
  quoteValue: boolean;
  /** makes the error thrown for a problem (the caller's error class) */
  fail: (line: string) => Error;
}

/** The first problem of a YAML text: its line (when known) and the parser's message (its first line). */
export interface YamlProblem {
  line?: number;
  message: string;
}

/** Aliases a document may expand at most (yaml's default): more is a "billion laughs" document. */
export const MAX_ALIAS_COUNT = 100;

/**
 * Parse YAML text (unique keys) into plain data: mappings, lists, strings, numbers,
 * booleans and null. YAML 1.1's explicit tags (!!binary, !!set, !!omap, !!timestamp) are
 * not turned into a Buffer, Set, Map or Date (a Buffer would be checked as a mapping of
 * its bytes and methods): their value stays as written. Never throws: a syntax error, an
 * alias with no anchor, or aliases expanding past MAX_ALIAS_COUNT are the problem.
 */
export function parseYaml(text: string): { data: unknown } | { problem: YamlProblem } {
  // (logLevel error: yaml's warnings, such as a mapping used as a key, would go to
  // stderr as Node process warnings; a key that is a mapping is written as text, and the
  // schema then refuses it in one line)
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, resolveKnownTags: false, logLevel: 'error' });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    return { problem: { ...(e.linePos ? { line: e.linePos[0].line } : {}), message: e.message.split('\n')[0]! } };
  }
  try {
    return { data: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (e) {
    // yaml throws a ReferenceError for an alias it cannot (or must not) expand
    return { problem: { message: e instanceof Error ? e.message : String(e) } };
  }
}

/**
 * A problem's text on one line: line breaks, tabs and the other control characters (a
 * field name or a path from the document may hold any) written as JSON writes them
 * (\n, \t, \u001b), so that a problem is always one line.
 */
export function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f\u0085\u2028\u2029]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** oneLine()'s short escapes */
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Parse text as YAML (unique keys), check it with validate, and return it; a problem throws fail(one line). */
export function readChecked<T>(text: string, validate: ValidateFunction, o: ReadChecked): T {
  const parsed = parseYaml(text);
  if ('problem' in parsed) {
    const p = parsed.problem;
    throw o.fail(`${o.file}: ${p.line !== undefined ? `line ${p.line}: ` : ''}not valid ${o.syntax}: ${oneLine(p.message)}`);
  }
  const data = parsed.data;
  if (data === null || data === undefined) throw o.fail(`${o.file}: ${o.empty}`);
  if (!validate(data)) {
    const p = schemaProblem(validate.errors![0]!);
    throw o.fail(`${o.file}: field ${oneLine(p.field)}: ${o.quoteValue && p.value !== undefined ? `${p.value} ` : ''}${oneLine(p.expected)}`);
  }
  return data as T;
}
