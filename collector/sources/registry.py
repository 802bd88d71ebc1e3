"""Which decoder reads which kind of source.

Each kind names a module and, after the colon, a callable in it (a function, or a class's
`from_settings`) taking that kind's settings (`collector.config_sources`) and returning its
`SourceDecoder`; the module is imported only when a source of its kind is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Final

from collector.config_sources import SourceSettings
from collector.errors import ConfigError
from collector.sources.base import SourceDecoder

FACTORIES: Final = {
    "cloudevents": "collector.sources.logger:decoder_for",
    "seldon_kafka_logger": "collector.sources.logger:decoder_for",
    "mlserver_kafka": "collector.sources.oip:MLServerKafkaDecoder.from_settings",
    "seldon_v2": "collector.sources.oip:SeldonV2Decoder.from_settings",
}


def build_decoders(sources: Sequence[SourceSettings]) -> list[SourceDecoder]:
    """One decoder per configured source, in order.

    Raises:
        ConfigError: When a kind's decoder cannot be loaded.
    """
    decoders: list[SourceDecoder] = []
    for index, source in enumerate(sources):
        module_name, _, path = FACTORIES[source.kind].partition(":")
        try:
            factory: Any = importlib.import_module(module_name)
            for attribute in path.split("."):
                factory = getattr(factory, attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"sources[{index}] ({source.name}): the {source.kind} decoder "
                              f"cannot be loaded ({exc})") from exc
        decoders.append(factory(source))
    return decoders
