// A minimal SPIFFE Workload API client for tests, written only from the wire facts in
// SPIFFE.md (method paths and field numbers, hand-decoded protobuf) so it behaves like a
// third-party SPIFFE client and does not share meshid's generated code.
import {
  Client,
  Metadata,
  credentials,
  type ClientReadableStream,
  type ServiceError,
} from "@grpc/grpc-js";

/** Method paths of the SPIFFE Workload API (service `SpiffeWorkloadAPI`, no proto package). */
export const WORKLOAD_API_PATHS = {
  fetchX509Svid: "/SpiffeWorkloadAPI/FetchX509SVID",
  fetchX509Bundles: "/SpiffeWorkloadAPI/FetchX509Bundles",
  fetchJwtSvid: "/SpiffeWorkloadAPI/FetchJWTSVID",
  fetchJwtBundles: "/SpiffeWorkloadAPI/FetchJWTBundles",
  validateJwtSvid: "/SpiffeWorkloadAPI/ValidateJWTSVID",
} as const;

/** One X509SVID as sent on the wire (bytes as received: DER, never PEM). */
export interface WorkloadX509Svid {
  /** Field 1. */
  readonly spiffeId: string;
  /** Field 2: DER certificates concatenated, leaf first. */
  readonly x509Svid: Buffer;
  /** Field 3: PKCS#8 DER private key. */
  readonly x509SvidKey: Buffer;
  /** Field 4: DER CA certificates concatenated. */
  readonly bundle: Buffer;
  /** Field 5. */
  readonly hint: string;
}

/** A decoded X509SVIDResponse. */
export interface WorkloadX509SvidMessage {
  /** Field 1. */
  readonly svids: WorkloadX509Svid[];
  /** Field 2. */
  readonly crl: Buffer[];
  /** Field 3, keyed by trust-domain ID. */
  readonly federatedBundles: Record<string, Buffer>;
}

/** A decoded X509BundlesResponse. */
export interface WorkloadX509BundlesMessage {
  /** Field 1. */
  readonly crl: Buffer[];
  /** Field 2: trust-domain ID (`spiffe://<td>`) → DER CA certificates concatenated. */
  readonly bundles: Record<string, Buffer>;
}

/** A decoded JWTSVIDResponse. */
export interface WorkloadJwtSvidMessage {
  readonly svids: { spiffeId: string; svid: string; hint: string }[];
}

/** The status a call ended with (grpc-js `status` codes). */
export interface WorkloadCallStatus {
  readonly code: number;
  readonly details: string;
}

/** A server stream of decoded messages. */
export interface WorkloadStream<Message> {
  /**
   * The next message. Rejects with the call's `ServiceError` (`code`, `details`) when the
   * stream ended with an error status, with an `Error` when it ended OK, or after `timeoutMs`
   * (default 15 000) so a broken test fails instead of hanging.
   */
  next(timeoutMs?: number): Promise<Message>;
  /** Settles with the final status once the stream ends (OK is code 0). Never rejects. */
  readonly ended: Promise<WorkloadCallStatus>;
  /** Cancels the call (the client goes away). */
  cancel(): void;
}

/** Parameters of {@link createWorkloadClient}. */
export interface CreateWorkloadClientParams {
  /** `unix:///abs/path` (as in `SPIFFE_ENDPOINT_SOCKET`) or an absolute socket path. */
  readonly endpoint: string;
  /** Send `workload.spiffe.io: true` on every call. Default true. */
  readonly sendHeader?: boolean;
}

/** A SPIFFE Workload API client over its own connection. */
export interface WorkloadClient {
  fetchX509Svid(): WorkloadStream<WorkloadX509SvidMessage>;
  fetchX509Bundles(): WorkloadStream<WorkloadX509BundlesMessage>;
  fetchJwtBundles(): WorkloadStream<Record<string, Buffer>>;
  /** Resolves with the response or rejects with the call's `ServiceError`. */
  fetchJwtSvid(params: {
    audience: readonly string[];
    spiffeId?: string;
  }): Promise<WorkloadJwtSvidMessage>;
  /** Resolves with the validated SPIFFE ID or rejects with the call's `ServiceError`. */
  validateJwtSvid(params: { audience: string; svid: string }): Promise<{ spiffeId: string }>;
  /** Closes the connection. */
  close(): void;
}

// ---- protobuf wire format (varint, length-delimited), as little as the Workload API needs ----

interface WireField {
  readonly field: number;
  readonly wireType: number;
  readonly varint?: bigint;
  readonly bytes?: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error("protobuf: truncated varint");
    const byte = buf[pos]!;
    pos += 1;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function decodeFields(buf: Buffer): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos);
    pos = afterTag;
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (wireType === 0) {
      const [value, next] = readVarint(buf, pos);
      out.push({ field, wireType, varint: value });
      pos = next;
    } else if (wireType === 2) {
      const [length, next] = readVarint(buf, pos);
      const end = next + Number(length);
      if (end > buf.length) throw new Error("protobuf: truncated length-delimited field");
      out.push({ field, wireType, bytes: buf.subarray(next, end) });
      pos = end;
    } else if (wireType === 1) {
      pos += 8;
    } else if (wireType === 5) {
      pos += 4;
    } else {
      throw new Error(`protobuf: unsupported wire type ${wireType}`);
    }
  }
  return out;
}

function bytesOf(fields: WireField[], field: number): Buffer {
  const found = fields.filter((f) => f.field === field && f.bytes !== undefined);
  return found.length === 0 ? Buffer.alloc(0) : Buffer.from(found[found.length - 1]!.bytes!);
}

function stringOf(fields: WireField[], field: number): string {
  return bytesOf(fields, field).toString("utf8");
}

function repeatedBytes(fields: WireField[], field: number): Buffer[] {
  return fields
    .filter((f) => f.field === field)
    .map((f) => Buffer.from(f.bytes ?? Buffer.alloc(0)));
}

/** A `map<string, bytes>` field: repeated entries with key = 1, value = 2. */
function mapOf(fields: WireField[], field: number): Record<string, Buffer> {
  const map: Record<string, Buffer> = {};
  for (const entry of repeatedBytes(fields, field)) {
    const entryFields = decodeFields(entry);
    map[stringOf(entryFields, 1)] = bytesOf(entryFields, 2);
  }
  return map;
}

function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function encodeStringField(field: number, value: string): Buffer {
  const data = Buffer.from(value, "utf8");
  return Buffer.concat([encodeVarint((field << 3) | 2), encodeVarint(data.length), data]);
}

/** Decodes an X509SVIDResponse from its wire bytes. */
export function decodeX509SvidResponse(buf: Buffer): WorkloadX509SvidMessage {
  const fields = decodeFields(buf);
  return {
    svids: repeatedBytes(fields, 1).map((svidBytes) => {
      const svid = decodeFields(svidBytes);
      return {
        spiffeId: stringOf(svid, 1),
        x509Svid: bytesOf(svid, 2),
        x509SvidKey: bytesOf(svid, 3),
        bundle: bytesOf(svid, 4),
        hint: stringOf(svid, 5),
      };
    }),
    crl: repeatedBytes(fields, 2),
    federatedBundles: mapOf(fields, 3),
  };
}

/** Decodes an X509BundlesResponse from its wire bytes. */
export function decodeX509BundlesResponse(buf: Buffer): WorkloadX509BundlesMessage {
  const fields = decodeFields(buf);
  return { crl: repeatedBytes(fields, 1), bundles: mapOf(fields, 2) };
}

function decodeJwtSvidResponse(buf: Buffer): WorkloadJwtSvidMessage {
  return {
    svids: repeatedBytes(decodeFields(buf), 1).map((svidBytes) => {
      const svid = decodeFields(svidBytes);
      return { spiffeId: stringOf(svid, 1), svid: stringOf(svid, 2), hint: stringOf(svid, 3) };
    }),
  };
}

const emptyRequest = (): Buffer => Buffer.alloc(0);
const identity = (buf: Buffer): Buffer => buf;

/** Returns the grpc-js target for `endpoint` (`unix:///abs` or an absolute path). */
function targetOf(endpoint: string): string {
  if (endpoint.startsWith("unix:")) return endpoint;
  if (!endpoint.startsWith("/")) {
    throw new Error(`workload client: endpoint must be unix:///abs/path or absolute: ${endpoint}`);
  }
  return `unix://${endpoint}`;
}

function toStream<Message>(
  call: ClientReadableStream<Buffer>,
  decode: (buf: Buffer) => Message,
): WorkloadStream<Message> {
  const queue: Message[] = [];
  const waiters: { resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  let failure: Error | undefined;
  let resolveEnded: (s: WorkloadCallStatus) => void = () => undefined;
  const ended = new Promise<WorkloadCallStatus>((resolve) => {
    resolveEnded = resolve;
  });
  const fail = (err: Error): void => {
    failure ??= err;
    for (const waiter of waiters.splice(0)) waiter.reject(failure);
  };
  call.on("data", (buf: Buffer) => {
    let message: Message;
    try {
      message = decode(buf);
    } catch (err) {
      fail(err as Error);
      return;
    }
    const waiter = waiters.shift();
    if (waiter === undefined) queue.push(message);
    else waiter.resolve(message);
  });
  call.on("error", (err: ServiceError) => fail(err));
  call.on("status", (s: WorkloadCallStatus) => {
    resolveEnded({ code: s.code, details: s.details });
    if (s.code === 0) fail(new Error("the stream ended"));
  });
  return {
    ended,
    cancel: () => call.cancel(),
    next(timeoutMs = 15_000) {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<Message>((resolve, reject) => {
        const timer = setTimeout(() => {
          const index = waiters.indexOf(waiter);
          if (index >= 0) waiters.splice(index, 1);
          reject(new Error(`workload client: no message within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          resolve: (m: Message) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        waiters.push(waiter);
      });
    },
  };
}

/**
 * Creates a SPIFFE Workload API client on its own connection to `endpoint`. It sends the
 * `workload.spiffe.io: true` header unless `sendHeader` is false, and decodes responses by the
 * field numbers of the SPIFFE standard.
 */
export function createWorkloadClient(params: CreateWorkloadClientParams): WorkloadClient {
  const client = new Client(targetOf(params.endpoint), credentials.createInsecure(), {
    // A connection of its own, so clients in one test never share one.
    "grpc.use_local_subchannel_pool": 1,
  });
  const metadata = (): Metadata => {
    const md = new Metadata();
    if (params.sendHeader ?? true) md.set("workload.spiffe.io", "true");
    return md;
  };
  const unary = <Response>(
    path: string,
    request: Buffer,
    decode: (buf: Buffer) => Response,
  ): Promise<Response> =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        identity,
        identity,
        request,
        metadata(),
        (err: ServiceError | null, value?: Buffer) => {
          if (err !== null) reject(err);
          else resolve(decode(value ?? Buffer.alloc(0)));
        },
      );
    });
  return {
    fetchX509Svid: () =>
      toStream(
        client.makeServerStreamRequest(
          WORKLOAD_API_PATHS.fetchX509Svid,
          emptyRequest,
          identity,
          Buffer.alloc(0),
          metadata(),
        ),
        decodeX509SvidResponse,
      ),
    fetchX509Bundles: () =>
      toStream(
        client.makeServerStreamRequest(
          WORKLOAD_API_PATHS.fetchX509Bundles,
          emptyRequest,
          identity,
          Buffer.alloc(0),
          metadata(),
        ),
        decodeX509BundlesResponse,
      ),
    fetchJwtBundles: () =>
      toStream(
        client.makeServerStreamRequest(
          WORKLOAD_API_PATHS.fetchJwtBundles,
          emptyRequest,
          identity,
          Buffer.alloc(0),
          metadata(),
        ),
        (buf) => mapOf(decodeFields(buf), 1),
      ),
    fetchJwtSvid: ({ audience, spiffeId }) =>
      unary(
        WORKLOAD_API_PATHS.fetchJwtSvid,
        Buffer.concat([
          ...audience.map((a) => encodeStringField(1, a)),
          ...(spiffeId === undefined ? [] : [encodeStringField(2, spiffeId)]),
        ]),
        decodeJwtSvidResponse,
      ),
    validateJwtSvid: ({ audience, svid }) =>
      unary(
        WORKLOAD_API_PATHS.validateJwtSvid,
        Buffer.concat([encodeStringField(1, audience), encodeStringField(2, svid)]),
        (buf) => ({ spiffeId: stringOf(decodeFields(buf), 1) }),
      ),
    close: () => client.close(),
  };
}
