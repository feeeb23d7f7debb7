export { getPeerCredentials, PEERCRED_UNAVAILABLE, type PeerCredentials } from "./peer-credentials";
