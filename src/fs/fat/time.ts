/**
 * DOS date/time fields (fatgen103 §6.1): 2-second resolution local time
 * from 1980 to 2107. ingot writes UTC (images are built for any zone and
 * must not depend on the builder's), like mkfs.fat under TZ=UTC.
 */
import type { Timespec } from '../../tree/tree.js';

export interface DosTime { date: number; time: number; tenths: number }

const MIN = Date.UTC(1980, 0, 1);
const MAX = Date.UTC(2107, 11, 31, 23, 59, 58);

export function toDosTime(t: Timespec): DosTime {
  const ms = Math.min(MAX, Math.max(MIN, t.sec * 1000 + Math.floor(t.nsec / 1e6)));
  const d = new Date(ms);
  const sec = d.getUTCSeconds();
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (sec >> 1),
    // Creation time's 10-ms units (0–199) carry the odd second and the sub-second part.
    tenths: ms === MAX || ms === MIN ? 0 : (sec & 1) * 100 + Math.floor((ms % 1000) / 10),
  };
}

/** Decode; invalid fields (month 0, day 0…) give undefined rather than a wrong date. */
export function fromDosTime(date: number, time: number, tenths = 0): Date | undefined {
  const y = 1980 + (date >> 9), mo = (date >> 5) & 15, d = date & 31;
  const h = time >> 11, mi = (time >> 5) & 63, s = (time & 31) * 2;
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s) + Math.min(tenths, 199) * 10);
}
