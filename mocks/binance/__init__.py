"""A mock Binance Spot exchange: a real aiohttp server speaking Binance's REST, WebSocket API
and market-stream protocols over a deterministic matching engine, with fault switches."""
