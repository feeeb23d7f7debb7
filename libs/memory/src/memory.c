/*
 * Gives memory the C allocator holds but no longer uses back to the operating system, as a
 * plain-C N-API addon with no dependencies.
 *
 * glibc's free() returns memory to the kernel only from the top of an arena; pages in the
 * middle of a heap stay resident after a burst of short-lived allocations (HTTP/2 buffers,
 * TLS records, ArrayBuffer backing stores) until malloc_trim() releases them (glibc >= 2.8
 * madvise()s every whole free page, not only the top).
 *
 * Exports trim() -> boolean: true when memory was released, false when there was none or the
 * C library has no malloc_trim (musl); and supported: boolean.
 */
#include <stdbool.h>

#include <node_api.h>

#if defined(__GLIBC__)
#include <malloc.h>
#define MESHID_HAVE_MALLOC_TRIM 1
#else
#define MESHID_HAVE_MALLOC_TRIM 0
#endif

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#if MESHID_HAVE_MALLOC_TRIM
  released = malloc_trim(0) != 0;
#endif
  napi_value result;
  if (napi_get_boolean(env, released, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn, supported;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "trim", fn) != napi_ok ||
      napi_get_boolean(env, MESHID_HAVE_MALLOC_TRIM != 0, &supported) != napi_ok ||
      napi_set_named_property(env, exports, "supported", supported) != napi_ok) {
    return NULL;
  }
  return exports;
}
