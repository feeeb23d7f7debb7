// The Node.js flags every meshid service process runs with. deploy/Dockerfile's ENTRYPOINT
// passes the same ones (test/deploy checks that they match), so tests, benchmarks and
// `npm start` run the services exactly as deployed.

/**
 * A small V8 young generation. The services' live heaps are small and steady, but V8 lets each
 * process grow its semi-spaces to 16 MiB under allocation bursts (a pod burst, a rotation) and
 * keeps those pages afterwards; capped at 2 MiB the scavenges run more often on less memory.
 * Measured in test/bench/README.md ("Memory").
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2"];
