/**
 * Where a stream client stands: the newest message it has, and the parts it holds of a run of the turn. Valid on
 * any replica. Written `<after_id>.<generation>.<seq>`; clients treat it as opaque.
 */
export interface StreamCursor {
  afterId: number;
  generation: number;
  seq: number;
}

const pattern = /^(\d{1,15})(?:\.(\d{1,15})\.(\d{1,15}))?$/;

export const formatCursor = (c: StreamCursor): string => `${c.afterId}.${c.generation}.${c.seq}`;

/** Undefined when `text` is not a cursor (the HTTP layer answers 400). */
export function parseCursor(text: string): StreamCursor | undefined {
  const m = pattern.exec(text);
  if (!m) return undefined;
  const [afterId, generation, seq] = [m[1], m[2] ?? '0', m[3] ?? '0'].map(Number) as [number, number, number];
  if (![afterId, generation, seq].every(Number.isSafeInteger)) return undefined;
  return { afterId, generation, seq };
}
