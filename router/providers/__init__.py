"""External providers and fallback chains: one adapter interface, one error model, backoff and breakers.

The router calls `FallbackChain` (``chat``, ``open_stream``, ``embeddings``) for routes that name a
provider or a fallback; see docs/providers.md.
"""

from inferflux.router.providers.chain import (
    SERVED_BY_HEADER,
    ChainStream,
    FallbackChain,
    Served,
    served_by_header,
)
from inferflux.router.providers.handler import ChainHandler
from inferflux.router.providers.metrics import ProviderMetrics
from inferflux.router.providers.secrets import (
    ClusterSecrets,
    KubeSecrets,
    LocalSecrets,
    SecretSource,
    install_redaction,
)
from inferflux.router.providers.upstreams import Pool, PoolSettings

__all__ = [
    "SERVED_BY_HEADER",
    "ChainHandler",
    "ChainStream",
    "ClusterSecrets",
    "FallbackChain",
    "KubeSecrets",
    "LocalSecrets",
    "Pool",
    "PoolSettings",
    "ProviderMetrics",
    "SecretSource",
    "Served",
    "install_redaction",
    "served_by_header",
]
