"""The Binance adapter: python-binance connector, order tracker, rate limiter, local books."""
