"""The registry test harness: real ``docker-registry`` processes and what goes with them.

Used by the registry tests (``tests/registry``, whose conftest turns `registries`
and `scanning` into fixtures), the end-to-end tests and ``bench/bench_registry.py``.
Nothing here is a test.

- `registry_proc`: start and stop Debian's ``/usr/bin/docker-registry``
- `push`: push synthetic images, write thousands of tags straight into storage
  (also ``python -m tests.registryharness.push``)
- `shim`: a proxy in front of a registry for pagination and fault injection
- `token_server`, `certs`: a Bearer token server, a test CA and TLS files
- `registries`: the registries the registry tests share, with their images
- `scanning`: a fake clock, image repository configs and scanners for tests

Importing this package imports none of them (the benchmark needs no pytest).
"""
