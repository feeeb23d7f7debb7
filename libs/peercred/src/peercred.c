/*
 * Peer credentials of a connected Unix domain socket (Linux SO_PEERCRED), as a plain-C
 * N-API addon with no dependencies.
 *
 * Exports getPeerCred(fd: number) -> { pid, uid, gid }. On failure it throws an Error whose
 * `errno` property holds the (positive) errno value and whose `syscall` names the failing call,
 * so the TypeScript wrapper can turn it into a MeshidError.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <node_api.h>

/* Throws an Error carrying errno and syscall; returns NULL for convenient tail calls. */
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value message, error, errno_value, syscall_value;
  const char *text = strerror(err);
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, NULL, message, &error) != napi_ok) {
    napi_throw_error(env, NULL, text);
    return NULL;
  }
  if (napi_create_int32(env, err, &errno_value) == napi_ok) {
    napi_set_named_property(env, error, "errno", errno_value);
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", syscall_value);
  }
  napi_throw(env, error);
  return NULL;
}

static napi_value get_peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "getPeerCred(fd) needs a file descriptor");
    return NULL;
  }
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "getPeerCred(fd): fd must be a non-negative integer");
    return NULL;
  }

#ifdef SO_PEERCRED
  /* SO_PEERCRED also "succeeds" on TCP sockets (pid 0, overflow uid), so check the family. */
  struct sockaddr_storage addr;
  socklen_t addr_len = sizeof addr;
  memset(&addr, 0, sizeof addr);
  if (getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
    return throw_errno(env, errno, "getsockname");
  }
  if (addr.ss_family != AF_UNIX) {
    return throw_errno(env, EAFNOSUPPORT, "getsockname");
  }

  struct ucred cred;
  socklen_t cred_len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
    return throw_errno(env, errno, "getsockopt");
  }
  if (cred_len != sizeof cred) {
    return throw_errno(env, EINVAL, "getsockopt");
  }

  napi_value result, pid, uid, gid;
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_int32(env, (int32_t)cred.pid, &pid) != napi_ok ||
      napi_create_uint32(env, (uint32_t)cred.uid, &uid) != napi_ok ||
      napi_create_uint32(env, (uint32_t)cred.gid, &gid) != napi_ok ||
      napi_set_named_property(env, result, "pid", pid) != napi_ok ||
      napi_set_named_property(env, result, "uid", uid) != napi_ok ||
      napi_set_named_property(env, result, "gid", gid) != napi_ok) {
    return NULL;
  }
  return result;
#else
  (void)fd;
  return throw_errno(env, ENOSYS, "getsockopt");
#endif
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "getPeerCred", NAPI_AUTO_LENGTH, get_peer_cred, NULL, &fn) !=
          napi_ok ||
      napi_set_named_property(env, exports, "getPeerCred", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}
