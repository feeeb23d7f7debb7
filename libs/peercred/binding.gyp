{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["src/peercred.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
