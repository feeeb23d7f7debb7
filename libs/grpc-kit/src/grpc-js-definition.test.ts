import {
  Server,
  ServerCredentials,
  credentials,
  makeGenericClientConstructor,
  status,
  type ServerErrorResponse,
  type ServerWritableStream,
  type ServiceError,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { spiffeWorkload } from "@meshid/proto";
import { toGrpcJsServiceDefinition } from "./grpc-js-definition";

const definition = toGrpcJsServiceDefinition(spiffeWorkload.SpiffeWorkloadAPIDefinition);

describe("toGrpcJsServiceDefinition", () => {
  it("grpc-js definition – maps every method to /<fullName>/<name> with its streaming flags", () => {
    const summary = Object.fromEntries(
      Object.entries(definition).map(([key, method]) => [
        key,
        [method.path, method.requestStream, method.responseStream, method.originalName],
      ]),
    );
    expect(summary).toEqual({
      fetchX509SVID: ["/SpiffeWorkloadAPI/FetchX509SVID", false, true, "fetchX509SVID"],
      fetchX509Bundles: ["/SpiffeWorkloadAPI/FetchX509Bundles", false, true, "fetchX509Bundles"],
      fetchJWTSVID: ["/SpiffeWorkloadAPI/FetchJWTSVID", false, false, "fetchJWTSVID"],
      fetchJWTBundles: ["/SpiffeWorkloadAPI/FetchJWTBundles", false, true, "fetchJWTBundles"],
      validateJWTSVID: ["/SpiffeWorkloadAPI/ValidateJWTSVID", false, false, "validateJWTSVID"],
    });
  });

  it("grpc-js definition – serializers produce Buffers the ts-proto codec reads back", () => {
    const method = definition.fetchX509SVID;
    const response = spiffeWorkload.X509SVIDResponse.fromPartial({
      svids: [
        {
          spiffeId: "spiffe://example.org/w",
          x509Svid: Buffer.from([1, 2]),
          x509SvidKey: Buffer.from([3]),
          bundle: Buffer.from([4]),
          hint: "h",
        },
      ],
    });
    const bytes = method.responseSerialize(response);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(method.responseDeserialize(bytes)).toEqual(response);
    expect(spiffeWorkload.X509SVIDResponse.decode(bytes)).toEqual(response);

    const request = spiffeWorkload.JWTSVIDRequest.fromPartial({
      audience: ["a", "b"],
      spiffeId: "spiffe://example.org/x",
    });
    const requestBytes = definition.fetchJWTSVID.requestSerialize(request);
    expect(Buffer.isBuffer(requestBytes)).toBe(true);
    expect(definition.fetchJWTSVID.requestDeserialize(requestBytes)).toEqual(request);
  });

  describe("over a real grpc-js server", () => {
    let server: Server;
    let port: number;

    beforeAll(async () => {
      server = new Server();
      const implementation: UntypedServiceImplementation = {
        fetchX509Bundles(call: ServerWritableStream<unknown, spiffeWorkload.X509BundlesResponse>) {
          for (const td of ["a.example", "b.example"]) {
            call.write(
              spiffeWorkload.X509BundlesResponse.fromPartial({
                bundles: { [`spiffe://${td}`]: Buffer.from(td) },
              }),
            );
          }
          call.end();
        },
        fetchJWTSVID(
          call: { request: spiffeWorkload.JWTSVIDRequest },
          callback: (
            err: ServerErrorResponse | null,
            value?: spiffeWorkload.JWTSVIDResponse,
          ) => void,
        ) {
          callback(null, {
            svids: [
              { spiffeId: call.request.spiffeId, svid: call.request.audience.join(","), hint: "" },
            ],
          });
        },
      };
      server.addService(definition, implementation);
      port = await new Promise<number>((resolve, reject) => {
        server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) => {
          if (err === null) resolve(bound);
          else reject(err);
        });
      });
    });

    afterAll(() => {
      server.forceShutdown();
    });

    function newClient(): InstanceType<ReturnType<typeof makeGenericClientConstructor>> {
      const Client = makeGenericClientConstructor(definition, "SpiffeWorkloadAPI");
      return new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    }

    it("grpc-js server – serves a server stream and a unary call through the definition", async () => {
      const client = newClient();
      try {
        const messages: spiffeWorkload.X509BundlesResponse[] = [];
        await new Promise<void>((resolve, reject) => {
          const stream = client.makeServerStreamRequest(
            definition.fetchX509Bundles.path,
            definition.fetchX509Bundles.requestSerialize,
            definition.fetchX509Bundles.responseDeserialize,
            {},
          );
          stream.on("data", (message: spiffeWorkload.X509BundlesResponse) =>
            messages.push(message),
          );
          stream.on("error", reject);
          stream.on("end", () => resolve());
        });
        expect(messages.map((m) => Object.keys(m.bundles))).toEqual([
          ["spiffe://a.example"],
          ["spiffe://b.example"],
        ]);

        const reply = await new Promise<spiffeWorkload.JWTSVIDResponse>((resolve, reject) => {
          client.makeUnaryRequest(
            definition.fetchJWTSVID.path,
            definition.fetchJWTSVID.requestSerialize,
            definition.fetchJWTSVID.responseDeserialize,
            { audience: ["x", "y"], spiffeId: "spiffe://example.org/z" },
            (err: ServiceError | null, value?: spiffeWorkload.JWTSVIDResponse) => {
              if (err !== null) reject(err);
              else resolve(value!);
            },
          );
        });
        expect(reply.svids).toEqual([
          { spiffeId: "spiffe://example.org/z", svid: "x,y", hint: "" },
        ]);
      } finally {
        client.close();
      }
    });

    it("grpc-js server – a method without implementation answers UNIMPLEMENTED", async () => {
      const client = newClient();
      try {
        const err = await new Promise<ServiceError>((resolve) => {
          const stream = client.makeServerStreamRequest(
            definition.fetchJWTBundles.path,
            definition.fetchJWTBundles.requestSerialize,
            definition.fetchJWTBundles.responseDeserialize,
            {},
          );
          stream.on("data", () => undefined);
          stream.on("error", resolve);
        });
        expect(err.code).toBe(status.UNIMPLEMENTED);
      } finally {
        client.close();
      }
    });
  });
});
