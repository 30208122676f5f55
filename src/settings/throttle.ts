/**
 * Throttling settings (docs/settings.md, docs/operating.md "Throttling"). How many failed sign-ins
 * or anonymous pulls a period allows is the Rate Limiting bindings' own `simple = { limit, period }`
 * in wrangler.toml (the binding takes only a key at runtime); these say what happens around them.
 */
import * as v from 'valibot'
import { flag, wholeNumber } from './values'

/**
 * How long an address or user name past a sign-in limit is refused before any password check,
 * and the Retry-After of every 429. At least the bindings' period (60 s as shipped), so the limit
 * has passed when the client comes back.
 */
export const THROTTLE_RETRY_SECONDS = v.pipe(
  wholeNumber({
    fallback: 60,
    min: 1,
    description: 'Seconds an address or user name past a sign-in limit is refused (and every 429\'s Retry-After); 1 to 86400',
    message: 'must be a whole number of seconds from 1 to 86400',
  }),
  v.maxValue(86400, 'must be a whole number of seconds from 1 to 86400'),
)

/** "true" limits anonymous manifest GETs per client address (ANONYMOUS_PULLS_BY_ADDRESS), Docker Hub style. */
export const THROTTLE_ANONYMOUS_PULLS = flag(false, '"true": anonymous manifest GETs are limited per client address (ANONYMOUS_PULLS_BY_ADDRESS)')

/** The sign-in Rate Limiting bindings (wrangler.toml [[ratelimits]]): AUTH_MODE "token" needs them. */
export const SIGNIN_BINDINGS = ['SIGNIN_FAILURES_BY_ADDRESS', 'SIGNIN_FAILURES_BY_USER', 'SIGNIN_CHECKS_BY_ADDRESS'] as const

/** The anonymous pull limit's binding: THROTTLE_ANONYMOUS_PULLS "true" needs it. */
export const ANONYMOUS_PULLS_BINDING = 'ANONYMOUS_PULLS_BY_ADDRESS'
