import { Box, Text, useApp, useInput, useStdin, useStdout } from 'ink';
import { useEffect, useRef, useState } from 'react';

import { matchesFilter, type TailEvent, type TailFeed } from './tailFeed.js';

export interface TailAppProps {
  channels: string[];
  feed: TailFeed;
  initialFilter?: RegExp;
  /** Quit after this many (filtered) messages. */
  max?: number;
  /** Colour output (off for NO_COLOR). */
  color?: boolean;
  /** How often the view redraws; events between redraws are batched, so a flood does not flood the terminal. */
  refreshMs?: number;
  /** Clock for the rates (tests). */
  now?: () => number;
}

interface Row {
  time: Date;
  channel: string;
  size: number;
  preview: string;
}

interface ChannelFigures {
  total: number;
  /** Messages per second over the last rate window. */
  rate: number;
}

const keptRows = 500;
const rateWindowMs = 1000;

/** Everything the view shows, mutated by events and copied into React state on each redraw. */
class TailModel {
  rows: Row[] = [];
  dropped = 0;
  matched = 0;
  connected = true;
  readonly channels = new Map<string, ChannelFigures & { windowStart: number; windowCount: number }>();

  constructor(
    channels: string[],
    private readonly now: () => number,
  ) {
    const t = now();
    for (const c of channels) this.channels.set(c, { total: 0, rate: 0, windowStart: t, windowCount: 0 });
  }

  add(event: TailEvent, filter: RegExp | undefined): boolean {
    if (event.kind === 'connection') {
      this.connected = event.connected;
      return false;
    }
    if (event.kind === 'dropped') {
      this.dropped++;
      return false;
    }
    const ch = this.channels.get(event.channel);
    if (ch) {
      ch.total++;
      ch.windowCount++;
    }
    const text = event.payload.toString('utf8');
    if (!matchesFilter(filter, event.channel, text)) return false;
    this.matched++;
    // Control characters would break the layout; the preview is one line.
    this.rows.push({ time: event.time, channel: event.channel, size: event.payload.length, preview: text.replace(/[\u0000-\u001f\u007f]+/g, ' ') });
    if (this.rows.length > keptRows * 2) this.rows = this.rows.slice(-keptRows);
    return true;
  }

  /** Closes each channel's rate window once it is a second old; true if any figure changed. */
  updateRates(): boolean {
    const t = this.now();
    let changed = false;
    for (const ch of this.channels.values()) {
      const elapsed = t - ch.windowStart;
      if (elapsed >= rateWindowMs) {
        const rate = (ch.windowCount * 1000) / elapsed;
        changed ||= rate !== ch.rate;
        ch.rate = rate;
        ch.windowStart = t;
        ch.windowCount = 0;
      }
    }
    return changed;
  }
}

function pad(s: string, width: number): string {
  return s.length >= width ? `${s.slice(0, width - 1)}…` : s.padEnd(width);
}

function clock(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function formatSize(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function parseFilter(source: string): RegExp | undefined | Error {
  if (source === '') return undefined;
  try {
    return new RegExp(source);
  } catch (err) {
    return err as Error;
  }
}

/** The `pubsub tail` view: a live message list, per-channel rates, drop signals, pause and filter. */
export function TailApp(props: TailAppProps) {
  const { exit } = useApp();
  const { isRawModeSupported } = useStdin();
  const { stdout } = useStdout();
  const refreshMs = props.refreshMs ?? 100;
  const color = props.color ?? true;
  const model = useRef<TailModel>(null);
  model.current ??= new TailModel(props.channels, props.now ?? (() => Date.now()));
  const [filter, setFilter] = useState<RegExp | undefined>(props.initialFilter);
  const filterRef = useRef(filter);
  filterRef.current = filter;
  const [paused, setPaused] = useState(false);
  const [editing, setEditing] = useState<string | undefined>(undefined);
  const [filterError, setFilterError] = useState<string | undefined>(undefined);
  const [frame, setFrame] = useState(() => snapshot(model.current!));
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const done = useRef(false);
  const [finished, setFinished] = useState(false);
  // Exit after the frame with the last message is drawn, so it stays on screen.
  useEffect(() => {
    if (finished) exit();
  }, [finished, exit]);

  function snapshot(m: TailModel) {
    return {
      rows: m.rows.slice(-keptRows),
      dropped: m.dropped,
      connected: m.connected,
      channels: [...m.channels].map(([name, f]) => ({ name, total: f.total, rate: f.rate })),
    };
  }

  useEffect(() => {
    const m = model.current!;
    let dirty = false;
    const off = props.feed.onEvent((event) => {
      if (done.current) return;
      m.add(event, filterRef.current);
      dirty = true;
      if (props.max !== undefined && m.matched >= props.max) {
        done.current = true;
        setFrame(snapshot(m));
        setFinished(true);
      }
    });
    const timer = setInterval(() => {
      const ratesChanged = m.updateRates();
      if (!dirty && !ratesChanged) return;
      dirty = false;
      // Paused: figures keep moving, the list holds still.
      setFrame((prev) => (pausedRef.current ? { ...snapshot(m), rows: prev.rows } : snapshot(m)));
    }, refreshMs);
    return () => {
      off();
      clearInterval(timer);
    };
  }, [props.feed, props.max, refreshMs, exit]);

  useInput(
    (input, key) => {
      if (editing !== undefined) {
        if (key.return) {
          const parsed = parseFilter(editing);
          if (parsed instanceof Error) {
            setFilterError(parsed.message);
            return;
          }
          setFilter(parsed);
          setFilterError(undefined);
          setEditing(undefined);
          // Applies to what is already on screen too.
          model.current!.rows = model.current!.rows.filter((r) => matchesFilter(parsed, r.channel, r.preview));
          setFrame(snapshot(model.current!));
        } else if (key.escape) {
          setEditing(undefined);
          setFilterError(undefined);
        } else if (key.backspace || key.delete) {
          setEditing(editing.slice(0, -1));
        } else if (input && !key.ctrl && !key.meta) {
          setEditing(editing + input);
        }
        return;
      }
      if (input === 'q' || (key.ctrl && input === 'c')) {
        done.current = true;
        exit();
      } else if (input === ' ') {
        setPaused((p) => {
          if (p) setFrame(snapshot(model.current!));
          return !p;
        });
      } else if (input === '/') {
        setEditing(filter?.source ?? '');
      }
    },
    // Without a TTY on stdin there are no keys to read, and Ink would crash trying to enter raw mode.
    { isActive: Boolean(isRawModeSupported) },
  );

  const width = stdout.columns || 100;
  const listHeight = Math.max(3, (stdout.rows || 24) - frame.channels.length - 7);
  const visible = frame.rows.slice(-listHeight);
  const channelWidth = Math.min(32, Math.max(8, ...props.channels.map((c) => c.length + 1)));
  const previewWidth = Math.max(10, width - 13 - channelWidth - 11);
  const c = (name: string) => (color ? name : undefined);

  return (
    <Box flexDirection="column">
      <Box>
        <Text bold>pubsub tail </Text>
        {frame.connected ? (
          <Text color={c(paused ? 'yellow' : 'green')}>{paused ? '❚❚ paused' : '● live'}</Text>
        ) : (
          <Text color={c('red')}>○ reconnecting…</Text>
        )}
        <Text>{`  dropped signals: `}</Text>
        <Text color={c(frame.dropped > 0 ? 'red' : 'gray')}>{String(frame.dropped)}</Text>
        <Text>{`  filter: ${filter ? `/${filter.source}/` : 'none'}`}</Text>
      </Box>
      {frame.channels.map((ch) => (
        <Text key={ch.name}>
          <Text color={c('cyan')}>{pad(ch.name, channelWidth)}</Text>
          {` ${String(ch.total).padStart(8)} msgs ${ch.rate.toFixed(1).padStart(9)}/s`}
        </Text>
      ))}
      <Text dimColor>{`${pad('TIME', 13)}${pad('CHANNEL', channelWidth)} ${'SIZE'.padStart(9)}  PAYLOAD`}</Text>
      {visible.length === 0 ? <Text dimColor>waiting for messages…</Text> : null}
      {visible.map((r, i) => (
        <Text key={i} wrap="truncate">
          <Text dimColor>{pad(clock(r.time), 13)}</Text>
          <Text color={c('cyan')}>{pad(r.channel, channelWidth)}</Text>
          {` ${formatSize(r.size).padStart(9)}  ${r.preview.slice(0, previewWidth)}`}
        </Text>
      ))}
      {editing !== undefined ? (
        <Box>
          <Text color={c('magenta')}>{`filter (regex, enter to apply, esc to cancel): /${editing}`}</Text>
          {filterError ? <Text color={c('red')}>{`  ${filterError}`}</Text> : null}
        </Box>
      ) : (
        <Text dimColor>space pause/resume · / filter · q quit</Text>
      )}
    </Box>
  );
}
