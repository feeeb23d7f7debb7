{
  "targets": [
    {
      "target_name": "memory",
      "sources": ["src/memory.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
