"""envoykit: the one Python kit that runs a real Envoy with the alb-oidc
filter on 127.0.0.1, shared by the end-to-end tests (tests/e2e), the
benchmarks (bench/) and the local demo (scripts/demo.py).

Modules:

* ``paths``      - the repo, the Envoy binary and the filter's .wasm (env overrides)
* ``bootstrap``  - building blocks of an Envoy bootstrap (listeners, clusters, filters)
* ``process``    - process groups, and ``EnvoyProcess``: write the bootstrap, start,
                   wait until ready, stop, read and scan the log; ``envoy_validate``
* ``admin``      - the admin endpoint: /ready, /stats counters, the Prometheus exposition
* ``ecds``       - a file-based ECDS source (atomic updates) and Envoy's ECDS counters
* ``keyserver``  - a stand-in for the ALB key endpoint, with fault modes and holds
* ``jwksserver`` - a stand-in for an IdP's key set (JWKS) endpoint: a document per
                   path, swapped for rotations, fetch counts, fault modes and holds
* ``echo``       - an upstream that answers with the request it received
* ``client``     - a raw HTTP/1.1 client that sends the path byte for byte
* ``wait``       - ``wait_until`` (poll a condition with a bound) and ``free_port``

Import it from the repo root: pytest puts the root on ``sys.path``
(``pythonpath`` in pyproject.toml) and the scripts run as modules
(``python -m bench.run_bench``, ``python -m scripts.demo``).
"""
