export { getFreePort } from "./ports";
export { createTempDir, type TempDir } from "./temp-dir";
