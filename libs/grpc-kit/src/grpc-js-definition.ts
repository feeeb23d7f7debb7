import type { MethodDefinition } from "@grpc/grpc-js";
import type { TsProtoServiceDefinition } from "nice-grpc";

/** A ts-proto message codec: what a ts-proto method's `requestType` / `responseType` is. */
interface MessageCodec<Message> {
  encode(message: Message): { finish(): Uint8Array };
  decode(input: Uint8Array): Message;
}

type MessageOf<Codec> = Codec extends MessageCodec<infer Message> ? Message : never;

/**
 * The grpc-js form of a ts-proto service definition: one method definition per method, keyed by
 * the ts-proto method key (e.g. `fetchX509SVID`), with the message types of the ts-proto codecs.
 */
export type GrpcJsServiceDefinition<Service extends TsProtoServiceDefinition> = {
  readonly [Key in keyof Service["methods"]]: MethodDefinition<
    MessageOf<Service["methods"][Key]["requestType"]>,
    MessageOf<Service["methods"][Key]["responseType"]>
  >;
};

/**
 * Converts a ts-proto generic service definition (as generated with `outputServices=generic-definitions`
 * or nice-grpc) into a grpc-js `ServiceDefinition`, for code that drives `@grpc/grpc-js`
 * directly (`Server.addService`, `makeGenericClientConstructor`) — e.g. a server fed through a
 * connection injector. Each method gets path `/<fullName>/<name>` (so a service without a proto
 * package is served at `/SpiffeWorkloadAPI/FetchX509SVID`), its streaming flags, serializers
 * that encode with the ts-proto codec into a `Buffer` and decode from bytes, and
 * `originalName` = the ts-proto method key. Unary methods stay unary; nothing else is added.
 */
export function toGrpcJsServiceDefinition<Service extends TsProtoServiceDefinition>(
  definition: Service,
): GrpcJsServiceDefinition<Service> {
  const methods: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [key, method] of Object.entries(definition.methods)) {
    const requestType = method.requestType as MessageCodec<unknown>;
    const responseType = method.responseType as MessageCodec<unknown>;
    methods[key] = {
      path: `/${definition.fullName}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: (value) => Buffer.from(requestType.encode(value).finish()),
      requestDeserialize: (bytes) => requestType.decode(bytes),
      responseSerialize: (value) => Buffer.from(responseType.encode(value).finish()),
      responseDeserialize: (bytes) => responseType.decode(bytes),
      originalName: key,
    };
  }
  return methods as GrpcJsServiceDefinition<Service>;
}
