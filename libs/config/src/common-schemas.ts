import { isAbsolute } from "node:path";
import { isIP } from "node:net";
import { z } from "zod";
import { withInputDefault, type WithInputDefault } from "./input-default";

/** Log levels a service accepts, from most to least verbose (`silent` turns logging off). */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Zod schema for a log level (one of {@link LOG_LEVELS}); use `.default("info")`. */
export const logLevelSchema = z.enum(LOG_LEVELS);

/** A TCP listen address split into host and port. */
export interface ListenAddress {
  /** Host name or IP address (IPv6 without brackets), e.g. `0.0.0.0`, `::`, `localhost`. */
  readonly host: string;
  /** TCP port; 0 lets the OS pick one. */
  readonly port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/**
 * Parses `host:port` (`0.0.0.0:8443`, `localhost:0`, `[::1]:9090`) into a {@link ListenAddress}.
 * Returns an error message instead of throwing.
 */
export function parseListenAddress(text: string): ListenAddress | { error: string } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (match === null) return { error: `must be host:port (IPv6 as [addr]:port), got "${text}"` };
  const host = (match[1] ?? match[2]) as string;
  const port = Number(match[3]);
  if (port > 65535) return { error: `port ${port} is out of range 0-65535` };
  if (match[1] !== undefined && isIP(host) !== 6) {
    return { error: `"${host}" in brackets is not an IPv6 address` };
  }
  if (match[2] !== undefined && isIP(host) === 0 && !HOSTNAME.test(host)) {
    return { error: `"${host}" is not a valid host name or IP address` };
  }
  return { host, port };
}

/** Formats a {@link ListenAddress} as `host:port`, bracketing IPv6 addresses. */
export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** The zod schema type returned by {@link listenAddressSchema}. */
export type ListenAddressSchema = WithInputDefault<
  z.ZodPipe<z.ZodString, z.ZodTransform<ListenAddress, string>>
>;

/**
 * Zod schema for a `host:port` listen address (port 0 allowed); outputs a
 * {@link ListenAddress}. `.default("0.0.0.0:9090")` takes the string form.
 */
export function listenAddressSchema(): ListenAddressSchema {
  const schema = z.string().transform((text, ctx): ListenAddress => {
    const parsed = parseListenAddress(text);
    if ("error" in parsed) {
      ctx.addIssue({ code: "custom", message: parsed.error });
      return z.NEVER;
    }
    return parsed;
  });
  return withInputDefault(schema);
}

/**
 * The `ops` section of every service: `listen`, the address of its ops server (`/healthz`,
 * `/readyz`, `/metrics`), `defaultListen` when not set; the section itself may be left out.
 */
export function opsSchema(defaultListen: string) {
  return z
    .object({ listen: listenAddressSchema().default(defaultListen) })
    .strict()
    .prefault({});
}

/** Zod schema for an absolute filesystem path (no NUL bytes). */
export const pathSchema = z
  .string()
  .min(1, "must not be empty")
  .refine((p) => isAbsolute(p), { message: "must be an absolute path" })
  .refine((p) => !p.includes("\0"), { message: "must not contain NUL bytes" });
