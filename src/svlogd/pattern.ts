// svlogd's pattern language (runit's pmatch): a pattern must match the whole line.
//   *c  skips up to (not including) the next c in the line; a trailing * matches the rest
//   +c  matches one or more c; once the line is used up the pattern counts as matched
//   any other character matches itself
// There is no backtracking: "*" stops at the first occurrence of the character after it.

const STAR = 0x2a;
const PLUS = 0x2b;

/** Does pattern p match the len bytes of s at off? */
export function pmatch(p: Uint8Array, s: Uint8Array, off: number, len: number): boolean {
  let pi = 0;
  let si = off;
  let n = len;
  for (;;) {
    if (pi >= p.length) return n === 0;
    const c = p[pi++]!;
    if (c === STAR) {
      if (pi >= p.length) return true;
      const want = p[pi]!;
      for (;;) {
        if (n === 0) return false;
        if (s[si] === want) break;
        si++;
        n--;
      }
      continue;
    }
    if (c === PLUS) {
      // runit compares with the byte at the line's end when the line is used up; there is
      // none, so that never matches here
      if (pi >= p.length || n === 0) return false;
      const want = p[pi++]!;
      if (s[si] !== want) return false;
      for (;;) {
        if (n === 0) return true;
        if (s[si] !== want) break;
        si++;
        n--;
      }
      continue;
    }
    if (n === 0 || s[si] !== c) return false;
    si++;
    n--;
  }
}
