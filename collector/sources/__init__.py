"""Foreign sources of predictions: model-server loggers and topics decoded into driftline events.

`base` holds the interface every source decoder implements (`Part`, `SourceDecoder`); the bridge
(`collector.sources.bridge`) consumes their topics, pairs requests with responses and produces
driftline events.
"""
