/**
 * The settings as JSON Schema (docs/settings.schema.json, `npm run settings-schema`), made from
 * the schemas the worker parses them with: a TOML editor that reads JSON Schema (Taplo, "Even
 * Better TOML") completes and checks wrangler.toml's `[vars]` and `[env.<name>.vars]` with it.
 * A JSON setting is either JSON text or the same structure written in TOML; the schema
 * describes both. Checks that span entries or settings (duplicates, floors) are the worker's and
 * check-config's: JSON Schema cannot say them. Not part of the worker: nothing it runs imports this.
 */
import { toJsonSchema, type ConversionConfig } from '@valibot/to-json-schema'
import type * as v from 'valibot'
import { SECRETS, VARS } from './index'
import { JSON_STRUCTURE } from './values'

type Json = { [key: string]: unknown }

const CONFIG: ConversionConfig = { typeMode: 'input', errorMode: 'ignore', target: 'draft-07' }

/** One schema, self-contained: its definitions put in place of each reference (settings are not recursive). */
function convert(schema: v.GenericSchema): Json {
  const { $schema: _, $defs, ...out } = toJsonSchema(schema, CONFIG) as Json & { $defs?: Record<string, Json> }
  const inline = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(inline)
    if (typeof node !== 'object' || node === null) return node
    const ref = (node as Json).$ref
    if (typeof ref === 'string' && $defs) return inline($defs[decodeURIComponent(ref.replace('#/$defs/', ''))])
    return Object.fromEntries(Object.entries(node).map(([k, x]) => [k, inline(x)]))
  }
  return inline(out) as Json
}

/** A setting's schema: for a JSON setting, its text form or its structure. */
function setting(schema: v.GenericSchema): Json {
  const own = convert(schema)
  const structure = (schema as { [JSON_STRUCTURE]?: v.GenericSchema })[JSON_STRUCTURE]
  if (!structure) return own
  const { description, default: fallback } = own
  return { description, default: fallback, anyOf: [{ type: 'string', description: 'JSON text' }, convert(structure)] }
}

const each = (list: Record<string, v.GenericSchema>) => Object.fromEntries(Object.entries(list).map(([name, s]) => [name, setting(s)]))

/** docs/settings.schema.json as `npm run settings-schema` writes it. */
export const settingsSchemaText = (): string => `${JSON.stringify(settingsJsonSchema(), null, 2)}\n`

/** The JSON Schema of wrangler.toml as far as this registry reads it. */
export function settingsJsonSchema(): Json {
  const secrets = Object.keys(SECRETS)
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'edge-registry settings',
    description:
      'wrangler.toml [vars] (and [env.<name>.vars]) as this registry reads them (docs/settings.md). Generated from src/settings/ by `npm run settings-schema`: do not edit.',
    type: 'object',
    properties: {
      vars: { $ref: '#/definitions/vars' },
      env: { type: 'object', additionalProperties: { type: 'object', properties: { vars: { $ref: '#/definitions/vars' } } } },
    },
    definitions: {
      vars: {
        type: 'object',
        properties: each(VARS),
        // Secrets never go in [vars]: they would show in the dashboard and in git.
        propertyNames: { not: { enum: secrets } },
      },
      secrets: {
        description: 'Secrets: `npx wrangler secret put NAME` (deployed) or .dev.vars (local), never [vars].',
        type: 'object',
        properties: each(SECRETS),
      },
    },
  }
}
