"""The public HTTP and WebSocket contract (docs/API.md) as a FastAPI app over a gateway. No Ray."""
