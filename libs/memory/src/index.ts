export {
  collectGarbage,
  memoryReleaseSupport,
  releaseFreedMemory,
  type MemoryReleaseResult,
  type MemoryReleaseSupport,
} from "./release";
export {
  createMemoryReleaser,
  type MemoryReleaser,
  type MemoryReleaserOptions,
  type MemoryReleaserStats,
} from "./releaser";
