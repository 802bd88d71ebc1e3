"""The logging proxy: `driftline proxy` in front of any REST model server (issue 13, item 2).

It forwards every request to one upstream and returns the upstream's response as it came, and
logs each row of an inference request (TF Serving/KServe v1 ``:predict``, Open Inference
Protocol v2 ``/infer``, MLflow ``/invocations``, Seldon v1 ``/api/v1.0/predictions``) as one
prediction event through the sidecar's `PredictionLogger`, after the response has gone out.
Logging never fails or slows a request: with Kafka down requests pass and the sidecar counts
what it drops.

Modules: `upstream` (the pooled HTTP/1.1 client), `app` (the ASGI app), `recorder` (exchanges
to events), `serve` (`ProxySettings`, `build_proxy`, `run_proxy`), `cli` (the subcommand).
Nothing is imported here, so that `driftline --help` does not load uvicorn.

Lives in the service's package, not in driftline-sidecar: it needs uvicorn, httptools and
prometheus-client, and the sidecar must stay kafka-python and the standard library only (it is
what a model server's own process installs). The proxy runs as a process of its own (a
container next to the model server), where the service's dependencies cost nothing.
"""
