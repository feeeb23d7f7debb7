#!/usr/bin/env node
// meshctl: the command-line client of meshid. Parses arguments, runs one command and exits
// with a meaningful code (see `meshctl --help`).
import "reflect-metadata";
import { processIo, run } from "./cli";

const controller = new AbortController();
// Ctrl-C ends long-running commands (events tail) cleanly; a second one kills at once.
process.once("SIGINT", () => {
  controller.abort();
  process.once("SIGINT", () => process.exit(130));
});
process.once("SIGTERM", () => controller.abort());

void run(process.argv.slice(2), processIo(controller.signal)).then((code) => {
  process.exitCode = code;
  // run() closed its gRPC and NATS handles; exit once the output is flushed instead of waiting
  // for idle timers (keep-alive sockets of `status`, grpc-js backoff timers).
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
});
