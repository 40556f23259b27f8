import { isUtf8 } from 'node:buffer';

import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

import { ErrInvalidText } from './errors.js';

/**
 * The rules every client input passes before a handler (and so PostgreSQL) sees it:
 * - ids are canonical UUIDs, 36 characters 8-4-4-4-12 (the `uuid` format also takes `urn:uuid:…`, which
 *   PostgreSQL refuses);
 * - integers in a query are plain decimal digits, finite and in range: no `Infinity`, `1e309`, `0x10`, `1.5`;
 * - text is valid UTF-8 without NUL (PostgreSQL's text type has no NUL) and without lone surrogates (they have no
 *   UTF-8 form), in every string of the body, query and params, keys included;
 * - a body nests at most `maxJsonDepth` levels.
 */
export const uuidPattern = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const Uuid = (opts: { description?: string } = {}) => Type.String({ pattern: uuidPattern, minLength: 36, maxLength: 36, ...opts });

/** An integer query parameter: its text must be decimal digits, so nothing non-finite is coerced in. */
const decimalInteger = /^-?(0|[1-9][0-9]{0,15})$/;

/** Nesting deeper than this is no request of ours: refused before anything walks it. */
export const maxJsonDepth = 32;

const badText = /\0|\p{Cs}/u;

/** Why a string is refused as text, or undefined. */
export function textProblem(s: string): string | undefined {
  if (!badText.test(s)) return undefined;
  return s.includes('\0') ? 'contains a NUL character' : 'contains a lone UTF-16 surrogate (not valid UTF-8)';
}

/** Walks a parsed value without recursion; the first refused string or a nesting too deep. */
export function valueProblem(root: unknown, maxDepth = maxJsonDepth): string | undefined {
  const stack: Array<[unknown, number, string]> = [[root, 0, '']];
  while (stack.length > 0) {
    const [v, depth, path] = stack.pop()!;
    if (typeof v === 'string') {
      const p = textProblem(v);
      if (p) return `${path || '/'} ${p}`;
    } else if (v !== null && typeof v === 'object') {
      if (depth >= maxDepth) return `nests deeper than ${maxDepth} levels`;
      for (const [k, child] of Object.entries(v)) {
        const p = textProblem(k);
        if (p) return `a key at ${path || '/'} ${p}`;
        stack.push([child, depth + 1, `${path}/${k.slice(0, 40)}`]);
      }
    }
  }
  return undefined;
}

/**
 * Params and headers arrive as strings (Node joins a repeated header), so an object of plain strings without defaults
 * takes them as they are: converting would walk every header of every request and change nothing.
 */
function takesTextAsIs(schema: TSchema, httpPart: string | undefined): boolean {
  if (httpPart !== 'params' && httpPart !== 'headers') return false;
  const props = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  return Object.values(props).every((p) => p.type === 'string' && !('default' in p));
}

function integerKeys(schema: TSchema): string[] {
  const props = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  return Object.entries(props).flatMap(([k, p]) => (p.type === 'integer' ? [k] : []));
}

/**
 * TypeBox validation for every route. Bodies are checked as sent (JSON has types); querystring, params and headers
 * arrive as text and are converted after the strict integer check, with schema defaults filled in first.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const integers = httpPart === 'body' ? [] : integerKeys(schema);
  const convert = httpPart !== 'body' && !takesTextAsIs(schema, httpPart);
  return (input: unknown) => {
    let value = input;
    if (convert) {
      const fields = (input ?? {}) as Record<string, unknown>;
      const bad = integers.find((k) => fields[k] !== undefined && !(typeof fields[k] === 'string' && decimalInteger.test(fields[k])));
      if (bad) return { error: [{ keyword: 'type', instancePath: `/${bad}`, schemaPath: '', params: {}, message: 'must be a decimal integer' }] };
      value = Value.Convert(schema, Value.Default(schema, input));
    }
    if (check.Check(value)) return { value };
    return { error: [...check.Errors(value)].slice(0, 1) };
  };
};

/**
 * JSON is the only body the API takes (anything else is 415). The bytes must be UTF-8 (a decoder would quietly turn
 * bad bytes into U+FFFD), and every string in it text by the rules above.
 */
export function installBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    if (!isUtf8(body)) return done(new ErrInvalidText({ detail: 'the body is not valid UTF-8' }), undefined);
    // Called with a callback, fastify's parser returns nothing; its type admits a promise.
    void parseJson(req, body.toString('utf8'), (err, value) => {
      if (err) return done(err, undefined);
      const problem = valueProblem(value);
      if (problem) return done(new ErrInvalidText({ detail: `body ${problem}` }), undefined);
      done(null, value);
    });
  });
}

/** Query strings and path params are text too: checked before validation, for every route. */
export function installTextCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    for (const [part, value] of [
      ['querystring', req.query],
      ['params', req.params],
    ] as const) {
      const problem = valueProblem(value, 2);
      if (problem) throw new ErrInvalidText({ detail: `${part} ${problem}` });
    }
  });
}
