// A tiny fake SPIFFE Workload API server for the client tests, behaving as the SPIFFE standard
// says any agent does: it refuses calls without `workload.spiffe.io: true` (INVALID_ARGUMENT),
// and each call plays the next scripted behaviour (refuse with a status, or stream messages).
import { join } from "node:path";
import { spiffeWorkload } from "@meshid/proto";
import { concatDer } from "@meshid/spiffe";
import { createTempDir, type TempDir, type TestSvid } from "@meshid/testkit";
import { createServer, ServerError, Status, type CallContext, type Server } from "nice-grpc";

/** What one FetchX509SVID call does. */
export type FakeCallBehaviour =
  | { readonly kind: "refuse"; readonly status: Status; readonly details?: string }
  /** Sends `messages`, then ends the stream OK (`end`) or stays open for {@link FakeWorkloadApi.publish}. */
  | {
      readonly kind: "stream";
      readonly messages: readonly spiffeWorkload.X509SVIDResponse[];
      readonly then: "end" | "hold";
    };

/** A running fake Workload API. */
export interface FakeWorkloadApi {
  readonly socketPath: string;
  /** Behaviours for the next calls, in order; when none is left, calls are refused UNAVAILABLE. */
  script(...behaviours: FakeCallBehaviour[]): void;
  /** Sends a message on every held stream. */
  publish(message: spiffeWorkload.X509SVIDResponse): void;
  /** Ends every held stream OK. */
  endHeld(): void;
  /** Calls received, and how many lacked the header. */
  readonly stats: { calls: number; withoutHeader: number };
  stop(): Promise<void>;
}

interface Held {
  readonly queue: spiffeWorkload.X509SVIDResponse[];
  wake?: () => void;
  ended: boolean;
}

/** Builds an X509SVIDResponse from test SVIDs (all issued under `bundleDer`). */
export function responseOf(
  svids: readonly TestSvid[],
  bundleDer: Uint8Array,
  federatedBundles: Record<string, Uint8Array> = {},
): spiffeWorkload.X509SVIDResponse {
  return {
    svids: svids.map((s) => ({
      spiffeId: s.spiffeId,
      x509Svid: Buffer.from(concatDer(s.certChainDer)),
      x509SvidKey: Buffer.from(s.keyPkcs8Der),
      bundle: Buffer.from(bundleDer),
      hint: "",
    })),
    crl: [],
    federatedBundles: Object.fromEntries(
      Object.entries(federatedBundles).map(([k, v]) => [k, Buffer.from(v)]),
    ),
  };
}

function hasHeader(context: CallContext): boolean {
  return context.metadata.getAll("workload.spiffe.io").some((v) => String(v) === "true");
}

/** Starts the fake on a Unix socket in a fresh temp dir. */
export async function startFakeWorkloadApi(): Promise<FakeWorkloadApi> {
  const dir: TempDir = await createTempDir("fake-workload-api");
  const socketPath = join(dir.path, "agent.sock");
  const behaviours: FakeCallBehaviour[] = [];
  const held = new Set<Held>();
  const stats = { calls: 0, withoutHeader: 0 };

  const server: Server = createServer();
  server.add(spiffeWorkload.SpiffeWorkloadAPIDefinition, {
    async *fetchX509SVID(_request, context) {
      stats.calls += 1;
      if (!hasHeader(context)) {
        stats.withoutHeader += 1;
        throw new ServerError(Status.INVALID_ARGUMENT, "missing workload.spiffe.io header");
      }
      const behaviour = behaviours.shift() ?? {
        kind: "refuse",
        status: Status.UNAVAILABLE,
        details: "no script",
      };
      if (behaviour.kind === "refuse") {
        throw new ServerError(behaviour.status, behaviour.details ?? Status[behaviour.status]);
      }
      for (const message of behaviour.messages) yield message;
      if (behaviour.then === "end") return;
      const h: Held = { queue: [], ended: false };
      held.add(h);
      try {
        while (!context.signal.aborted) {
          const next = h.queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (h.ended) return;
          await new Promise<void>((resolve) => {
            h.wake = resolve;
            context.signal.addEventListener("abort", () => resolve(), { once: true });
          });
        }
      } finally {
        held.delete(h);
      }
    },
    async *fetchX509Bundles() {
      yield* await Promise.reject<never[]>(
        new ServerError(Status.UNIMPLEMENTED, "not in the fake"),
      );
    },
    fetchJWTSVID() {
      return Promise.reject(new ServerError(Status.UNIMPLEMENTED, "not in the fake"));
    },
    async *fetchJWTBundles() {
      yield* await Promise.reject<never[]>(
        new ServerError(Status.UNIMPLEMENTED, "not in the fake"),
      );
    },
    validateJWTSVID() {
      return Promise.reject(new ServerError(Status.UNIMPLEMENTED, "not in the fake"));
    },
  });
  await server.listen(`unix://${socketPath}`);

  return {
    socketPath,
    stats,
    script: (...b) => behaviours.push(...b),
    publish(message) {
      for (const h of held) {
        h.queue.push(message);
        h.wake?.();
      }
    },
    endHeld() {
      for (const h of held) {
        h.ended = true;
        h.wake?.();
      }
    },
    async stop() {
      server.forceShutdown();
      await dir.cleanup();
    },
  };
}
