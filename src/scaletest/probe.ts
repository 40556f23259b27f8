import type { LatencySummary } from '../daemon/observability/quantiles.js';
import type { DbStats } from '../daemon/postgres/pool.js';
import { clusterCpuSeconds, threadsCpuSeconds } from './cpu.js';
import { Scrape } from './promText.js';

/**
 * Where the scaletest reads the daemon's figures: the pool of an in-process daemon (exact), or a remote daemon's
 * /metrics (counters exact, acquire-wait quantiles from histogram buckets, waiting from sampled gauges).
 */
export interface DaemonProbe {
  readonly source: 'in-process' | 'metrics';
  /** Cumulative counters now; the report subtracts the figures taken when the runners started. */
  figures(): Promise<DaemonFigures>;
  /** Cheap, taken every progress tick. */
  sample(): Promise<PoolSample>;
}

export interface PoolSample {
  waiting: number;
  total: number;
  /** In-process only: the integral of waiting over time, so an interval's mean can be had from two samples. */
  waitingSeconds?: number;
}

export interface DaemonFigures {
  queries: Record<string, number>;
  acquires: number;
  waitCount: number;
  /** In-process only: the pool's own records. */
  pool?: Pick<DbStats, 'poolMax' | 'peakWaiting' | 'waitingSeconds'> & { acquireWait: LatencySummary };
  /** Remote only: cumulative buckets of `coderlite_db_pool_acquire_wait_seconds`. */
  acquireWaitBuckets?: Array<[number, number]>;
  pubsubPublishes: number;
  pubsubFlushes: number;
  pubsubFlushedMessages: number;
  /** Frames written to stream sockets, and their bytes. */
  streamFrames: number;
  streamFrameBytes: number;
  pushByResult: Record<string, number>;
  cacheHits: number;
  cacheMisses: number;
  /** Seconds spent per query name (the sum of `coderlite_db_query_duration_seconds`). */
  querySeconds: Record<string, number>;
  /** CPU seconds of the daemon: its threads in process, its process_cpu_seconds_total remotely; undefined when unknown. */
  daemonCpuSeconds?: number;
  /** In process: of those, the main thread's (its event loop serves every request, stream and query). */
  mainThreadCpuSeconds?: number;
  /** CPU seconds of the PostgreSQL cluster when it runs on this host; undefined when unknown. */
  postgresCpuSeconds?: number;
  /** Cumulative buckets of `coderlite_chat_part_relay_seconds`: parts that crossed replicas. */
  partRelayBuckets: Array<[number, number]>;
}

/** PostgreSQL pubsub names its metrics `coder_pubsub_*`, NATS `coder_nats_pubsub_*` (as Coder does); a run uses one. */
const pubsubPrefixes = ['coder_pubsub', 'coder_nats_pubsub'];

/** The figures the pool does not know, from the daemon's Prometheus registry (same names in and out of process). */
function registryFigures(s: Scrape): Omit<DaemonFigures, 'queries' | 'acquires' | 'waitCount' | 'pool' | 'acquireWaitBuckets'> {
  return {
    pubsubPublishes: sumOver(pubsubPrefixes.map((p) => s.sum(`${p}_publishes_total`, { success: 'true' }))),
    pubsubFlushes: sumOver(pubsubPrefixes.map((p) => s.sum(`${p}_batch_flushes_total`))),
    pubsubFlushedMessages: sumOver(pubsubPrefixes.map((p) => s.sum(`${p}_batch_size_sum`))),
    streamFrames: s.sum('coderlite_http_stream_frames_total'),
    streamFrameBytes: s.sum('coderlite_http_stream_frame_bytes_total'),
    querySeconds: s.byLabel('coderlite_db_query_duration_seconds_sum', 'query'),
    pushByResult: s.byLabel('coderlite_webpush_dispatch_total', 'result'),
    cacheHits: s.sum('coderlite_webpush_subscription_cache_total', { result: 'hit' }),
    cacheMisses: s.sum('coderlite_webpush_subscription_cache_total', { result: 'miss' }),
    partRelayBuckets: s.buckets('coderlite_chat_part_relay_seconds'),
  };
}

const sumOver = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export interface InProcessDaemon {
  db: { stats(): DbStats };
  registry: { metrics(): Promise<string> };
}

/** Where an in-process daemon's CPU time is read: the OS threads it runs on, and its cluster's postmaster if local. */
export interface CpuSources {
  threadIds(): number[];
  postmasterPid?: number;
}

export function inProcessProbe(daemon: InProcessDaemon, cpu?: CpuSources): DaemonProbe {
  return {
    source: 'in-process',
    async figures() {
      const st = daemon.db.stats();
      const scrape = Scrape.parse(await daemon.registry.metrics());
      return {
        daemonCpuSeconds: cpu ? await threadsCpuSeconds(cpu.threadIds()) : undefined,
        mainThreadCpuSeconds: cpu ? await threadsCpuSeconds([process.pid]) : undefined,
        postgresCpuSeconds: cpu?.postmasterPid !== undefined ? await clusterCpuSeconds(cpu.postmasterPid) : undefined,
        queries: st.queries,
        acquires: st.acquires,
        waitCount: st.waitCount,
        pool: { poolMax: st.poolMax, peakWaiting: st.peakWaiting, waitingSeconds: st.waitingSeconds, acquireWait: st.acquireWait },
        ...registryFigures(scrape),
      };
    },
    async sample() {
      const st = daemon.db.stats();
      return { waiting: st.waiting, total: st.total, waitingSeconds: st.waitingSeconds };
    },
  };
}

export function remoteProbe(baseUrl: string, opts: { timeoutMs?: number } = {}): DaemonProbe {
  const scrape = async () => {
    const res = await fetch(new URL('/metrics', baseUrl), { signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
    if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
    return Scrape.parse(await res.text());
  };
  return {
    source: 'metrics',
    async figures() {
      const s = await scrape();
      const buckets = s.buckets('coderlite_db_pool_acquire_wait_seconds');
      return {
        queries: s.byLabel('coderlite_db_queries_total', 'query'),
        acquires: buckets.at(-1)?.[1] ?? 0,
        waitCount: s.sum('coderlite_db_pool_wait_count_total'),
        acquireWaitBuckets: buckets,
        // prom-client's default metrics: the whole daemon process (a remote daemon runs nothing else).
        daemonCpuSeconds: s.samples.some((x) => x.name === 'process_cpu_seconds_total') ? s.sum('process_cpu_seconds_total') : undefined,
        ...registryFigures(s),
      };
    },
    async sample() {
      const s = await scrape();
      return { waiting: s.sum('coderlite_db_pool_waiting_connections'), total: s.sum('coderlite_db_pool_total_connections') };
    },
  };
}

/** Several replicas as one daemon: every figure is a sum (bucket bounds are the same on every replica). */
export function combinedProbe(probes: DaemonProbe[]): DaemonProbe {
  const addRecords = (rs: Array<Record<string, number>>) => {
    const out: Record<string, number> = {};
    for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const addBuckets = (bs: Array<Array<[number, number]> | undefined>) => {
    const out = new Map<number, number>();
    for (const b of bs) for (const [le, n] of b ?? []) out.set(le, (out.get(le) ?? 0) + n);
    return [...out.entries()].sort((a, b) => a[0] - b[0]);
  };
  return {
    source: 'metrics',
    async figures() {
      const fs = await Promise.all(probes.map((p) => p.figures()));
      const sum = (pick: (f: DaemonFigures) => number) => fs.reduce((a, f) => a + pick(f), 0);
      return {
        queries: addRecords(fs.map((f) => f.queries)),
        acquires: sum((f) => f.acquires),
        waitCount: sum((f) => f.waitCount),
        acquireWaitBuckets: addBuckets(fs.map((f) => f.acquireWaitBuckets)),
        pubsubPublishes: sum((f) => f.pubsubPublishes),
        pubsubFlushes: sum((f) => f.pubsubFlushes),
        pubsubFlushedMessages: sum((f) => f.pubsubFlushedMessages),
        streamFrames: sum((f) => f.streamFrames),
        streamFrameBytes: sum((f) => f.streamFrameBytes),
        pushByResult: addRecords(fs.map((f) => f.pushByResult)),
        cacheHits: sum((f) => f.cacheHits),
        cacheMisses: sum((f) => f.cacheMisses),
        querySeconds: addRecords(fs.map((f) => f.querySeconds)),
        partRelayBuckets: addBuckets(fs.map((f) => f.partRelayBuckets)),
        // The replicas' processes together; unknown when one of them does not say.
        daemonCpuSeconds: fs.every((f) => f.daemonCpuSeconds !== undefined) ? sum((f) => f.daemonCpuSeconds!) : undefined,
      };
    },
    async sample() {
      const ss = await Promise.all(probes.map((p) => p.sample()));
      return { waiting: ss.reduce((a, s) => a + s.waiting, 0), total: ss.reduce((a, s) => a + s.total, 0) };
    },
  };
}
