"""The daemon and its clients: `protocol` (the wire: addresses, encoding, limits, request
options), `server` (`scorebridge serve`: one socket, one queue, models kept warm) and
`client` (`scorebridge request` and the host scripts' helpers). The server and the clients
take everything about the wire from `protocol`; docs/protocol.md describes it for host authors."""
