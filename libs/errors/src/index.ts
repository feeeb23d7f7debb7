export {
  MeshidError,
  isMeshidError,
  type ErrorKind,
  type MeshidErrorOptions,
} from "./meshid-error";
