"""The aiohttp web app: pages, JSON API and the websocket."""
