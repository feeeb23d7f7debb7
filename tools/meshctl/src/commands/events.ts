import { parseDuration } from "@meshid/config";
import { MeshidError } from "@meshid/errors";
import {
  ALL_EVENTS_SUBJECT,
  EVENT_CATALOG,
  EVENT_STREAM_NAME,
  EVENT_SUBJECT_PREFIX,
  EVENT_TYPES,
  decodeEventMessage,
  isEventType,
  type EventMessage,
} from "@meshid/events";
import type { Command } from "commander";
import { connect, type MsgHdrs, type NatsConnection } from "nats";
import type { ActionBinder, CommandEnv } from "../command-env";
import { connectError, usageError } from "../exit-codes";
import { formatTime } from "../output";
import { parsePositiveInt } from "./option-parsers";

/** NATS URL used when neither --nats, MESHCTL_NATS_URL nor the context names one. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** Environment variable naming the NATS URL. */
export const NATS_URL_ENV = "MESHCTL_NATS_URL";

/**
 * Turns an `events tail` filter into a NATS subject: nothing → every event (`meshid.v1.>`); a
 * subject (contains `*` or `>` or starts with `meshid.`) as is; `kind` → `meshid.v1.<kind>.>`;
 * `kind.action` → `meshid.v1.<kind>.<action>`.
 *
 * @throws MeshidError `meshctl.usage` for a kind or type the catalog does not know.
 */
export function subjectForFilter(filter: string | undefined): string {
  if (filter === undefined || filter === "") return ALL_EVENTS_SUBJECT;
  if (/[*>]/.test(filter) || filter.startsWith(`${EVENT_SUBJECT_PREFIX}.`)) {
    if (/\s/.test(filter)) throw usageError(`invalid subject "${filter}": contains spaces`);
    return filter;
  }
  const kinds = [...new Set(EVENT_TYPES.map((t) => t.split(".")[0]))];
  if (filter.includes(".")) {
    if (!isEventType(filter)) {
      throw usageError(`unknown event type "${filter}" (known: ${EVENT_TYPES.join(", ")})`);
    }
    const def = EVENT_CATALOG[filter];
    return def.perAgent ? `${def.subject}.*` : def.subject;
  }
  if (!kinds.includes(filter)) {
    throw usageError(`unknown event kind "${filter}" (known: ${kinds.join(", ")})`);
  }
  return `${EVENT_SUBJECT_PREFIX}.${filter}.>`;
}

/**
 * Parses `--since`: a duration back from `now` (`10m`, `1h30m`) or an RFC 3339 time.
 * @throws MeshidError `meshctl.usage` otherwise.
 */
export function parseSince(text: string, now: Date): Date {
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) throw usageError(`--since "${text}" is not a valid time`);
    return date;
  }
  try {
    return new Date(now.getTime() - parseDuration(text) * 1000);
  } catch (err) {
    throw usageError(`--since "${text}" is neither a duration (10m, 1h) nor an RFC 3339 time`, err);
  }
}

function headersObject(headers: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  for (const key of headers.keys()) out[key] = headers.get(key);
  return out;
}

/** Longest event summary printed in human mode, in characters. */
const MAX_SUMMARY_CHARS = 200;

/**
 * A one-line summary of an event payload (protobuf JSON): `key=value` for every non-empty
 * field, SPIFFE IDs written as `spiffe://…`, lists joined with commas.
 */
export function summarizeEventData(data: unknown): string {
  if (typeof data !== "object" || data === null) return "";
  const text = (value: unknown): string => {
    if (Array.isArray(value)) return value.map(text).join(",");
    if (typeof value === "object" && value !== null) {
      const o = value as Record<string, unknown>;
      if (typeof o.trustDomain === "string") {
        return `spiffe://${o.trustDomain}${typeof o.path === "string" ? o.path : ""}`;
      }
      return JSON.stringify(value);
    }
    return String(value);
  };
  const parts = Object.entries(data as Record<string, unknown>)
    .map(([key, value]) => [key, text(value)] as const)
    .filter(([, value]) => value !== "" && value !== "false")
    .map(([key, value]) => `${key}=${value}`);
  const summary = parts.join(" ");
  return summary.length > MAX_SUMMARY_CHARS
    ? `${summary.slice(0, MAX_SUMMARY_CHARS - 1)}…`
    : summary;
}

/** Prints one event; returns false when the message is not a valid meshid event. */
function printEvent(env: CommandEnv, msg: EventMessage, sequence: number | undefined): boolean {
  const decoded = decodeEventMessage(msg);
  if (!decoded.ok) {
    env.out.warn(`skipped a malformed message on ${msg.subject}: ${decoded.message}`);
    return false;
  }
  const ev = decoded.event;
  const data = (EVENT_CATALOG[ev.type].codec as { toJSON(m: unknown): unknown }).toJSON(ev.data);
  if (env.out.json) {
    env.out.printJsonLine({
      subject: msg.subject,
      ...(sequence === undefined ? {} : { streamSequence: sequence }),
      headers: headersObject(msg.headers),
      data,
    });
  } else {
    const line = [
      formatTime(ev.time),
      ev.type.padEnd(19),
      ev.subject ?? "-",
      summarizeEventData(data),
    ];
    env.out.print(line.join("  ").trimEnd());
  }
  return true;
}

interface TailOptions {
  since?: string;
  count?: number;
}

async function connectNats(env: CommandEnv): Promise<{ nc: NatsConnection; url: string }> {
  const url =
    env.flags.nats ?? env.io.env[NATS_URL_ENV] ?? env.context().natsUrl ?? DEFAULT_NATS_URL;
  try {
    const nc = await connect({
      servers: url,
      name: "meshctl",
      timeout: env.timeoutMs,
      maxReconnectAttempts: -1,
    });
    return { nc, url };
  } catch (err) {
    throw connectError(
      `cannot connect to NATS at ${url}: ${(err as Error).message} ` +
        "(is the local mesh running? `npm start`, or pass --nats <url>)",
      err,
    );
  }
}

/** Waits for the abort of `signal` (never resolves without one). */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal === undefined) return;
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Registers `events tail`. */
export function registerEventsCommands(program: Command, bind: ActionBinder): void {
  const events = program.command("events").description("meshid events on NATS");
  bind<TailOptions>(
    events
      .command("tail")
      .description("print events as they happen, or replay them from JetStream with --since")
      .argument(
        "[filter]",
        "event kind (entry), type (svid.rotated) or NATS subject (meshid.v1.authority.*)",
      )
      .option("--since <when>", "replay from the MESHID_EVENTS stream: 10m, 2h or an RFC 3339 time")
      .option("--count <n>", "stop after n events", parsePositiveInt)
      .addHelpText(
        "after",
        "\nExamples:\n  meshctl events tail entry\n  meshctl events tail svid.rotated --since 1h\n" +
          "  meshctl events tail --json --count 1 'meshid.v1.authority.*'",
      ),
    async (env, args, o) => {
      const subject = subjectForFilter(args[0] as string | undefined);
      const since = o.since === undefined ? undefined : parseSince(o.since, new Date());
      const { nc, url } = await connectNats(env);
      env.onClose(() => nc.close());
      let printed = 0;
      const done = (): boolean => o.count !== undefined && printed >= o.count;
      const stop = aborted(env.io.signal);

      if (since === undefined) {
        const sub = nc.subscribe(subject);
        env.onClose(() => sub.unsubscribe());
        void stop.then(() => sub.unsubscribe());
        // Make sure the server has the subscription before saying we listen.
        await nc.flush();
        env.io.stderr.write(`listening on ${subject} at ${url}\n`);
        for await (const msg of sub) {
          if (printEvent(env, msg, undefined)) printed += 1;
          if (done()) break;
        }
        return;
      }

      let consumer;
      try {
        consumer = await nc.jetstream().consumers.get(EVENT_STREAM_NAME, {
          filterSubjects: subject,
          opt_start_time: since.toISOString(),
        });
      } catch (err) {
        const message = (err as Error).message;
        if (/stream not found/i.test(message)) {
          throw new MeshidError(
            "not_found",
            "meshctl.events.no_stream",
            `stream ${EVENT_STREAM_NAME} not found at ${url} (has the CA run with NATS?)`,
            { cause: err, details: { grpcStatus: "NOT_FOUND" } },
          );
        }
        throw new MeshidError(
          "unavailable",
          "meshctl.events.replay_failed",
          `cannot replay from ${EVENT_STREAM_NAME}: ${message}`,
          { cause: err },
        );
      }
      const messages = await consumer.consume();
      env.onClose(async () => {
        await messages.close();
      });
      void stop.then(() => messages.close());
      env.io.stderr.write(
        `replaying ${subject} since ${formatTime(since)} from ${EVENT_STREAM_NAME} at ${url}\n`,
      );
      for await (const msg of messages) {
        if (printEvent(env, msg, msg.seq)) printed += 1;
        if (done()) break;
      }
    },
  );
}
