// SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/): the one
// time every output of the image builder records (file times, image configs, SBOMs,
// superblocks), read here for the builder, the packers and the .deb of scripts/install.ts.

/** SOURCE_DATE_EPOCH (seconds), 0 when unset or empty; anything but digits is an error. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new Error(`SOURCE_DATE_EPOCH must be a number of seconds, got "${v}"`);
  return Number(v);
}

/** Whether the build was asked to be reproducible (SOURCE_DATE_EPOCH set): no random salts then. */
export function reproducibleBuild(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SOURCE_DATE_EPOCH !== undefined && env.SOURCE_DATE_EPOCH !== '';
}
