"""A local KuCoin: the public token endpoint and WebSocket protocol, for tests and the demo."""
