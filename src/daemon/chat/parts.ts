/**
 * The parts of the turns this replica runs (DESIGN §4): each turn keeps every part of its current generation, so a
 * late joiner or a resumed cursor gets exactly the text it lacks, however long the turn. The subscribe handshake
 * lives in `stream.ts`; the relay to other replicas in `relay.ts`.
 */

/** Parts `seq`, `seq + 1`, … of `generation`. */
export type PartListener = (generation: number, seq: number, texts: readonly string[]) => void;

/** Where parts go besides this replica's listeners (the relay to other replicas). */
export interface PartTap {
  part(chatId: string, generation: number, seq: number, text: string): void;
  /** The generation produced its last part, or the turn ended: send what waits. */
  flush(chatId: string): void;
}

interface TurnParts {
  generation: number;
  /** Every part of the generation, in order: part `seq` is `parts[seq - 1]`. */
  parts: string[];
  running: boolean;
  listeners: Set<PartListener>;
}

export class LocalParts {
  private readonly turns = new Map<string, TurnParts>();
  private tap: PartTap | undefined;

  /** Parts also go to `tap` (set once, when the relay starts). */
  setTap(tap: PartTap): void {
    this.tap = tap;
  }

  /** A new run of the chat's turn: parts start again at seq 1. */
  beginTurn(chatId: string, generation: number): void {
    const t = this.entry(chatId);
    t.generation = generation;
    t.parts = [];
    t.running = true;
  }

  /** Fans a part out to this replica's listeners and the tap; never waits on them. */
  publish(chatId: string, text: string): void {
    const t = this.turns.get(chatId);
    if (!t?.running) return;
    t.parts.push(text);
    const seq = t.parts.length;
    for (const listener of t.listeners) listener(t.generation, seq, [text]);
    this.tap?.part(chatId, t.generation, seq, text);
  }

  /** The model is done (or failed): what the tap holds goes out before the turn's end is announced. */
  finish(chatId: string): void {
    this.tap?.flush(chatId);
  }

  endTurn(chatId: string): void {
    const t = this.turns.get(chatId);
    if (!t) return;
    this.tap?.flush(chatId);
    t.running = false;
    t.parts = [];
    this.release(chatId, t);
  }

  /** The running generation of a chat this replica runs, and how many parts it has. */
  current(chatId: string): { generation: number; seq: number } | undefined {
    const t = this.turns.get(chatId);
    return t?.running ? { generation: t.generation, seq: t.parts.length } : undefined;
  }

  /** The parts of `generation` after `seq`; undefined when this replica does not run that generation now. */
  since(chatId: string, generation: number, seq: number): readonly string[] | undefined {
    const t = this.turns.get(chatId);
    if (!t?.running || t.generation !== generation) return undefined;
    return t.parts.slice(Math.max(0, seq));
  }

  attach(chatId: string, listener: PartListener): void {
    this.entry(chatId).listeners.add(listener);
  }

  detach(chatId: string, listener: PartListener): void {
    const t = this.turns.get(chatId);
    if (!t) return;
    t.listeners.delete(listener);
    this.release(chatId, t);
  }

  /** Entries alive now (tests check that idle chats leave none). */
  size(): number {
    return this.turns.size;
  }

  private entry(chatId: string): TurnParts {
    let t = this.turns.get(chatId);
    if (!t) {
      t = { generation: 0, parts: [], running: false, listeners: new Set() };
      this.turns.set(chatId, t);
    }
    return t;
  }

  private release(chatId: string, t: TurnParts): void {
    if (!t.running && t.listeners.size === 0 && this.turns.get(chatId) === t) this.turns.delete(chatId);
  }
}
