import { readdir, readFile } from 'node:fs/promises';

/**
 * CPU time of threads and processes on this host, from Linux's /proc (elsewhere every figure is undefined). Node 20
 * has no per-thread CPU clock, and `process.cpuUsage()` would count the scaletest's own client and push-sink threads
 * with the in-process daemon, so the daemon is measured as the threads it runs on.
 */

/** USER_HZ: the unit of /proc's CPU times; 100 on every Linux architecture Node supports. */
const ticksPerSecond = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime of the thread or process itself. */
  ownSeconds: number;
  /** cutime + cstime: children that have exited and been reaped (a process's figure; 0 for a thread). */
  reapedChildrenSeconds: number;
}

/** Parses /proc/…/stat; the command name sits in parentheses and may itself contain spaces and parentheses. */
export function parseProcStat(text: string): ProcStat {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // `rest` starts at field 3 (state): field n of proc(5) is rest[n - 3].
  const field = (n: number) => Number(rest[n - 3]);
  return { ppid: field(4), ownSeconds: (field(14) + field(15)) / ticksPerSecond, reapedChildrenSeconds: (field(16) + field(17)) / ticksPerSecond };
}

async function readStat(path: string): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds of threads of this process, by OS thread id (the main thread's id is the pid); undefined off Linux. */
export async function threadsCpuSeconds(tids: number[]): Promise<number | undefined> {
  let total = 0;
  for (const tid of tids) {
    const s = await readStat(`/proc/self/task/${tid}/stat`);
    if (!s) return undefined;
    total += s.ownSeconds;
  }
  return total;
}

/**
 * CPU seconds of a PostgreSQL cluster: the postmaster, every live child (backends, checkpointer, walwriter,
 * autovacuum…) and the children it has reaped, so a backend that exits between two readings keeps its time.
 */
export async function clusterCpuSeconds(postmasterPid: number): Promise<number | undefined> {
  const postmaster = await readStat(`/proc/${postmasterPid}/stat`);
  if (!postmaster) return undefined;
  let total = postmaster.ownSeconds + postmaster.reapedChildrenSeconds;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = await readStat(`/proc/${entry}/stat`);
    if (s?.ppid === postmasterPid) total += s.ownSeconds;
  }
  return total;
}

/**
 * The postmaster of a backend that runs on this host: its parent, when both are `postgres` processes. A backend pid
 * of a database elsewhere names nothing here, or an unrelated process, which the check refuses.
 */
export async function localPostmasterOf(backendPid: number): Promise<number | undefined> {
  const isPostgres = async (pid: number) => (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim().startsWith('postgres');
  const backend = await readStat(`/proc/${backendPid}/stat`);
  if (!backend || !(await isPostgres(backendPid)) || !(await isPostgres(backend.ppid))) return undefined;
  return backend.ppid;
}
