"""The Slack front end.

- `app`: the bolt App (`build_app`), thin ack functions plus lazy listeners that do the work.
- `server`: `serve` (Socket Mode or HTTP) and `make_http_server` (threaded, /slack/events, /healthz).
- `delivery`: progress, posting answers, ephemeral notes; Slack failures are handled here.
- `client`: the WebClient with its base URL and retry handlers.
- Pure modules: `mrkdwn` (Markdown → mrkdwn), `blocks` (Block Kit), `home` (App Home view),
  `commands` (`/tierwise` parsing and texts), `threads` (which messages to answer, history,
  transcripts), `manifest` (the app manifest, from the skills).
"""
